"""RSS of a started daemon and the optional modules it loaded (issue 16's memory target).

Builds the daemon the peers harness runs (``bench/peers_sut.py``'s config: one JSON mqtt
source, state_change and threshold, SQLite) with the entry-point plugins loaded, as
``floorstream run`` does, starts it against a broker (``--port``, default the local
Mosquitto on 1883; nothing is published), waits until the source is connected and prints
one JSON line: ``rss_mb`` and ``hwm_mb`` (VmRSS, VmHWM), ``modules`` (len(sys.modules)), and
``loaded``: which of the modules a JSON-only MQTT daemon does not need are in sys.modules.

    python bench/startup_memory.py [--port 1883]

Run it under ``python -X importtime`` to see where the import time goes. The peak of a paced
run is ``bench/mqtt.py --modes paced`` (its subscriber does not load entry points).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import peers_sut

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging
from floorstream.plugins import build_plugins

#: optional modules, each costing MBs, that this config does not use
OPTIONAL = ("asyncua", "cryptography", "defusedxml", "rich", "prometheus_client", "apprise",
            "google.protobuf", "floorstream.adapters.mqtt.sparkplug_b",
            "floorstream.adapters.supply.formats", "floorstream_opcua.session",
            "urllib3", "psycopg", "pymysql", "pygments", "greenlet",
            "floorstream.adapters.erp.adapter", "floorstream.adapters.supply.folder",
            "floorstream_opcua.adapter", "floorstream_mtconnect.agent", "http.server",
            "sqlalchemy.dialects.mysql", "floorstream.delivery.service",
            "floorstream.delivery.outbox", "floorstream.fleet.coordinator",
            "floorstream.fleet.locks", "floorstream.adapters.mqtt.sparkplug_host",
            "floorstream.adapters.mqtt.sparkplug", "floorstream.adapters.mqtt.reorder",
            "floorstream.adapters.mqtt.lastwill", "encodings.idna",
            "floorstream.detectors.silence", "floorstream.detectors.field_change",
            "jinja2",  # the peers templates are plain (floorstream.plaintemplate)
            "difflib",  # only a misspelt name in a config needs it
            "tenacity",  # only a failed commit (the pipeline's retries) needs it
            "floorstream.adapters.supply.phrases", "floorstream.adapters.supply.code_tables",
            "floorstream.adapters.erp",  # phrase books: loaded when a post is worded
            "floorstream.flood", "floorstream.settle")  # flood: null, no states:


def _status() -> dict[str, float]:
    found: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=1883)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugins = build_plugins()
        config = parse_config(peers_sut.CONFIG.format(
            db=f"{tmp}/fs.db", port=a.port, qos=0, pid=os.getpid(), temp=peers_sut.TEMP),
            plugins)
        configure_logging("warning", "json")
        daemon = Daemon(config, plugins)
        daemon.start()
        try:
            deadline = time.monotonic() + 15
            while not daemon.status["storm"].connected:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the source did not connect to port {a.port}")
                time.sleep(0.02)
            memory = _status()
            loaded = [m for m in OPTIONAL
                      if any(n == m or n.startswith(m + ".") for n in list(sys.modules))]
            print(json.dumps({"rss_mb": memory["VmRSS"], "hwm_mb": memory["VmHWM"],
                              "modules": len(sys.modules), "loaded": loaded}))
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
