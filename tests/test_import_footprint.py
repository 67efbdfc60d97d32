"""What ``import floorstream`` and parsing a config load, and that the lean paths say the same.

Issue 16's memory target (peak RSS <= 60 MiB paced) is met by importing what a config uses
only when it uses it. Each case runs a fresh interpreter and reads its ``sys.modules``
(deterministic, unlike RSS): a JSON MQTT/SQLite config parsed with the entry-point plugins
loaded, and its daemon built, must not have imported structlog (and with it rich, pygments,
greenlet), the supply-chain, ERP, OPC UA and MTConnect adapters, Jinja2 (no summary template),
the health and web servers or the sinks' clients; a config that does use one of them still
loads it. The log lines floorstream writes without structlog are compared with the ones
structlog writes for the same calls (structlog imported first), so the lean path is checked
against the real one, not against a copy of its format.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: modules a JSON MQTT/SQLite config does not need (any submodule counts)
UNUSED = (
    "structlog", "rich", "pygments", "greenlet", "attr", "jinja2",
    "asyncua", "floorstream_opcua.adapter", "floorstream_mtconnect.agent",
    "floorstream_mtconnect.shdr",
    "floorstream.adapters.erp.adapter", "floorstream.adapters.supply.folder",
    "floorstream.adapters.supply.http_poll", "floorstream.adapters.supply.inbox",
    "http.server", "socketserver", "starlette", "uvicorn", "fastapi", "apprise", "urllib3",
    "smtplib",
    "google.protobuf", "prometheus_client",
)

CONFIG = """
store: sqlite:///{db}
logging: {{level: warning}}
teams: {{maintenance: {{}}}}
sources:
  - name: storm
    adapter: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ["plant/+/+/telemetry"]
    subject: "{{topic[2]}}"
    detect:
      - state_change: {{field: state}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 82}}
routes:
  - {{match: {{}}, teams: [maintenance]}}
"""


def test_every_builtin_registered_by_reference_loads_under_its_name() -> None:
    from floorstream.plugins import LAZY_BUILTINS, build_plugins

    plugins = build_plugins(load_entry_points=False)
    lazy = [e for r in (plugins.adapters, plugins.sinks) for e in r if e.plugin in LAZY_BUILTINS]
    assert {e.name for e in lazy} >= {"mqtt", "erp.table", "supply.folder", "webhook", "email"}
    for entry in lazy:
        assert entry.item.name == entry.name  # imports the module; a wrong target raises
        assert entry.loaded

TEMPLATED = CONFIG.replace("    detect:", '    summary: "{{{{ fields.after }}}}"\n    detect:')


def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_a_json_mqtt_sqlite_config_imports_nothing_it_does_not_use(tmp_path: object) -> None:
    out = _child(f"""
        import json, sys
        import floorstream
        from floorstream.config import parse_config
        from floorstream.daemon import Daemon
        from floorstream.plugins import build_plugins
        from floorstream.logs import configure_logging
        plugins = build_plugins()  # entry points too, as `floorstream run`
        config = parse_config({CONFIG.format(db=f"{tmp_path}/fs.db")!r}, plugins)
        configure_logging("warning", "json")
        Daemon(config, plugins).store.close()  # the daemon's modules, its store opened
        modules = sorted(sys.modules)
        templated = parse_config({TEMPLATED.format(db=f"{tmp_path}/fs.db")!r}, plugins)
        print(json.dumps({{"modules": modules, "adapters": plugins.adapters.names(),
                          "sources": [s.adapter for s in config.sources],
                          "jinja2_after_a_template": "jinja2" in sys.modules}}))
    """)
    result = json.loads(out)
    modules = result["modules"]
    assert result["sources"] == ["mqtt"]
    # every adapter is still registered (by name) and the config's own was imported
    assert {"mqtt", "opcua", "erp.table", "supply.folder"} <= set(result["adapters"])
    assert _loaded(modules, "floorstream.adapters.mqtt.adapter")
    assert [name for name in UNUSED if _loaded(modules, name)] == []
    assert result["jinja2_after_a_template"]  # a summary template is checked with Jinja2


LOG_CALLS = """
    import sys
    from floorstream.logs import get_logger
    log = get_logger("floorstream.test")
    log.debug("hidden_below_info", n=1)
    log.info("plain", n=1, f=1.5, ok=True, none=None, items=[1, "a"])
    log.warning("secret", url="https://hooks.example/s3cr3t-token/x", obj=object.__new__(Odd))
    log.bind(source="src", n=0).error("bound", n=2)
    log.info("%s of %d", "one", 2)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", step="x")
    try:
        raise KeyError("k")
    except KeyError as exc:
        log.warning("given", exc_info=exc)
    log.info("no_exc", exc_info=True)
