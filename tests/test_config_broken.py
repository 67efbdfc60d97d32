"""Broken configs: ``check`` rejects each one up front, with exit 2, a one-line reason at its own
key path and no traceback; ``run`` refuses the same file with the same lines and creates
nothing (no ``./floorstream.db``). Every problem of a file is reported in one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from floorstream.cli import main
from floorstream.config import load_config
from floorstream.errors import ConfigError
from floorstream.plugins import Plugins, build_plugins
from floorstream.yamlsource import MAX_BYTES


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes
    #: key path → words its message must contain ("" is the top level)
    expect: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)


def _src(body: str, name: str = "s", adapter: str = "simulator") -> str:
    """A config with one source; ``body`` holds its extra keys, 4 spaces deep."""
    return f"sources:\n  - name: {name}\n    adapter: {adapter}\n{body}"


def _mqtt(body: str) -> str:
    return _src("    topics: [plant/+/telemetry]\n" + body, adapter="mqtt")


_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
    for i in range(8))

CASES = [
    # -- the store: parsed, supported, driver installed, port in range ------------------------
    Case("store-not-a-url", "store: notaurl\n", {"store": "not a database URL"}),
    Case("store-oracle", "store: oracle://scott:tiger@db/orcl\n",
         {"store": "pip install oracledb"}),
    Case("store-mssql", "store: mssql+pyodbc://u@db/x\n", {"store": "pip install pyodbc"}),
    Case("store-port-999999", "store: postgresql+psycopg://u@db:999999/x\n",
         {"store": "port 999999 is out of range"}),
    Case("store-port-text", "store: postgresql+psycopg://u@db:five/x\n",
         {"store": "not a database URL"}),
    Case("store-unknown-db", "store: nosuchdb://x/y\n", {"store": "unknown database"}),
    Case("store-not-text", "store: 5\n", {"store": "valid string"}),
    Case("store-unset-env", "store: sqlite:///${FS_BROKEN_UNSET}/x.db\n",
         {"store": "FS_BROKEN_UNSET is not set"}),
    # -- an ERP database: the same, at the source's url -------------------------------------
    Case("erp-url-driver", _src("    url: mssql+pymssql://u@db/x\n    table: orders\n",
                                adapter="erp.table"),
         {"sources[0].url": "its driver pymssql is not installed: pip install pymssql"}),
    Case("erp-url-not-a-url", _src("    url: erp-db\n    table: orders\n", adapter="erp.table"),
         {"sources[0].url": "not a database URL"}),
    # -- templates: compiled with the renderer's environment -------------------------------
    Case("summary-unknown-filter", _src("    summary: '{{ subject | shout }}'\n"),
         {"sources[0].summary": "unknown filter 'shout'"}),
    Case("summary-filter-in-if",
         _src("    summary: '{% if fields.t %}{{ fields.t | numbr }}{% endif %}'\n"),
         {"sources[0].summary": "unknown filter 'numbr'; did you mean 'number'"}),
    Case("summary-unknown-test", _src("    summary: '{% if subject is shouting %}x{% endif %}'\n"),
         {"sources[0].summary": "unknown test 'shouting'"}),
    Case("summary-syntax", _src("    summary: '{{ subject }'\n"),
         {"sources[0].summary": "template syntax error"}),
    Case("summary-map-template", _src("    summary: {'machine.*': '{{ subject | nope }}'}\n"),
         {"sources[0].summary.machine.*": "unknown filter 'nope'"}),
    Case("summary-not-text", _src("    summary: 5\n"),
         {"sources[0].summary": "a valid string or a valid dictionary (got 5)"}),
    # -- mqtt: subject templates, url, decoder, numbers ------------------------------------
    Case("mqtt-subject-bracket", _mqtt("    subject: '{topic[}'\n"),
         {"sources[0].subject": "{topic[N]}"}),
    Case("mqtt-subject-level-text", _mqtt("    subject: '{topic[x]}'\n"),
         {"sources[0].subject": "{topic[N]}"}),
    Case("mqtt-subject-unbalanced", _mqtt("    subject: 'press-{topic[2]'\n"),
         {"sources[0].subject": "unbalanced braces"}),
    Case("mqtt-subject-empty", _mqtt("    subject: 'press-{ }'\n"),
         {"sources[0].subject": "empty placeholder"}),
    Case("mqtt-subject-bare-level", _mqtt("    subject: '{1}'\n"),
         {"sources[0].subject": "a topic level is written {topic[1]}"}),
    Case("mqtt-attrs-template", _mqtt("    attrs: {area: '{topic[}'}\n"),
         {"sources[0]": "attrs.area"}),
    Case("mqtt-last-will-subject",
         _mqtt("    last_will: {topic: 'plant/+/+/status', subject: '{topic[}'}\n"),
         {"sources[0].last_will.subject": "{topic[N]}"}),
    Case("mqtt-port-99999", _mqtt("    url: mqtt://broker:99999\n"),
         {"sources[0].url": "port must be a number from 1 to 65535"}),
    Case("mqtt-port-0", _mqtt("    url: mqtt://broker:0\n"), {"sources[0].url": "port"}),
    Case("mqtt-port-text", _mqtt("    url: mqtt://broker:abc\n"), {"sources[0].url": "port"}),
    Case("mqtt-scheme", _mqtt("    url: http://broker:1883\n"),
         {"sources[0].url": "mqtt://host:port"}),
    Case("mqtt-no-host", _mqtt("    url: 'mqtt://'\n"), {"sources[0].url": "no host"}),
    Case("mqtt-decode-xml", _mqtt("    decode: xml\n"),
         {"sources[0].decode": "unknown decoder 'xml'"}),
    Case("mqtt-decode-typo", _mqtt("    decode: jsn\n"),
         {"sources[0].decode": "did you mean 'json'"}),
    Case("mqtt-no-topics", _src("    topics: []\n", adapter="mqtt"),
         {"sources[0].topics": "at least 1"}),
    Case("mqtt-bad-filter", _src("    topics: ['a/#/b']\n", adapter="mqtt"),
         {"sources[0].topics": "'#' must be the whole last level"}),
    Case("mqtt-qos-3", _mqtt("    qos: 3\n"), {"sources[0].qos": "0, 1 or 2"}),
    Case("mqtt-protocol", _mqtt("    protocol: '4'\n"), {"sources[0].protocol": "'3.1.1'"}),
    Case("mqtt-shared-311", _mqtt("    protocol: '3.1.1'\n    shared_group: g\n"),
         {"sources[0]": "shared_group needs protocol 5"}),
    Case("mqtt-keepalive", _mqtt("    keepalive: 1\n"), {"sources[0].keepalive": "5"}),
    Case("mqtt-reconnect", _mqtt("    reconnect_min: 10s\n    reconnect_max: 1s\n"),
         {"sources[0]": "reconnect_max"}),
    Case("mqtt-session-expiry-inf", _mqtt("    session_expiry: .inf\n"),
         {"sources[0].session_expiry": "not a finite number"}),
    Case("mqtt-session-expiry-text-inf", _mqtt("    session_expiry: 'inf'\n"),
         {"sources[0].session_expiry": "duration"}),
    # -- pipeline numbers --------------------------------------------------------------------
    Case("batch-wait-inf", "pipeline: {batch_wait_ms: .inf}\n",
         {"pipeline.batch_wait_ms": "not a finite number"}),
    Case("batch-wait-negative", "pipeline: {batch_wait_ms: -1}\n",
         {"pipeline.batch_wait_ms": "greater than or equal to 0"}),
    Case("batch-wait-hours", "pipeline: {batch_wait_ms: 3600000}\n",
         {"pipeline.batch_wait_ms": "less than or equal to 60000"}),
    Case("queue-size-1e33", "pipeline: {queue_size: 1.0e+33}\n", {"pipeline.queue_size": ""}),
    Case("queue-size-1e33-text", "pipeline: {queue_size: 1e33}\n",
         {"pipeline.queue_size": "integer"}),
    Case("queue-size-huge", "pipeline: {queue_size: 100000000}\n",
         {"pipeline.queue_size": "less than or equal to 10000000"}),
    Case("queue-size-0", "pipeline: {queue_size: 0}\n",
         {"pipeline.queue_size": "greater than or equal to 1"}),
    Case("batch-max-text", "pipeline: {batch_max: lots}\n", {"pipeline.batch_max": "'lots'"}),
    Case("tick-0", "pipeline: {tick_s: 0}\n", {"pipeline.tick_s": "greater than 0"}),
    Case("tick-nan", "pipeline: {tick_s: .nan}\n", {"pipeline.tick_s": "not a finite number"}),
    Case("tick-text-nan", "pipeline: {tick_s: 'nan'}\n", {"pipeline.tick_s": "finite number"}),
    # -- detectors -----------------------------------------------------------------------------
    Case("threshold-nan", _src("    detect:\n      - threshold: {field: t, above: .nan}\n"),
         {"sources[0].detect[0].threshold.above": "not a finite number"}),
    Case("threshold-inf", _src("    detect:\n      - threshold: {field: t, below: -.inf}\n"),
         {"sources[0].detect[0].threshold.below": "not a finite number"}),
    Case("threshold-text-nan", _src("    detect:\n      - threshold: {field: t, above: NaN}\n"),
         {"sources[0].detect[0].threshold.above": "finite number"}),
    Case("threshold-no-field", _src("    detect:\n      - threshold: {above: 85}\n"),
         {"sources[0].detect[0].threshold.field": "required key is missing"}),
    Case("detector-typo", _src("    detect:\n      - thresold: {field: t, above: 1}\n"),
         {"sources[0].detect[0]": "did you mean 'threshold'"}),
    Case("silence-words", _src("    detect:\n      - silence: {after: ten minutes}\n"),
         {"sources[0].detect[0].silence.after": "expected a duration"}),
    Case("state-severity", _src("    detect:\n      - state_change: {field: s, severity: "
                                "{FAULT: urgent}}\n"),
         {"sources[0].detect[0].state_change.severity.FAULT": "unknown severity 'urgent'"}),
    Case("detect-not-list", _src("    detect: {threshold: {field: t}}\n"),
         {"sources[0].detect": "expected a list of detectors"}),
    Case("detect-two-keys", _src("    detect:\n      - {threshold: {field: t, above: 1}, "
                                 "silence: {after: 1m}}\n"),
         {"sources[0].detect[0]": "expected one detector"}),
    Case("detect-options-scalar", _src("    detect:\n      - threshold: 5\n"),
         {"sources[0].detect[0].threshold": "dictionary"}),
    Case("detect-entry-number", _src("    detect:\n      - 5\n"),
         {"sources[0].detect[0]": "expected one detector"}),
    Case("detect-key-number", _src("    detect:\n      - {5: {}}\n"),
         {"sources[0].detect[0]": "expected one detector"}),
    # -- flood -----------------------------------------------------------------------------
    Case("flood-window-inf", "flood: {window: .inf}\n", {"flood.window": "not a finite number"}),
    Case("flood-max-0", "flood: {max_posts: 0}\n", {"flood.max_posts": "greater than or equal"}),
    Case("source-flood-negative", _src("    flood: {window: -5m}\n"),
         {"sources[0].flood.window": "duration"}),
    # -- plugins -----------------------------------------------------------------------------
    Case("disable-nobody", "plugins: {disable: [nosuch-plugin]}\n",
         {"plugins.disable[0]": "no plugin is named 'nosuch-plugin'"}),
    Case("disable-typo", "plugins: {disable: [floorstream.adapters.simulatr]}\n",
         {"plugins.disable[0]": "did you mean 'floorstream.adapters.simulator'"}),
    # -- YAML itself -----------------------------------------------------------------------
    Case("duplicate-top-key", "store: sqlite:///a.db\nstore: sqlite:///b.db\n",
         {"store": "duplicate key 'store' (first at line 1)"}),
    Case("duplicate-source-key", _src("    seed: 1\n    seed: 2\n"),
         {"sources[0].seed": "duplicate key 'seed'"}),
    Case("duplicate-team", "teams:\n  ops: {}\n  ops: {immediate: warning}\n",
         {"teams.ops": "duplicate key 'ops'"}),
    Case("empty-file", "", {"": "the file is empty"}),
    Case("only-comments", "# nothing yet\n\n# still nothing\n", {"": "the file is empty"}),
    Case("not-utf8", b"store: sqlite:///caf\xe9.db\n", {"": "not UTF-8 text: byte 0xe9"}),
    Case("utf16", "store: sqlite:///x.db\n".encode("utf-16"), {"": "UTF-16"}),
    Case("deep-nesting", "a: " + "[" * 200_000 + "]" * 200_000 + "\n",
         {"": "nesting deeper than 64"}),
    Case("deep-mappings", "".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "x\n",
         {"": "nesting deeper than 64"}),
    Case("billion-laughs", _BOMB, {"": "expands to more than"}),
    Case("alias-depth", "a: &a [[[[[[[[[[1]]]]]]]]]]\n" + "".join(
        f"b{i}: &b{i} [[[[[[[[[[*{'a' if i == 0 else f'b{i - 1}'}]]]]]]]]]]\n" for i in range(8)),
         {"": "nesting deeper than 64"}),
    Case("recursive-alias", "sources: &s [*s]\n", {"": "recursive"}),
    Case("syntax-error", "store: x\nteams: [a\nroutes: []\n", {"": "YAML syntax error"}),
    Case("top-level-list", "- store: x\n", {"": "mapping of keys"}),
    Case("top-level-scalar", "just words\n", {"": "mapping of keys"}),
    Case("control-character", "store: sqlite:///a\x07.db\n", {"": "U+0007 is not allowed"}),
    Case("two-documents", "store: sqlite:///a.db\n---\nstore: sqlite:///b.db\n",
         {"": "expected a single document"}),
    Case("unhashable-key", "? [a, b]\n: 1\n", {"": "YAML syntax error"}),
    # -- sources: every problem at once ----------------------------------------------------
    Case("unknown-adapter-hides-nothing",
         _src("    enabled: maybe\n    summary: '{{ x | nope }}'\n    detect:\n"
              "      - thresold: {}\n    flood: {window: -1}\n", name="bad name!",
              adapter="nosuch"),
         {"sources[0].adapter": "unknown adapter 'nosuch'",
          "sources[0].enabled": "valid boolean", "sources[0].summary": "unknown filter",
          "sources[0].detect[0]": "unknown detector", "sources[0].flood.window": "duration",
          "sources[0].name": "pattern"}),
    Case("missing-adapter", "sources:\n  - {name: s, enabled: maybe}\n",
         {"sources[0].adapter": "required key is missing",
          "sources[0].enabled": "valid boolean"}),
    Case("duplicate-name-with-others",
         "sources:\n  - {name: s, adapter: simulator, seeed: 1}\n"
         "  - {name: s, adapter: simulater}\n",
         {"sources[0].seeed": "did you mean 'seed'",
          "sources[1].name": "already used by sources[0]",
          "sources[1].adapter": "did you mean 'simulator'"}),
    Case("source-name-pattern", _src("", name="'bad name!'"), {"sources[0].name": "pattern"}),
    Case("sources-mapping", "sources: {s: {adapter: simulator}}\n", {"sources": "valid list"}),
    Case("source-a-string", "sources: [simulator]\n", {"sources[0]": "dictionary"}),
    Case("source-key-typo", _src("    seeed: 3\n"), {"sources[0].seeed": "did you mean 'seed'"}),
    Case("simulator-interval", _src("    interval: {not: a duration}\n"),
         {"sources[0].interval": "duration"}),
    Case("erp-cursor-missing",
         _src("    url: sqlite:///erp.db\n    table: orders\n", adapter="erp.table"),
         {"sources[0].tables[0]": "mode cursor needs cursor"}),
    # -- teams: each setting at its own key, all at once ----------------------------------
    Case("team-timezone", "teams:\n  ops: {timezone: Mars/Olympus}\n",
         {"teams.ops.timezone": "unknown time zone 'Mars/Olympus'"}),
    Case("team-digest", "teams:\n  ops: {digest: 10s}\n",
         {"teams.ops.digest": "below one minute"}),
    Case("team-digest-words", "teams:\n  ops: {digest: hourly}\n",
         {"teams.ops.digest": "expected a duration"}),
    Case("team-quiet-hours", "teams:\n  ops: {quiet_hours: '25:00-06:00'}\n",
         {"teams.ops.quiet_hours": "HH:MM"}),
    Case("team-immediate", "teams:\n  ops: {immediate: urgent}\n",
         {"teams.ops.immediate": "unknown severity 'urgent'"}),
    Case("team-everything",
         "teams:\n  ops:\n    timezone: Mars/Olympus\n    digest: 10s\n"
         "    quiet_hours: '22:00'\n    immediate: urgent\n"
         "  planning: {digest: '06:00,26:00'}\n",
         {"teams.ops.timezone": "time zone", "teams.ops.digest": "one minute",
          "teams.ops.quiet_hours": "HH:MM-HH:MM", "teams.ops.immediate": "severity",
          "teams.planning.digest": "'26:00'"}),
    Case("team-sink-undeclared", "teams:\n  ops: {sinks: [slak]}\nsinks:\n"
                                 "  - {name: slack, type: file, path: /tmp/p.jsonl}\n",
         {"teams.ops.sinks[0]": "did you mean 'slack'"}),
    # -- routes ----------------------------------------------------------------------------
    Case("route-team-undeclared", "teams: {maintenance: {}}\nroutes:\n"
                                  "  - {match: {type: 'x.*'}, teams: [maintenence]}\n",
         {"routes[0].teams[0]": "did you mean 'maintenance'"}),
    Case("route-severity", "routes:\n  - {match: {severity: '>=urgent'}, teams: [a]}\n",
         {"routes[0].match.severity": "unknown severity"}),
    Case("route-no-teams", "routes:\n  - {match: {source: s}}\n",
         {"routes[0].teams": "required key is missing"}),
    # -- sinks -------------------------------------------------------------------------------
    Case("sink-unknown-type-hides-nothing",
         "sinks:\n  - {name: s, type: pager, workers: 0}\n",
         {"sinks[0].type": "unknown sink 'pager'", "sinks[0].workers": "greater than"}),
    Case("sink-duplicate-name",
         "sinks:\n  - {name: s, type: file, path: /tmp/a.jsonl}\n"
         "  - {name: s, type: file, path: /tmp/b.jsonl}\n",
         {"sinks[1].name": "already used by sinks[0]"}),
    Case("sink-retry-inf", "sinks:\n  - {name: s, type: file, path: /tmp/a.jsonl, "
                           "retry: {max_age: .inf}}\n",
         {"sinks[0].retry.max_age": "not a finite number"}),
    Case("sink-webhook-no-url", "sinks:\n  - {name: s, type: webhook}\n",
         {"sinks[0].url": "required key is missing"}),
    # -- the rest of the top level -------------------------------------------------------
    Case("health-port", "health: {port: 70000}\n", {"health.port": "65535"}),
    Case("logging-level", "logging: {level: verbose}\n", {"logging.level": "pattern"}),
    Case("unknown-top-key", "defualt_team: x\n", {"defualt_team": "did you mean 'default_team'"}),
]


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return build_plugins()


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "floorstream.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    return path


def test_enough_broken_configs() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_and_run_reject_it_the_same_way(
        case: Case, plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOORSTREAM_CONFIG", raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    path = _write(tmp_path, case)

    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins)
    found = {p.path: p.message for p in caught.value.problems}
    for key, words in case.expect.items():
        assert key in found, f"no problem at {key or '<top level>'!r}: {found}"
        assert words in found[key], (key, found[key])

    capsys.readouterr()
    assert main(["check", "-c", str(path), "--offline"]) == 2
    checked = capsys.readouterr()
    assert main(["run", "-c", str(path), "--for", "0.2"]) == 2
    ran = capsys.readouterr()
    assert checked.err == ran.err  # the same validation, the same lines
    assert "Traceback" not in checked.err + checked.out
    lines = checked.err.splitlines()
    assert lines[0].startswith("floorstream: the configuration is invalid")
    assert len(lines) == 1 + len(caught.value.problems)
    for key in case.expect:
        assert any(f": {key or '<top level>'}: " in line for line in lines[1:]), lines
    assert not (tmp_path / "floorstream.db").exists()


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path, plugins: Plugins) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("# " + "x" * (MAX_BYTES + 10) + "\n")
    with pytest.raises(ConfigError, match="larger than 10 MiB"):
        load_config(path, plugins)


def test_a_missing_file_and_a_directory(tmp_path: Path, plugins: Plugins) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", plugins)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, plugins)


def test_a_secret_from_the_environment_is_not_printed(
        tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS_BROKEN_PORT", "hunter22secret")
    path = tmp_path / "c.yaml"
    path.write_text("health: {port: '${FS_BROKEN_PORT}'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins)
    (problem,) = caught.value.problems
    assert problem.path == "health.port" and "hunter22secret" not in str(problem)


# -- the hostile files in a real process: quick, small, no traceback -------------------------

_MEASURE = """\
import resource, sys, time
from floorstream.cli import main
start = time.process_time()  # CPU, not wall: a blow-up costs CPU; a busy machine, only wall
code = main(["check", "-c", sys.argv[1], "--offline"])
print(f"{time.process_time() - start:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
      file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("case", [c for c in CASES if c.id in (
    "billion-laughs", "deep-nesting", "not-utf8", "recursive-alias", "empty-file")],
    ids=lambda c: c.id)
def test_hostile_files_in_a_process(case: Case, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "FLOORSTREAM_CONFIG": ""})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    seconds, max_rss_kib = result.stderr.splitlines()[-1].split()
    assert float(seconds) < 5
    assert int(max_rss_kib) < 400 * 1024  # the interpreter and floorstream's imports included
    assert not (tmp_path / "floorstream.db").exists()


