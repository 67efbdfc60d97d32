"""``/healthz``, ``/readyz`` and the ``context.health`` plugin API, on real in-process daemons.

The outages of real services (a private Mosquitto, a private PostgreSQL) are in
``test_health_outages.py``; here an adapter of the test's own drives ``context.health`` (the
public API a vendor adapter uses) so readiness can be checked state by state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugin import Adapter, Emitter, Registry, SourceConfig, hookimpl
from floorstream.plugin.adapter import SourceHealth
from floorstream.plugins import build_plugins
from health_http import ISO, get_json
from support import wait_for


class LinkConfig(SourceConfig):
    pass


class Link(Adapter[LinkConfig]):
    """Reports what the test sets in :data:`LINK` (``up`` / ``down: <error>``) through the
    public ``context.health`` calls, as a real adapter reports its connection."""

    name: ClassVar[str] = "test.link"
    reports_connection: ClassVar[bool] = True

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        while not stop.is_set():
            state = LINK.get(self.config.name, "")
            if state == "up":
                self.context.health.connected()
            elif state.startswith("down"):
                self.context.health.disconnected(state.partition(": ")[2] or None)
            stop.wait(0.02)


class SilentConfig(SourceConfig):
    pass


class Silent(Adapter[SilentConfig]):
    """Reports nothing: counts as connected while it runs."""

    name: ClassVar[str] = "test.silent"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        stop.wait()


LINK: dict[str, str] = {}


class Plugin:
    @hookimpl
    def register_adapters(self, registry: Registry[type[Adapter[Any]]]) -> None:
        registry.add(Link)
        registry.add(Silent)


CONFIG = """
store: sqlite:///{db}
health: {{port: 0}}
alerts: {{enabled: false}}
sources:
  - name: plc
    adapter: test.link
  - name: quiet
    adapter: test.silent
  - name: spare
    adapter: test.link
    enabled: false
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    LINK.clear()
    plugins = build_plugins(extra=[Plugin()], load_entry_points=False)
    running = Daemon(parse_config(CONFIG.format(db=tmp_path / "fs.db"), plugins), plugins)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _url(daemon: Daemon, path: str) -> str:
    return f"http://127.0.0.1:{daemon.health_server.port}{path}"


def test_readyz_follows_what_the_adapter_reports(daemon: Daemon) -> None:
    # a reporting adapter counts as disconnected until its first connected()
    status, body = get_json(_url(daemon, "/readyz"))
    assert status == 503 and body["status"] == "not ready"
    assert any(r.startswith("source plc is running, not connected") for r in body["reasons"])
    assert body["sources"]["quiet"]["connected"] is True  # silent adapters: while they run
    assert "spare" not in body["sources"]  # a disabled source is not waited for

    LINK["plc"] = "up"
    status, body = wait_for(lambda: (r := get_json(_url(daemon, "/readyz")))[0] == 200 and r,
                            what="ready")
    assert body["status"] == "ready" and body["reasons"] == []
    plc = body["sources"]["plc"]
    assert plc["connected"] is True and plc["state"] == "running"
    assert ISO.match(plc["connection_since"])

    LINK["plc"] = "down: connection refused by 10.0.0.7:502"
    status, body = wait_for(lambda: (r := get_json(_url(daemon, "/readyz")))[0] == 503 and r,
                            what="not ready")
    plc = body["sources"]["plc"]
    assert plc["connected"] is False
    assert plc["last_error"] == "connection refused by 10.0.0.7:502"
    assert ISO.match(plc["last_error_at"]) and ISO.match(plc["connection_since"])
    assert plc["failed_attempts"] >= 1
    assert body["reasons"] == [
        f"source plc is running, not connected since {plc['connection_since']}: "
        "connection refused by 10.0.0.7:502"]
    # liveness is another question: the process and its pipeline are fine
    status, health = get_json(_url(daemon, "/healthz"))
    assert status == 200 and health["status"] == "ok" and health["ready"] is False

    LINK["plc"] = "up"
    wait_for(lambda: get_json(_url(daemon, "/readyz"))[0] == 200, what="ready again")


def test_healthz_reports_times_in_iso_8601_utc(daemon: Daemon) -> None:
    LINK["plc"] = "up"
    daemon.stream().publish(source="plc", subject="press-1", type="machine.note",
                            summary="press-1: hello")
    status, body = wait_for(
        lambda: (r := get_json(_url(daemon, "/healthz")))[1]["sources"]["plc"]["posts"] and r)
    assert status == 200
    for key in ("time", "started_at"):
        assert ISO.match(body[key]), body[key]
    assert ISO.match(body["committed"]["last_commit"])
    assert ISO.match(body["store"]["checked_at"]) and body["store"]["reachable"] is True
    plc = body["sources"]["plc"]
    for key in ("state_since", "last_received_at", "last_committed_at"):
        assert ISO.match(plc[key]), (key, plc[key])
    assert plc["received"] == 1 and plc["posts"] == 1
    assert isinstance(plc["lag_seconds"], float) and plc["lag_seconds"] >= 0
    assert body["queue"]["capacity"] == 10_000
    assert body["pipeline"] == {"alive": True, "error": None}


def test_readyz_and_healthz_say_503_when_the_pipeline_is_dead(daemon: Daemon) -> None:
    LINK["plc"] = "up"
    wait_for(lambda: get_json(_url(daemon, "/readyz"))[0] == 200, what="ready")
    daemon.pipeline.stop()
    status, body = get_json(_url(daemon, "/healthz"))
    assert status == 503 and body["status"] == "failing"
    status, body = get_json(_url(daemon, "/readyz"))
    assert status == 503 and "the pipeline is not running" in body["reasons"]


def test_source_health_counts_changes_not_calls() -> None:
    health = SourceHealth()
    assert health.is_connected is None and health.since is None
    health.connected()
    first = health.since
    health.connected()  # repeated: nothing moves
    assert health.since == first and health.failures == 0
    health.disconnected(ConnectionRefusedError(111, "Connection refused"))
    down = health.since
    assert health.is_connected is False and down is not None and first is not None
    assert down >= first
    assert health.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    time.sleep(0.002)  # two failures must be told apart by time, not by chance
    health.disconnected("still refused")
    assert health.since == down and health.failures == 2
    assert health.last_error == "still refused"
    health.connected()
    assert health.failures == 0 and health.last_error == "still refused"  # kept for people
