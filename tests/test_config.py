"""Config validation: every problem at once, each with file, key path, line and what is
expected; ``floorstream check`` and ``floorstream schema``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from floorstream.cli import main
from floorstream.config import load_config, parse_config
from floorstream.demo import CONFIG as DEMO_CONFIG
from floorstream.errors import ConfigError, ConfigProblem
from floorstream.plugins import Plugins, build_plugins

FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")

BAD = """\
store: sqlite:///${FS_TEST_DIR:-/tmp}/x.db
defualt_team: production
teams:
  maintenance: {}
  production: {}
pipeline:
  batch_max: lots
sources:
  - name: presses
    adapter: simulator
    summary: "{{ subject } is hot"
    detect:
      - thresold: {field: t, above: 3}
      - threshold: {above: 85}
      - silence: {after: ten minutes}
      - state_change: {field: state, severity: {FAULT: urgent}}
  - name: other
    adapter: simulater
routes:
  - match: {source: presses, severity: ">=urgent"}
    teams: [maintenance]
  - match: {type: "machine.*"}
    teams: [maintenence]
  - match: {source: presses}
logging:
  level: ${FS_UNSET_VAR_FOR_TEST}
"""

GOOD = """\
store: sqlite:///${FS_TEST_DIR:-/tmp/fs-default}/x.db
default_team: production
teams:
  maintenance: {}
  production: {}
sources:
  - name: presses
    adapter: simulator
    summary: "{{ subject }}: {{ default }}"
    detect:
      - threshold: {field: spindle_temp, above: 85, clear_below: 80, for: 10s}
      - state_change: {field: state, severity: {FAULT: critical}}
routes:
  - match: {source: presses, severity: ">=warning"}
    teams: [maintenance]
"""


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return build_plugins(load_entry_points=False)


def _problems(text: str, plugins: Plugins) -> dict[str, ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, plugins, file="plant.yaml", environ={})
    found = {p.path: p for p in caught.value.problems}
    assert all(p.file == "plant.yaml" for p in found.values())
    return found


def test_every_mistake_is_reported_at_once_with_line_and_expectation(plugins: Plugins) -> None:
    found = _problems(BAD, plugins)
    expected = {  # key path → (line, words the message must contain)
        "defualt_team": (2, ["unknown key", "did you mean 'default_team'"]),
        "pipeline.batch_max": (7, ["valid integer", "'lots'"]),
        "sources[0].summary": (11, ["template syntax error"]),
        "sources[0].detect[0]": (13, ["unknown detector 'thresold'",
                                      "did you mean 'threshold'"]),
        "sources[0].detect[1].threshold.field": (14, ["required key is missing"]),
        "sources[0].detect[2].silence.after": (15, ["expected a duration", "'ten minutes'"]),
        "sources[0].detect[3].state_change.severity.FAULT": (16, ["unknown severity 'urgent'",
                                                                   "info, notice, warning"]),
        "sources[1].adapter": (18, ["unknown adapter 'simulater'",
                                    "did you mean 'simulator'"]),
        "routes[0].match.severity": (20, ["unknown severity 'urgent'"]),
        "routes[1].teams[0]": (23, ["'maintenence' is not declared",
                                    "did you mean 'maintenance'"]),
        "routes[2].teams": (24, ["required key is missing"]),
        "logging.level": (26, ["FS_UNSET_VAR_FOR_TEST is not set", "${FS_UNSET_VAR_FOR_TEST:-"]),
    }
    assert set(expected) <= set(found), sorted(set(expected) - set(found))
    for path, (line, words) in expected.items():
        problem = found[path]
        assert problem.line == line, (path, problem)
        for word in words:
            assert word in problem.message, (path, problem.message)
        assert str(problem).startswith(f"plant.yaml:{line}: {path}: ")


def test_env_references_and_defaults(plugins: Plugins) -> None:
    config = parse_config(GOOD, plugins, environ={"FS_TEST_DIR": "/srv/fs"})
    assert config.settings.store == "sqlite:////srv/fs/x.db"
    assert "/srv/fs" in config.secrets  # values from the environment are redacted in logs
    default = parse_config(GOOD, plugins, environ={})
    assert default.settings.store == "sqlite:////tmp/fs-default/x.db"
    assert [d.name for d in config.source("presses").detect] == ["threshold", "state_change"]


def test_yaml_syntax_errors_point_at_the_line(plugins: Plugins) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("store: x\nteams: [a\nroutes: []\n", plugins, file="f.yaml")
    (problem,) = caught.value.problems
    assert problem.line is not None and "YAML syntax error" in problem.message


def test_a_source_key_typo_suggests_the_adapter_keys(plugins: Plugins) -> None:
    found = _problems("sources:\n  - name: s\n    adapter: simulator\n    seeed: 3\n", plugins)
    assert "did you mean 'seed'" in found["sources[0].seeed"].message
    assert found["sources[0].seeed"].line == 4


def test_duplicate_source_names_and_a_missing_file(plugins: Plugins, tmp_path: Path) -> None:
    found = _problems("sources:\n  - {name: s, adapter: simulator}\n"
                      "  - {name: s, adapter: simulator}\n", plugins)
    assert "already used by sources[0]" in found["sources[1].name"].message
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", plugins)


def test_check_exits_non_zero_with_every_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    result = subprocess.run([FLOORSTREAM, "check", "--offline", "-c", str(bad)],
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "12 problems" in result.stderr or "problems" in result.stderr
    for needle in ("defualt_team: unknown key", "did you mean 'simulator'",
                   "routes[1].teams[0]", f"{bad}:16: sources[0].detect[3]"):
        assert needle in result.stderr, result.stderr


def test_check_exits_zero_on_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("FS_TEST_DIR", str(tmp_path))
    assert main(["check", "--offline", "-c", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK (1 source, 0 sinks, 1 route)" in out


def test_schema_validates_the_demo_config(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    # the core part of the demo (simulator, detectors, routes, teams, flood); the ERP
    # source's shorthand keys belong to the erp.table adapter's own schema
    demo = yaml.safe_load(DEMO_CONFIG.format(dir=tmp_path, erp=""))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(demo)]
    assert errors == []
    # and it does catch mistakes an editor should underline
    demo["sources"][0]["interval"] = {"not": "a duration"}
    demo["defualt_team"] = "x"
    assert len(list(validator.iter_errors(demo))) >= 2
    assert "threshold" in json.dumps(schema) and "simulator" in json.dumps(schema)