def test_run_does_not_trace_back_on_an_unreachable_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid config whose store server is down: check warns (it is not a config error),
    run says so in one line and exits 1."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("store: postgresql+psycopg://fs:pw@127.0.0.1:1/fs\n", encoding="utf-8")
    assert main(["check", "-c", str(path), "--offline"]) == 0
    capsys.readouterr()
    assert main(["check", "-c", str(path)]) == 0
    assert "warning: store: cannot connect now" in capsys.readouterr().err
    started = time.monotonic()
    assert main(["run", "-c", str(path), "--for", "0.2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("floorstream: cannot open the store: ") and err.count("\n") == 1
    assert "Traceback" not in err and "pw" not in err.replace("postgres", "")
    assert time.monotonic() - started < 30


def test_run_on_a_sqlite_store_in_a_missing_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("store: sqlite:///no/such/folder/fs.db\n", encoding="utf-8")
    assert main(["check", "-c", str(path), "--offline"]) == 0
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "-c", str(path), "--for", "0.2"]) == 1
    # the warning check gave, logged (config_warning), then the one line that says why not
    warning, err = capsys.readouterr().err.splitlines()
    assert "config_warning" in warning and "does not exist" in warning
    assert err.startswith("floorstream: cannot open the store: ")


def test_plugins_disable_is_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("plugins: {disable: [floorstream.adapters.simulator]}\n"
                    "sources: [{name: s, adapter: simulator}]\n", encoding="utf-8")
    assert main(["check", "-c", str(path), "--offline"]) == 2
    assert "sources[0].adapter: unknown adapter 'simulator'" in capsys.readouterr().err


