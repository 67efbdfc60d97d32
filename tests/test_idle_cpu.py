"""A daemon with nothing to do costs next to no CPU: no thread polls in a tight loop (pipeline,
paho's network loop, delivery workers, the monitor, retention, the health server)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import DaemonRunner, wait_for
from support.mqtt import free_port

pytestmark = pytest.mark.mqtt

#: CPU seconds the whole process may use per second of idling (the pipeline's tick, the
#: monitor's SELECT 1, paho's keepalive bookkeeping: a few ms a second)
IDLE_BUDGET = 0.02


def _cpu_seconds() -> float:
    """user + system time of this process, every thread."""
    times = os.times()
    return times.user + times.system


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(json.load(reply).get("status") == "ready")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def test_an_idle_daemon_uses_almost_no_cpu(tmp_path: Path, mqtt_broker: tuple[str, int],
                                           topic_prefix: str) -> None:
    host, port = mqtt_broker
    health = free_port()
    config = f"""
store: sqlite:///{tmp_path}/fs.db
health: {{port: {health}}}
teams: {{maintenance: {{sinks: [hook]}}}}
sinks:
  - {{name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}}
sources:
  - name: presses
    adapter: mqtt
    url: mqtt://{host}:{port}
    qos: 1
    topics: ["{topic_prefix}/+/+/telemetry"]
    detect:
      - state_change: {{field: state}}
      - silence: {{after: 60s}}
routes:
  - {{match: {{source: presses}}, teams: [maintenance]}}
"""
    # in this process: a `floorstream run` process would spend most of the test importing;
    # pytest's own thread sleeps meanwhile, so the process's CPU is the daemon's
    with DaemonRunner(config) as daemon:
        daemon.start()
        wait_for(lambda: _ready(health), timeout=30, what="/readyz 200")
        time.sleep(0.5)  # the start's last work (the first retention pass, connections)
        before = _cpu_seconds()
        started = time.monotonic()
        time.sleep(3.0)  # the measurement window itself: idling is what is measured
        used = _cpu_seconds() - before
        seconds = time.monotonic() - started
        threads = threading.active_count()
    assert used / seconds < IDLE_BUDGET, (
        f"{used:.3f} CPU s in {seconds:.1f} s of idling ({threads} threads)")
