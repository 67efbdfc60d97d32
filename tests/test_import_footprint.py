"""What ``import floorstream`` and parsing a config load.

Issue 16 asks a daemon to import what its config uses only when it uses it. Each case runs a
fresh interpreter and reads its ``sys.modules`` (deterministic, unlike RSS): a JSON
MQTT/SQLite config parsed with the entry-point plugins loaded, and its daemon built, must not
have imported the supply-chain, ERP, OPC UA and MTConnect adapters, Jinja2 (no summary
template but plain ones), the health and web servers or the sinks' clients; a config that
does use one of them still loads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: modules a JSON MQTT/SQLite config does not need (any submodule counts)
UNUSED = (
    "jinja2",
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

#: a plain template (floorstream.plaintemplate) is checked without Jinja2; this one is not plain
PLAIN = CONFIG.replace("    detect:", '    summary: "{{{{ fields.after }}}}"\n    detect:')
TEMPLATED = CONFIG.replace("    detect:",
                           '    summary: "{{{{ fields.after | upper }}}}"\n    detect:')


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
        plain = parse_config({PLAIN.format(db=f"{tmp_path}/fs.db")!r}, plugins)
        jinja2_after_plain = "jinja2" in sys.modules
        templated = parse_config({TEMPLATED.format(db=f"{tmp_path}/fs.db")!r}, plugins)
        print(json.dumps({{"modules": modules, "adapters": plugins.adapters.names(),
                          "sources": [s.adapter for s in config.sources],
                          "jinja2_after_plain": jinja2_after_plain,
                          "jinja2_after_a_template": "jinja2" in sys.modules}}))
    """)
    result = json.loads(out)
    modules = result["modules"]
    assert result["sources"] == ["mqtt"]
    # every adapter is still registered (by name) and the config's own was imported
    assert {"mqtt", "opcua", "erp.table", "supply.folder"} <= set(result["adapters"])
    assert _loaded(modules, "floorstream.adapters.mqtt.adapter")
    assert [name for name in UNUSED if _loaded(modules, name)] == []
    assert not result["jinja2_after_plain"]  # fields into text: checked without Jinja2
    assert result["jinja2_after_a_template"]  # any other summary template: with Jinja2