def test_check_warns_of_a_web_feed_nobody_can_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``web: {port: …}`` without people, public teams or single sign-on answers every page
    with "log in" and nobody to log in as: valid, but check says what to add."""
    path = tmp_path / "c.yaml"
    path.write_text(f"store: sqlite:///{tmp_path}/fs.db\nweb: {{port: 8080}}\n",
                    encoding="utf-8")
    assert main(["check", "-c", str(path), "--offline"]) == 0
    captured = capsys.readouterr()
    assert "warning: web: nobody can read the feed: add web.people" in captured.err
    assert "OK (0 sources, 0 sinks, 0 routes)" in captured.out
    path.write_text("web: {port: 99999}\n", encoding="utf-8")  # one problem, said so
    assert main(["check", "-c", str(path), "--offline"]) == 2
    assert "the configuration is invalid (1 problem):" in capsys.readouterr().err
    path.write_text(f"store: sqlite:///{tmp_path}/fs.db\nteams: {{ops: {{}}}}\n"
                    "web: {port: 8080, public_teams: [ops]}\n", encoding="utf-8")
    assert main(["check", "-c", str(path), "--offline"]) == 0
    assert "nobody can read" not in capsys.readouterr().err
    # run logs what check warns of (a service's log is where it is read)
    path.write_text(f"store: sqlite:///{tmp_path}/fs.db\nweb: {{port: 0}}\n", encoding="utf-8")
    assert main(["run", "-c", str(path), "--for", "0.2", "--log-format", "json"]) == 0
    captured = capsys.readouterr()
    assert "config_warning" in captured.out + captured.err
    assert "nobody can read the feed" in captured.out + captured.err