"""

ODD = """
class Odd:
    def __repr__(self):
        return "<odd>"
"""


def _json_lines(with_structlog: bool) -> list[dict[str, object]]:
    prelude = "import structlog\n" if with_structlog else "pass\n"  # same line numbers
    out = _child(prelude + ODD + textwrap.dedent("""
        import sys
        from floorstream.logs import configure_logging
        configure_logging("info", "json", secrets={"s3cr3t-token"}, stream=sys.stdout)
    """) + textwrap.dedent(LOG_CALLS) + "print('structlog' in sys.modules)\n")
    *lines, imported = out.splitlines()
    assert imported == str(with_structlog)
    found = [json.loads(line) for line in lines]
    for line in found:
        assert isinstance(line.pop("timestamp"), str)
    return found


def test_the_daemons_json_lines_are_structlogs_without_it() -> None:
    lean, real = _json_lines(False), _json_lines(True)
    assert lean == real
    assert [line["event"] for line in lean] == [
        "plain", "secret", "bound", "one of 2", "failed", "given", "no_exc"]
    assert lean[1]["url"] == "https://hooks.example/***/x" and lean[1]["obj"] == "<odd>"
    assert "ValueError: boom" in str(lean[4]["exception"]) and lean[4]["level"] == "error"


def _library_records(with_structlog: bool) -> list[str]:
    prelude = "import structlog\n" if with_structlog else "pass\n"  # same line numbers
    out = _child(prelude + ODD + textwrap.dedent("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                            format="%(name)s|%(levelname)s|%(message)s|%(exc_text)s")
        import floorstream
    """) + textwrap.dedent(LOG_CALLS) + "print('structlog' in sys.modules)\n")
    *lines, imported = out.splitlines()
    assert imported == str(with_structlog)
    return lines


def test_the_librarys_logging_records_are_structlogs_without_it() -> None:
    lean, real = _library_records(False), _library_records(True)
    assert lean == real
    assert lean[0] == ("floorstream.test|INFO|event='plain' f=1.5 items=[1, 'a'] n=1 "
                       "none=None ok=True|None")


def test_structlog_imported_after_the_daemons_start_writes_the_same_json_lines() -> None:
    """A plugin that imports structlog once the daemon runs: floorstream's lines go through
    structlog from then on, configured as the daemon's (format, level, redaction, stream)."""
    out = _child("""
        import sys
        from floorstream.logs import configure_logging, get_logger
        configure_logging("info", "json", secrets={"t0p-secret"}, stream=sys.stdout)
        log = get_logger("floorstream.test")
        log.info("before", url="x/t0p-secret")
        import structlog
        log.debug("hidden_below_info")
        log.info("after", url="x/t0p-secret")
        structlog.get_logger("plugin").warning("plugin_line", url="x/t0p-secret")
    """)
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        assert isinstance(line.pop("timestamp"), str)
    assert lines == [
        {"url": "x/***", "event": "before", "level": "info"},
        {"url": "x/***", "event": "after", "level": "info"},
        {"url": "x/***", "event": "plugin_line", "level": "warning"},
    ]
