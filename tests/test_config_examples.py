"""Every config the project shows passes both ``check`` and the JSON Schema.

The examples (``examples/*/floorstream.yaml``), the demo's config and every ```yaml block in
``docs/*.md`` and ``README.md``. A block that is deliberately a part of a config says so with
an HTML comment on the line before its fence:

- ``<!-- fragment: sources[0] {name: s, adapter: simulator} -->``: the block's keys belong at
  that key path; they are merged into the flow mapping given there and validated as a config;
- ``<!-- fragment: skip <reason> -->``: not a config at all; the test reports it as skipped,
  with the reason.

``${NAME}`` references get dummy values for ``check``; the schema sees them unresolved, as an
editor does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from floorstream.config import config_json_schema, parse_config
from floorstream.demo import CONFIG as DEMO_CONFIG
from floorstream.demo import ERP_SOURCE
from floorstream.errors import ConfigError
from floorstream.plugins import Plugins, build_plugins

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(yaml|yml)\s*$")
_MARKER = re.compile(r"^<!--\s*fragment:\s*(.*?)\s*-->\s*$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    text: str
    marker: str | None  # what follows "fragment:" in the comment before the fence

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _doc_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            if _FENCE.match(lines[index]):
                end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
                previous = lines[index - 1] if index else ""
                marker = _MARKER.match(previous)
                blocks.append(Block(str(path.relative_to(ROOT)), index + 1,
                                    "\n".join(lines[index + 1:end]) + "\n",
                                    marker.group(1) if marker else None))
                index = end
            elif _MARKER.match(lines[index]) and not (
                    index + 1 < len(lines) and _FENCE.match(lines[index + 1])):
                raise AssertionError(f"{path}:{index + 1}: a fragment marker must be the line "
                                     "right before a ```yaml fence")
            index += 1
    return blocks


BLOCKS = _doc_blocks()


def _dummy_environ(text: str) -> dict[str, str]:
    environ = {}
    for name in _ENV.findall(text):
        if "PORT" in name:
            environ[name] = "2525"
        elif "URL" in name or "HOOK" in name:
            environ[name] = "https://hooks.example.com/services/T000/B000/XXXXXXXX"
        else:
            environ[name] = "dummy-secret-value"
    return environ


def _path(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_][\w.-]*)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return parts


def _config_of(block: Block) -> Any:
    """The block as a whole config: itself, or its fragment put where its marker says."""
    data = yaml.safe_load(block.text)
    if block.marker is None:
        return data
    if block.marker.startswith("skip"):
        pytest.skip(f"{block.id}: not a config ({block.marker})")
    path_text, _, base_text = block.marker.partition(" ")
    base = yaml.safe_load(base_text) if base_text.strip() else {}
    assert isinstance(data, dict) and isinstance(base, dict), block.marker
    value: Any = {**base, **data}
    for part in reversed(_path(path_text)):
        if isinstance(part, int):
            assert part == 0, "a fragment goes into the first entry of a list"
            value = [value]
        else:
            value = {part: value}
    return value


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return build_plugins()


@pytest.fixture(scope="module")
def validator(plugins: Plugins) -> jsonschema.Draft202012Validator:
    schema = config_json_schema(plugins)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _both(text: str, data: Any, plugins: Plugins,
          validator: jsonschema.Draft202012Validator, name: str,
          environ: dict[str, str] | None = None) -> None:
    env = _dummy_environ(text) if environ is None else environ
    try:
        parse_config(text, plugins, file=name, environ=env)
    except ConfigError as exc:
        pytest.fail(f"check rejects {name}:\n" + "\n".join(str(p) for p in exc.problems))
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
              for e in validator.iter_errors(data)]
    assert errors == [], f"the JSON Schema rejects {name}"


def test_the_docs_have_yaml_blocks() -> None:
    files = {b.file for b in BLOCKS}
    assert "README.md" in files and "docs/config.md" in files
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_docs_yaml_block(block: Block, plugins: Plugins,
                         validator: jsonschema.Draft202012Validator,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # relative store paths as written
    data = _config_of(block)
    text = block.text if block.marker is None else yaml.safe_dump(data, sort_keys=False,
                                                                  allow_unicode=True)
    _both(text, data, plugins, validator, block.id, _dummy_environ(block.text))


EXAMPLES = sorted(ROOT.glob("examples/*/floorstream.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_example_config(path: Path, plugins: Plugins,
                        validator: jsonschema.Draft202012Validator,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the examples' stores are relative to the checkout
    text = path.read_text(encoding="utf-8")
    _both(text, yaml.safe_load(text), plugins, validator, str(path.relative_to(ROOT)))


@pytest.mark.parametrize("with_erp", [True, False], ids=["demo", "demo-without-erp"])
def test_demo_config(with_erp: bool, tmp_path: Path, plugins: Plugins,
                     validator: jsonschema.Draft202012Validator) -> None:
    erp = ERP_SOURCE.format(dir=tmp_path) if with_erp else ""
    text = DEMO_CONFIG.format(dir=tmp_path, erp=erp)
    _both(text, yaml.safe_load(text), plugins, validator, "demo")


def test_examples_exist() -> None:
    assert {p.parent.name for p in EXAMPLES} >= {"erp", "mqtt", "supply"}


# -- the schema reports the errors of the adapter that was named, and only those --------------

def _errors(validator: jsonschema.Draft202012Validator, text: str) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(text)))


def test_schema_reports_the_named_adapters_keys_only(
        validator: jsonschema.Draft202012Validator) -> None:
    errors = _errors(validator, """\
