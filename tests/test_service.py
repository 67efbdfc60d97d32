"""``floorstream run`` as a systemd service, against a unix datagram socket the test listens
on as systemd would: READY=1 once started, WATCHDOG=1 every half of WATCHDOG_USEC while the
pipeline lives, SIGHUP reloads (RELOADING=1 … READY=1; a route change takes effect, nothing
is sent again, keys needing a restart are named, an invalid file changes nothing), SIGTERM
stops cleanly after STOPPING=1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.service import Notifier, Service, apply_reload, watchdog_interval
from support.daemon import FLOORSTREAM
from support.erp import create_erp, insert_order
from support.waiting import wait_for


class Systemd:
    """The notify socket's other end: every datagram received, in order."""

    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()
                                      if "=" in line))

    def count(self, key: str, value: str = "1") -> int:
        self.receive()
        return sum(1 for m in self.messages if m.get(key) == value)

    def wait(self, key: str, value: str = "1", times: int = 1, timeout: float = 30.0) -> None:
        wait_for(lambda: self.count(key, value) >= times, timeout, f"{key}={value} x{times}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[Systemd]:
    listener = Systemd(tmp_path / "notify.sock")
    try:
        yield listener
    finally:
        listener.close()


def _config(tmp_path: Path, erp_url: str, *, team: str, batch_max: int = 1000) -> str:
    return textwrap.dedent(f"""\
        store: sqlite:///{tmp_path}/fs.db
        default_team: planning
        pipeline: {{batch_max: {batch_max}}}
        teams:
          day: {{sinks: [archive]}}
          night: {{sinks: [archive]}}
        sinks:
          - {{name: archive, type: file, path: "{tmp_path}/posts.jsonl"}}
        routes:
          - match: {{source: orders}}
            teams: [{team}]
        sources:
          - name: orders
            adapter: erp.table
            url: {erp_url}
            interval: 100ms
            table: production_order
            mode: cursor
            cursor: write_date
            subject: "{{{{ row.name }}}}"
            track: [state]
        """)


def _log(path: Path) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _events(path: Path, name: str) -> list[dict[str, Any]]:
    return [r for r in _log(path) if r.get("event") == name]


def _archived(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "posts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_notify_watchdog_reload_and_stop(tmp_path: Path, systemd: Systemd,
                                         sqlite_url: str) -> None:
    erp = create_erp(sqlite_url, orders=1)
    config = tmp_path / "fs.yaml"
    config.write_text(_config(tmp_path, sqlite_url, team="day"))
    log = tmp_path / "run.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "400000", "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        process = subprocess.Popen([FLOORSTREAM, "run", "-c", str(config), "--log-format",
                                    "json"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        systemd.wait("READY")
        ready = next(m for m in systemd.messages if m.get("READY") == "1")
        assert ready["MAINPID"] == str(process.pid)
        assert ready["STATUS"].startswith("running")
        assert _events(log, "daemon_started"), "READY=1 before the daemon had started"
        systemd.wait("WATCHDOG", times=3, timeout=10)  # every 0.2 s
        # the first start's baseline is taken: rows from now on are news
        wait_for(lambda: [r for r in _events(log, "erp_baseline_progress")
                          if r.get("finished")], 30, "the baseline")

        # a post before the reload: team day
        insert_order(erp, 2)
        wait_for(lambda: len(_archived(tmp_path)) >= 1, 30, "the first post delivered")
        assert _archived(tmp_path)[0]["floorstream:team"] == "day"

        # reload: the route moves to team night (live), batch_max changes (needs a restart)
        config.write_text(_config(tmp_path, sqlite_url, team="night", batch_max=500))
        readies = systemd.count("READY")
        process.send_signal(signal.SIGHUP)
        systemd.wait("RELOADING")
        systemd.wait("READY", times=readies + 1)
        reloading = next(m for m in systemd.messages if m.get("RELOADING") == "1")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        reloaded = wait_for(lambda: _events(log, "config_reloaded"), 10, "config_reloaded")
        assert reloaded[-1]["applied"] == ["routes"]
        restart = _events(log, "config_restart_needed")
        assert restart and restart[-1]["keys"] == ["pipeline"]
        assert process.poll() is None

        insert_order(erp, 3)
        wait_for(lambda: len(_archived(tmp_path)) >= 2, 30, "the second post delivered")
        archived = _archived(tmp_path)
        assert [a["floorstream:team"] for a in archived] == ["day", "night"]
        assert len({a["id"] for a in archived}) == 2  # nothing sent again

        # a broken file: logged, nothing changes, still running and ready
        config.write_text("store: [oops\n")
        readies = systemd.count("READY")
        process.send_signal(signal.SIGHUP)
        systemd.wait("READY", times=readies + 1)
        failed = wait_for(lambda: _events(log, "config_reload_failed"), 10, "reload failed")
        assert failed[-1]["keeping"] == "the running configuration"
        insert_order(erp, 4)
        wait_for(lambda: len(_archived(tmp_path)) >= 3, 30, "a post after the failed reload")
        assert _archived(tmp_path)[2]["floorstream:team"] == "night"
        pings = systemd.count("WATCHDOG")
        systemd.wait("WATCHDOG", times=pings + 2, timeout=10)  # still pinging

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]
        systemd.wait("STOPPING")
        stopping = [i for i, m in enumerate(systemd.messages) if m.get("STOPPING") == "1"]
        assert stopping[0] > max(i for i, m in enumerate(systemd.messages)
                                 if m.get("READY") == "1")
        assert _events(log, "daemon_stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        erp.dispose()


def test_sighup_without_systemd_does_not_kill(tmp_path: Path, sqlite_url: str) -> None:
    """The bug this replaces: SIGHUP ended the daemon with exit 129 and no stop lines."""
    erp = create_erp(sqlite_url, orders=1)
    config = tmp_path / "fs.yaml"
    config.write_text(_config(tmp_path, sqlite_url, team="day"))
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with log.open("ab") as out:
        process = subprocess.Popen([FLOORSTREAM, "run", "-c", str(config), "--log-format",
                                    "json"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: _events(log, "daemon_started"), 30, "daemon_started")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: _events(log, "config_reloaded"), 10, "config_reloaded")
        assert _events(log, "config_reloaded")[-1]["unchanged"] is True
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert _events(log, "daemon_stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        erp.dispose()


def test_watchdog_pings_only_while_the_pipeline_lives(tmp_path: Path,
                                                      systemd: Systemd) -> None:
    plugins = build_plugins()
    config = parse_config(f"store: sqlite:///{tmp_path}/fs.db\n", plugins)
    daemon = Daemon(config, plugins, delivery=False)
    service = Service(daemon, notifier=Notifier(str(tmp_path / "notify.sock")))
    service.watchdog = 0.05
    daemon.start()
    try:
        service._loop(duration=0.5)
        alive = systemd.count("WATCHDOG")
        assert alive >= 5
        daemon.pipeline.stop()  # the pipeline thread is gone: no more pings
        assert not service.healthy()
        service._loop(duration=0.5)
        assert systemd.count("WATCHDOG") == alive
    finally:
        daemon.stop()


def test_notifier_and_watchdog_settings(tmp_path: Path) -> None:
    name = f"fs-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = Systemd("\0" + name)  # the abstract namespace, as "@name" in NOTIFY_SOCKET
    try:
        assert Notifier("@" + name).notify("READY=1", "STATUS=hello")
        listener.receive()
        assert listener.messages == [{"READY": "1", "STATUS": "hello"}]
    finally:
        listener.close()
    assert not Notifier("").enabled and not Notifier("").notify("READY=1")
    gone = Notifier(str(tmp_path / "nobody.sock"))
    assert gone.notify("READY=1") is False and gone.failed  # logged once, no exception
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "20000000",
                              "WATCHDOG_PID": str(os.getpid())}) == 10.0
    assert watchdog_interval({}) is None


def test_what_a_reload_applies(tmp_path: Path, sqlite_url: str) -> None:
    plugins = build_plugins()
    base = _config(tmp_path, sqlite_url, team="day")
    daemon = Daemon(parse_config(base, plugins), plugins, delivery=False)
    try:
        changed = (base.replace("teams: [day]", "teams: [night]")
                   .replace("night: {sinks: [archive]}",
                            "night: {sinks: [], digest: 1h}\n  evening: {sinks: [archive]}")
                   .replace("interval: 100ms", "interval: 1s")
                   + "alerts: {source_down: 1m}\nretention: {posts: 10d}\n"
                   + "logging: {level: debug}\n")
        applied, restart = apply_reload(daemon, parse_config(changed, plugins))
        assert sorted(applied) == ["alerts", "logging.level", "retention", "routes",
                                   "teams.evening", "teams.night.sinks"]
        # (the shorthand table: puts interval: into tables[0])
        assert restart == ["sources.orders.tables", "teams.night.digest"]
        assert daemon.config.settings.retention.posts == 10 * 86400
        assert daemon.processor.router.rules[0].teams == ["night"]
        assert daemon.processor.teams["night"].sinks == []
        assert daemon.processor.teams["night"].digest is None  # a restart's business
        assert daemon.monitor.settings.source_down == 60
        assert daemon.config.sources[0].tables[0].interval == 0.1  # type: ignore[attr-defined]
    finally:
        daemon.store.close()


def test_a_detector_option_changed_is_named_for_a_restart(tmp_path: Path,
                                                           sqlite_url: str) -> None:
    """A threshold moved in ``detect:`` is not applied live; the reload must say so, not log
    ``unchanged`` (the options were once dumped as ``{}`` and compared equal)."""
    plugins = build_plugins()
    base = _config(tmp_path, sqlite_url, team="day") + \
        "    detect: [{field_change: {fields: [state], severity: info}}]\n"
    daemon = Daemon(parse_config(base, plugins), plugins, delivery=False)
    try:
        same = apply_reload(daemon, parse_config(base, plugins))
        assert same == ([], [])
        changed = base.replace("severity: info}", "severity: warning}")
        applied, restart = apply_reload(daemon, parse_config(changed, plugins))
        assert applied == []
        assert restart == ["sources.orders.detect"]
    finally:
        daemon.store.close()


ROOT = Path(__file__).resolve().parent.parent


def test_the_example_unit_and_container() -> None:
    """The unit asks for what the daemon does (notify, watchdog, HUP reload, journal), and
    systemd-analyze, where there is one, finds nothing wrong with it."""
    unit = (ROOT / "examples/systemd/floorstream.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] == "30s"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["ExecStart"].endswith("floorstream run --log-format json")
    assert settings["StandardOutput"] == "journal"
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        here = FLOORSTREAM  # this environment's command, where the unit has /opt/…
        copy = Path(tempfile.mkdtemp()) / "floorstream.service"
        copy.write_text(unit.replace("/opt/floorstream/bin/floorstream", str(here)))
        done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    docker = (ROOT / "examples/Dockerfile").read_text()
    assert 'CMD ["run", "--log-format", "json"]' in docker
    assert "STOPSIGNAL SIGTERM" in docker and "USER floorstream" in docker
    assert "/healthz" in docker
