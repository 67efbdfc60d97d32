"""A daemon imports what its config uses, and only that (issue 16: peak RSS <= 60 MiB paced).

Each case runs a real daemon in a fresh interpreter — entry-point plugins loaded, as
``floorstream run`` does — against the local Mosquitto, and reads that process's
``sys.modules``: the OPC UA client (asyncua, cryptography), the MTConnect XML side, the
Sparkplug protobuf module, the supply-chain parsers and prometheus_client cost megabytes of
RSS a JSON-only MQTT daemon never uses. The JSON case first has the daemon commit a post (the
sentinel), so the decode/detect/commit path has run when the modules are listed; the Sparkplug
case shows the lazy decoder still loads protobuf when a source needs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.mqtt import Publisher

pytestmark = pytest.mark.mqtt

#: modules a JSON-only MQTT daemon must not import (any submodule counts)
UNUSED = (
    "asyncua",
    "cryptography",
    "floorstream_opcua.session",
    "floorstream_opcua.connect",
    "defusedxml",  # MTConnect's XML parser
    "xml.etree",
    "floorstream.adapters.mqtt.sparkplug_b",
    "google.protobuf",
    "floorstream.adapters.supply.formats",
    "prometheus_client",
    "urllib3",  # the webhook sink's HTTP client
    "smtplib",  # the e-mail sink's
    "sqlalchemy.dialects.mysql",  # a MariaDB store's types and table options
    "floorstream.delivery.service",  # the sinks' outbox and workers: no sinks configured
    "floorstream.delivery.outbox",
    "floorstream.delivery.worker",
    "floorstream.fleet.coordinator",  # a fleet: SQLite has none
    "floorstream.fleet.locks",
    "floorstream.adapters.mqtt.sparkplug_host",  # the Sparkplug stack: decode is json
    "floorstream.adapters.mqtt.sparkplug",
    "floorstream.adapters.mqtt.reorder",
    "floorstream.adapters.mqtt.prebirth",
    "floorstream.adapters.mqtt.backfill",
    "floorstream.adapters.mqtt.hoststate",
    "floorstream.adapters.mqtt.engunits",
    "floorstream.adapters.mqtt.lastwill",  # no last_will in the config
    "encodings.idna",  # the broker's host given to getaddrinfo as bytes (fastpath)
    "floorstream.detectors.silence",  # builtin detectors the config does not use
    "floorstream.detectors.field_change",
    "difflib",  # "did you mean": only a misspelt name in a config needs it
    "tenacity",  # the pipeline's commit retries: only once a commit failed
    "floorstream.adapters.supply.phrases",  # phrase books registered by reference
    "floorstream.adapters.supply.code_tables",
    "floorstream.adapters.erp",
)

CHILD = textwrap.dedent('''
    import json, sys, threading, time
    import floorstream
    from floorstream.config import parse_config
    from floorstream.daemon import Daemon
    from floorstream.logs import configure_logging
    from floorstream.plugins import build_plugins

    committed = threading.Event()

    class Sentinel:
        @floorstream.hookimpl
        def post_committed(self, posts):
            if any(post.subject == "sentinel" for post in posts):
                committed.set()

    plugins = build_plugins(extra=[Sentinel()])  # entry points too, as `floorstream run`
    config = parse_config(sys.stdin.read(), plugins)
    configure_logging("warning", "json")
    daemon = Daemon(config, plugins)
    daemon.start()
    deadline = time.monotonic() + 15
    while not daemon.status["src"].connected:
        if time.monotonic() > deadline:
            raise SystemExit("the source did not connect")
        time.sleep(0.02)
    print("READY", flush=True)
    if sys.argv[1] == "post" and not committed.wait(15):
        raise SystemExit("the sentinel post was not committed")
    print(json.dumps({"modules": sorted(sys.modules),
                      "adapters": plugins.adapters.names(),
                      "decoders": plugins.decoders.names()}), flush=True)
    daemon.stop()
''')


def _config(tmp_path: Path, host: str, port: int, prefix: str, decode: str) -> str:
    return textwrap.dedent(f"""
        store: sqlite:///{tmp_path}/fs.db
        logging: {{level: warning}}
        teams: {{maintenance: {{}}}}
        sources:
          - name: src
            adapter: mqtt
            url: mqtt://{host}:{port}
            client_id: lazy-{prefix.replace('/', '-')}
            decode: {decode}
            topics: ["{prefix}/#"]
            subject: "{{topic[2]}}"
            detect:
              - state_change: {{field: state}}
        routes:
          - {{match: {{}}, teams: [maintenance]}}
    """)


def _run(config: str, mode: str, publish: list[tuple[str, dict[str, str]]],
         host: str, port: int) -> dict[str, list[str]]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(config)
        child.stdin.close()
        ready = child.stdout.readline()
        assert ready.strip() == "READY", (ready, child.stderr and child.stderr.read())
        if publish:
            publisher = Publisher(host, port)
            try:
                publisher.publish_all(publish)
            finally:
                publisher.close()
        line = child.stdout.readline()
        assert line, child.stderr and child.stderr.read()
        result: dict[str, list[str]] = json.loads(line)
        assert child.wait(20) == 0, child.stderr and child.stderr.read()
        return result
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_a_json_mqtt_daemon_imports_no_unused_driver(
        tmp_path: Path, mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    host, port = mqtt_broker
    config = _config(tmp_path, host, port, topic_prefix, "json")
    topic = f"{topic_prefix}/sentinel"
    result = _run(config, "post", [(topic, {"state": "RUNNING"}), (topic, {"state": "STOPPED"})],
                  host, port)
    modules = result["modules"]
    # the check sees real imports: what the config uses is there, and so is every plugin
    assert _loaded(modules, "paho") and _loaded(modules, "floorstream.adapters.mqtt.adapter")
    assert {"opcua", "mtconnect.agent", "supply.folder"} <= set(result["adapters"])
    assert "sparkplug" in result["decoders"]
    assert [name for name in UNUSED if _loaded(modules, name)] == []


def test_a_sparkplug_source_still_loads_the_protobuf_decoder(
        tmp_path: Path, mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    host, port = mqtt_broker
    config = _config(tmp_path, host, port, topic_prefix, "sparkplug")
    modules = _run(config, "started", [], host, port)["modules"]
    assert _loaded(modules, "floorstream.adapters.mqtt.sparkplug_b.sparkplug_b_pb2")
    assert _loaded(modules, "floorstream.adapters.mqtt.sparkplug_host")  # and its stack
    assert not _loaded(modules, "asyncua")


def test_every_builtin_detector_is_registered_by_reference_and_loads_under_its_name() -> None:
    from floorstream.detectors.builtin import DETECTORS
    from floorstream.plugins import build_plugins

    plugins = build_plugins(load_entry_points=False)
    builtin = [e for e in plugins.detectors if e.plugin == "floorstream.detectors.builtin"]
    assert {e.name for e in builtin} == set(DETECTORS)
    for entry in builtin:
        assert entry.item.name == entry.name  # imports the module; a wrong target raises


def test_phrase_books_registered_by_reference_word_as_their_modules_register_them() -> None:
    from floorstream import flood
    from floorstream.adapters.erp import phrases as erp
    from floorstream.adapters.supply import phrases as supply
    from floorstream.plugin.registry import Registry
    from floorstream.plugins import build_plugins

    plugins = build_plugins(load_entry_points=False)
    for module in (supply, erp, flood):
        direct: Registry[object] = Registry("phrase")
        module.register_phrases(direct)  # the module's own hook, as a third party would call it
        lazy = [e for e in plugins.phrases if e.plugin == module.__name__]
        assert {e.name for e in lazy} == set(direct.names())
        for entry in lazy:
            assert entry.item.load() is direct.get(entry.name)  # type: ignore[attr-defined]