sources:
  - {name: presses, adapter: mqtt, topics: [a/b], urll: "mqtt://x", qos: 3}
  - {name: sim, adapter: simulator, interval: {not: a duration}}
sinks:
  - {name: hook, type: webhook, url: "https://example.com", formt: slack}
""")
    assert len(errors) == 4, errors
    assert any(e.startswith("sources.0:") and "'urll' was unexpected" in e for e in errors)
    assert any(e.startswith("sources.0.qos:") for e in errors)
    assert any(e.startswith("sources.1.interval:") for e in errors)
    assert any(e.startswith("sinks.0:") and "'formt' was unexpected" in e for e in errors)


def test_schema_checks_common_keys_of_an_unknown_adapter(
        validator: jsonschema.Draft202012Validator) -> None:
    errors = _errors(validator, "sources:\n  - {name: 'bad name!', adapter: nosuch, "
                                "enabled: maybe, own_key: 1}\n")
    assert [e.split(":")[0] for e in errors] == ["sources.0.adapter", "sources.0.enabled",
                                                 "sources.0.name"], errors


def test_schema_validates_detect_entries_by_their_detector(
        validator: jsonschema.Draft202012Validator) -> None:
    errors = _errors(validator, """\
sources:
  - name: s
    adapter: simulator
    detect:
      - threshold: {field: t, above: 85, for: 10s}
      - silence: {after: 5m}
      - state_change: {field: state, severity: {FAULT: critical}}
      - threshold: {field: t, abvoe: 85}
      - silence: {after: ten minutes}
      - thresold: {field: t}
      - {threshold: {field: t}, silence: {after: 1m}}
""")
    assert [e.split(":")[0] for e in errors] == [
        "sources.0.detect.3.threshold", "sources.0.detect.4.silence.after",
        "sources.0.detect.5", "sources.0.detect.6"], errors


def test_schema_and_check_accept_env_references_anywhere(
        plugins: Plugins, validator: jsonschema.Draft202012Validator) -> None:
    text = """\
store: ${STORE_URL:-sqlite:///floorstream.db}
pipeline: {batch_max: "${BATCH_MAX:-500}", tick_s: "0.5"}
health: {port: "${HEALTH_PORT}"}
sinks:
  - name: mail
    type: email
    host: smtp.example.com
    port: ${SMTP_PORT}
    from: floorstream@example.com
    to: [ops@example.com]
sources:
  - name: presses
    adapter: mqtt
    url: mqtt://broker:1883
    topics: [plant/+/telemetry]
    client_id: ${MQTT_CLIENT_ID:-floorstream-presses}
    keepalive: "60"
    clean_start: "${MQTT_CLEAN:-false}"
    detect:
      - threshold: {field: t, above: "${LIMIT}", for: 10s}
"""
    errors = _errors(validator, text)
    assert errors == []
    config = parse_config(text, plugins, environ={"HEALTH_PORT": "8088", "SMTP_PORT": "2525",
                                                  "LIMIT": "85.5"})
    assert config.settings.health.port == 8088
    assert config.settings.pipeline.batch_max == 500


def test_schema_durations_and_team_settings(plugins: Plugins,
                                            validator: jsonschema.Draft202012Validator) -> None:
    good = """\
teams:
  ops: {immediate: WARNING, digest: "06:00, 14:00,22:00", quiet_hours: "22:00-06:00",
        timezone: Europe/Berlin}
  planning: {digest: 1h}
flood: {max_posts: 5, window: " 5 m"}
logging: {level: DEBUG}
"""
    assert _errors(validator, good) == []
    parse_config(good, plugins)  # and check takes it too
    bad = """\
teams:
  ops: {immediate: urgent, digest: every hour, quiet_hours: "22-06"}
flood: {window: five minutes}
logging: {level: verbose}
"""
    assert [e.split(":")[0] for e in _errors(validator, bad)] == [
        "flood",  # flood: {…} or null, so the error is the whole value's
        "logging.level", "teams.ops.digest", "teams.ops.immediate", "teams.ops.quiet_hours"]
