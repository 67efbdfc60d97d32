"""A fleet under test: three ``floorstream run`` processes on one store, their sources, what
feeds them, and a sampler of the lease rows.

:class:`Fleet` runs N daemons of one config (each a :class:`support.DaemonRunner` process with
its own JSON log) and kills and restarts them. :class:`LeaseSampler` reads ``fs_source_leases``
together with the store's own lock table every few tens of milliseconds and records any
moment at which a source had two holders (the row naming one live daemon while another's
session held the lock) and, for each kill, how long until the victim's sources had a new
holder. The feeds write what the sources read: MQTT machines flipping state, ERP work
orders, X12 214 files.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, select, text

from floorstream.fleet.locks import holders
from floorstream.store import schema
from support import DaemonRunner
from support.mqtt import Publisher

__all__ = ["FreezableProxy", "LeaseSampler", "MqttFeed", "Takeover", "config_text"]

T0 = 1_764_057_600_000


def config_text(store: str, broker_port: int, prefix: str, erp_url: str, inbox: Path,
                lines: int, takeover: float = 5.0) -> str:
    """``lines`` MQTT sources (one namespace ``<prefix>/lineK/<machine>/telemetry`` split by
    topic filter), one ERP table, one supply folder."""
    mqtt = "".join(f"""
  - name: line{k}
    adapter: mqtt
    url: mqtt://127.0.0.1:{broker_port}
    qos: 1
    reconnect_min: 0.2
    reconnect_max: 1
    topics: ["{prefix}/line{k}/+/telemetry"]
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
""" for k in range(lines))
    return f"""
store: {store}
flood: null
default_team: everyone
logging: {{level: info}}
pipeline: {{batch_wait_ms: 2}}
retention: {{interval: 1h}}
fleet: {{takeover: {takeover}}}
sources:{mqtt}
  - name: orders
    adapter: erp.table
    url: {erp_url}
    interval: 100ms
    notify: false
    tables:
      - table: production_order
        key: id
        cursor: write_date
        subject: "{{{{ row.name }}}}"
        track: [state]
  - name: carrier
    adapter: supply.folder
    path: {inbox}
    settle: 0.05
    poll: 0.1
"""


@dataclass
class Takeover:
    """A kill of ``victim`` holding ``sources`` at ``at`` (epoch seconds), and when each of
    them had a new holder."""

    victim: str
    at: float
    sources: list[str]
    taken: dict[str, float] = field(default_factory=dict)

    def seconds(self) -> list[float]:
        return [t - self.at for t in self.taken.values()]


class LeaseSampler:
    """Samples lease rows and locks in a thread (see the module's docstring)."""

    def __init__(self, url: str, sources: list[str], interval: float = 0.05) -> None:
        self.engine: Engine = create_engine(url, pool_size=1)
        self.sources = sources
        self.interval = interval
        self.samples = 0
        self.violations: list[str] = []
        self.takeovers: list[Takeover] = []
        self.latest: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()

    def kill_recorded(self, victim: str, at: float) -> Takeover:
        """The kill of daemon ``victim`` at ``at``: its sources are those the rows said."""
        with self._lock:
            held = [s for s, h in self.latest.items() if h == victim]
            takeover = Takeover(victim, at, held)
            self.takeovers.append(takeover)
        return takeover

    def _run(self) -> None:
        leases, daemons = schema.source_leases, schema.daemons
        rows_query = select(leases.c.source, leases.c.holder, leases.c.epoch)
        while not self._stop.wait(self.interval):
            try:
                with self.engine.connect() as conn:
                    before = {s: (h, e) for s, h, e in conn.execute(rows_query)}
                    conn.commit()
                    members = dict(conn.execute(select(daemons.c.id, daemons.c.session)).all())
                    locks = holders(conn, [("source", s) for s in self.sources]
                                    + [("daemon", d) for d in members])
                    conn.commit()
                    after = {s: (h, e) for s, h, e in conn.execute(rows_query)}
            except Exception:  # the store is busy: skip the sample
                continue
            now = time.time()
            by_session = {session: d for d, session in members.items()}
            live = {d for d, session in members.items() if locks.get(("daemon", d)) == session}
            with self._lock:
                self.samples += 1
                self.latest = {s: h for s, (h, _e) in after.items()}
                for source in self.sources:
                    # the row named H before and after the lock was read, H was live then,
                    # and another daemon's session held the lock: two holders at once
                    holder = after.get(source, (None, 0))[0]
                    session = locks.get(("source", source))
                    by_lock = by_session.get(session) if session is not None else None
                    if (before.get(source) == after.get(source) and holder in live
                            and by_lock is not None and by_lock != holder):
                        self.violations.append(
                            f"{source}: row says {holder}, lock held by {by_lock}")
                for takeover in self.takeovers:
                    for source in takeover.sources:
                        if source not in takeover.taken and self.latest.get(source) not in (
                                None, takeover.victim):
                            takeover.taken[source] = now


class MqttFeed:
    """Machines on ``lines`` lines, a reading a step each, state flipping every ``flip``
    readings; :meth:`expected` is the (subject, ts) of every flip."""

    def __init__(self, port: int, prefix: str, lines: int, machines: int = 3,
                 flip: int = 5) -> None:
        self.publisher = Publisher("127.0.0.1", port)
        self.prefix, self.lines, self.machines, self.flip = prefix, lines, machines, flip
        self.steps = 0

    def machine(self, line: int, m: int) -> str:
        return f"l{line}m{m}"

    def step(self) -> None:
        i = self.steps
        self.steps += 1
        state = "STOPPED" if (i // self.flip) % 2 else "RUNNING"
        for line in range(self.lines):
            for m in range(self.machines):
                payload = {"ts": T0 + i * 1000 + m, "state": state}
                self.publisher.publish(
                    f"{self.prefix}/line{line}/{self.machine(line, m)}/telemetry",
                    json.dumps(payload).encode(), qos=1)

    def expected(self) -> set[tuple[str, int]]:
        flips = range(self.flip, self.steps, self.flip)
        return {(self.machine(line, m), T0 + i * 1000 + m) for line in range(self.lines)
                for m in range(self.machines) for i in flips}


def run_for(seconds: float, action: Callable[[], object], every: float,
            stop: threading.Event) -> threading.Thread:
    """Call ``action`` every ``every`` seconds in a thread until ``stop`` (or ``seconds``)."""
    def loop() -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            action()
            stop.wait(every)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def daemon_ids(runner: DaemonRunner) -> list[str]:
    """The fleet ids a daemon process logged (one per start), oldest first."""
    ids = []
    for line in runner.log().splitlines():
        if '"fleet_joined"' in line:
            found = json.loads(line).get("daemon")
            if found and found not in ids:
                ids.append(found)
    return ids


def erp_insert(engine: Engine, row_id: int) -> None:
    with engine.begin() as conn:
        now = {"postgresql": "LOCALTIMESTAMP"}.get(engine.dialect.name, "NOW(6)")
        conn.execute(text(
            "INSERT INTO production_order (id, name, product_id, product_qty, state, "
            f"create_date, write_date) VALUES (:id, :name, 1, 1, 'confirmed', {now}, {now})"),
            {"id": row_id, "name": f"WH/MO/{row_id:05d}"})


class FreezableProxy:
    """A TCP proxy in front of the store that can be frozen: while frozen no byte moves in
    either direction and every socket stays open, which is a network partition as both ends
    see it (no reset, no error: calls just hang). New connections are accepted and hang too.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port: int = self.server.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self._closed.set()
        self.flowing.set()
        for sock in [self.server, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.flowing.wait()
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                self.flowing.wait()
                data = source.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
