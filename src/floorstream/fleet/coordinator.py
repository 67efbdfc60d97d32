"""The fleet thread of one daemon: join, take a fair share of the sources, give back what is
more than that, and stop everything the moment the store session is in doubt.

Every ``interval`` (``fleet.takeover`` / 10, at most 1 s) it makes a round trip on its lock
session, reads who is live (:mod:`~floorstream.fleet.membership`), computes its share
(:mod:`~floorstream.fleet.balance`) and then either gives back its newest sources (more than
its share: a daemon joined) or tries the locks of sources nobody holds (fewer: a daemon left
or died). Taking a source is: the lock, then the lease row's epoch bump
(:func:`~floorstream.fleet.leases.take`), then ``start(source, epoch)`` which reads the
committed checkpoint; giving one back is the reverse order.

Losing the session is detected two ways. A statement on it fails: every source is stopped
and the session opened again. Or nothing comes back at all (the network to the store is
gone, the call hangs): a watchdog thread halts every source once no round trip succeeded for
``stop_after`` (0.3 × takeover), while the server ends the silent session only after
``server_idle`` (0.6 × takeover) and only then frees its locks. So a cut-off daemon has
stopped its sources before any other daemon can take them, and a survivor takes them within
about ``takeover``. A daemon killed outright frees its locks at once: its sources move
within about one ``interval`` plus their start.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine

from floorstream.fleet import balance, leases, membership
from floorstream.fleet.fence import Fence
from floorstream.fleet.locks import LockSession
from floorstream.logs import get_logger
from floorstream.model import utcnow
from floorstream.store import schema

__all__ = ["Fleet", "FleetTimings"]

log = get_logger("floorstream.fleet")

_T = TypeVar("_T")


class FleetTimings:
    """The fleet's clocks, all derived from ``takeover`` (see the module's docstring)."""

    def __init__(self, takeover: float) -> None:
        self.takeover = takeover
        self.interval = min(1.0, takeover / 10)
        self.client_timeout = takeover * 0.2
        self.stop_after = takeover * 0.3
        self.server_idle = takeover * 0.6
        self.heartbeat = max(2.0, self.interval * 2)
        #: rows of daemons not live are deleted after this (``floorstream fleet`` shows them
        #: as gone until then)
        self.forget = max(600.0, takeover * 10)


class Fleet:
    """Runs the fleet protocol for one daemon (see the module's docstring).

    ``start(source, epoch)``: begin running the source (this daemon holds it now).
    ``halt(source)``: stop it now, without blocking (close its gate, tell its thread to stop);
    called from any thread. ``stop(source)``: halt it and wait until it has stopped and its
    queued input is drained; called from the fleet thread before the lease is given back.
    ``stats()``: per held source, (lag seconds, last commit) for the lease rows.
    """

    def __init__(self, engine: Engine, url: str, sources: Sequence[tuple[str, str]], *,
                 takeover: float, weight: int = 1, max_sources: int | None = None,
                 version: str = "", start: Callable[[str, int], None],
                 halt: Callable[[str], None], stop: Callable[[str], None],
                 stats: Callable[[], Mapping[str, tuple[float, datetime | None]]]
                 = lambda: {}) -> None:
        self.engine = engine
        self.sources = [name for name, _ in sources]
        self.timings = FleetTimings(takeover)
        self.session = LockSession(url, client_timeout=self.timings.client_timeout,
                                   server_idle=self.timings.server_idle)
        self.id = membership.new_id()
        self.fleet = membership.fingerprint(sources)
        self.weight = weight
        self.max_sources = max_sources
        self.version = version
        self._start, self._halt, self._stop, self._stats = start, halt, stop, stats
        self._lock = threading.Lock()  # guards held, fenced
        self.held: dict[str, int] = {}  # source → epoch, while this daemon holds it
        self._acquired: dict[str, float] = {}  # source → monotonic time taken (newest go first)
        self._fenced: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self.last_ok = 0.0  # monotonic time of the last successful round trip
        #: one call on the lock session at a time: the fleet thread's, or the keepalive's
        self._session_lock = threading.Lock()
        self._keepalive: threading.Thread | None = None
        self._next_heartbeat = 0.0
        self._cut = False  # the watchdog halted everything; the loop finishes the job
        self.fence = Fence(self.id, self.sources, self.held_now, self._on_fenced)
        #: what the last step saw (health, metrics): live members, leases, my share
        self.members: list[membership.Member] = []
        self.leases: list[leases.Lease] = []
        self.share = 0
        self.connected = False
        self.error: str | None = None
        self.acquisitions = 0
        self.releases = 0
        self.losses = 0  # times the session was lost with sources held
        #: when (epoch seconds) this daemon last stopped its sources for a lost session
        self.last_loss_at: float | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="floorstream-fleet",
                                        daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="floorstream-fleet-watchdog",
                                          daemon=True)
        self._keepalive = threading.Thread(target=self._keep_alive,
                                           name="floorstream-fleet-keepalive", daemon=True)
        self._thread.start()
        self._watchdog.start()
        self._keepalive.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Give every source back (stopped first), leave the fleet, close the session."""
        self._stopping.set()
        for thread in (self._thread, self._watchdog, self._keepalive):
            if thread is not None:
                thread.join(timeout)
        for source in list(self.held):  # all told at once: they stop side by side
            self._halt(source)
        for source in list(self.held):
            try:
                self._release(source)
            except Exception as exc:  # the session is gone: the locks went with it
                log.warning("fleet_release_failed", source=source, error=repr(exc))
                self._drop(source)
        try:
            with self.engine.begin() as conn:
                membership.deregister(conn, self.id)
        except Exception as exc:
            log.warning("fleet_leave_failed", daemon=self.id, error=repr(exc))
        self.session.dispose()
        log.info("fleet_left", daemon=self.id)

    def held_now(self) -> dict[str, int]:
        with self._lock:
            return dict(self.held)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self.session.open:
                    self._join()
                self._step()
                self.connected, self.error = True, None
            except Exception as exc:
                self.connected, self.error = False, str(exc).strip().splitlines()[0][:300]
                self._lose_all(f"the store session failed: {self.error}")
                with self._session_lock:
                    self.session.close()
            self._stopping.wait(self.timings.interval)

    def _watch(self) -> None:
        """Halt every source once no round trip on the session succeeded for stop_after."""
        while not self._stopping.wait(min(0.2, self.timings.interval)):
            if self.session.open and not self._cut and self.last_ok and (
                    time.monotonic() - self.last_ok > self.timings.stop_after):
                self._cut = True
                with self._lock:
                    halted = list(self.held)
                if halted:
                    self.last_loss_at = time.time()
                log.error("fleet_session_silent", daemon=self.id, sources=halted,
                          seconds=round(time.monotonic() - self.last_ok, 1),
                          action="sources halted before the store frees their leases")
                for source in halted:
                    self._halt(source)
                self.session.abort()  # the hanging call errs; the loop reconnects

    def _keep_alive(self) -> None:
        """A round trip every interval whenever the fleet thread is not using the session
        (it may be busy stopping a slow source): the server must never see the session idle
        for ``server_idle`` while this daemon runs sources."""
        while not self._stopping.wait(self.timings.interval):
            if self._cut or not self.session.open:
                continue  # the fleet thread is dealing with it (and connects again)
            if not self._session_lock.acquire(blocking=False):
                continue
            try:
                if self.session.open and not self._cut:
                    self.session.ping()
                    self.last_ok = time.monotonic()
            except Exception as exc:
                # a failed statement: the locks may be gone already, so the sources stop
                # now; the fleet thread finds the error on its next call and reconnects
                self._cut = True
                with self._lock:
                    halted = list(self.held)
                if halted:
                    self.last_loss_at = time.time()
                log.error("fleet_session_failed", daemon=self.id, sources=halted,
                          error=str(exc).strip().splitlines()[0][:300])
                for source in halted:
                    self._halt(source)
            finally:
                self._session_lock.release()

    def _call(self, method: Callable[..., _T], *args: Any) -> _T:
        """A call on the lock session (under its lock); a success counts as a round trip."""
        with self._session_lock:
            result = method(*args)
            self.last_ok = time.monotonic()
            return result

    def _round_trip(self) -> None:
        self._call(self.session.ping)

    def _join(self) -> None:
        session = self._call(self.session.connect)
        self._cut = False
        if not self._call(self.session.try_lock, "daemon", self.id):
            raise RuntimeError(f"the member lock of {self.id} is taken")
        now = utcnow()
        member = membership.Member(self.id, socket.gethostname(), os.getpid(), self.version,
                                   self.fleet, self.weight, self.max_sources, session, now, now)
        with self.engine.begin() as conn:
            for table in (schema.daemons, schema.source_leases):  # a store made mid-upgrade
                table.create(conn, checkfirst=True)
            membership.register(conn, member)
            leases.ensure(conn, self.sources)
        log.info("fleet_joined", daemon=self.id, session=session, fleet=self.fleet,
                 sources=len(self.sources))

    def _step(self) -> None:
        self._round_trip()
        if self._cut:
            raise RuntimeError("no round trip on the store session for "
                               f"{self.timings.stop_after:g}s")
        with self._lock:
            fenced, self._fenced = self._fenced, set()
        for source in fenced:
            if source in self.held:
                log.warning("lease_fenced", source=source, daemon=self.id)
                self._stop(source)
                self._drop(source)
                self._call(self.session.unlock, "source", source)
        now = time.monotonic()
        with self.engine.begin() as conn:
            found = membership.members(conn)
            if now >= self._next_heartbeat:
                self._next_heartbeat = now + self.timings.heartbeat
                membership.heartbeat(conn, self.id)
                leases.report(conn, self.id, self.held_now(), self._stats())
                membership.prune(conn, found, timedelta(seconds=self.timings.forget))
            self.leases = leases.leases(conn)
        self.members = found
        live = [m for m in found if m.live and m.fleet == self.fleet]
        if not any(m.id == self.id for m in live):
            raise RuntimeError("this daemon's member lock is not held by its session")
        share = balance.shares([balance.Candidate(m.id, m.weight, m.max_sources)
                                for m in live], len(self.sources))[self.id]
        self.share = share
        held = len(self.held)
        if held > share:
            newest = sorted(self.held, key=lambda s: self._acquired.get(s, 0.0), reverse=True)
            for source in newest[:held - share]:
                self._release(source)
        elif held < share:
            wanted = [s for s in self.sources if s not in self.held]
            holders = self._call(self.session.held, [("source", s) for s in wanted])
            free = [s for s in balance.order(self.id, wanted) if holders[("source", s)] is None]
            for source in free[:share - held]:
                if self._stopping.is_set():
                    break
                if self._call(self.session.try_lock, "source", source):
                    self._gain(source)

    # -- transitions ----------------------------------------------------------------------

    def _gain(self, source: str) -> None:
        try:
            # a commit of the previous holder still running is waited for a little; one
            # older than stop_after belongs to a holder cut off mid-statement and is ended
            epoch = leases.take_waiting(self.engine, source, self.id,
                                        self.timings.client_timeout, self.timings.stop_after)
            with self._lock:
                self.held[source] = epoch
                self._acquired[source] = time.monotonic()
            self.acquisitions += 1
            log.info("lease_acquired", source=source, daemon=self.id, epoch=epoch)
            self._start(source, epoch)
        except Exception as exc:
            # this one source could not be taken (its row stayed locked, its adapter would
            # not start): it is halted and its lock freed, the others keep running, and it
            # is tried again next round; a failing unlock means the session is gone, which
            # the loop handles for every source
            log.error("lease_take_failed", source=source, daemon=self.id, error=repr(exc))
            self._halt(source)
            self._drop(source)
            self._call(self.session.unlock, "source", source)

    def _release(self, source: str) -> None:
        """Give a source back: stop it, record it free, then free the lock."""
        epoch = self.held.get(source)
        self._stop(source)
        self._drop(source)
        if epoch is not None:
            with self.engine.begin() as conn:
                leases.give_up(conn, source, self.id, epoch)
        self._call(self.session.unlock, "source", source)
        self.releases += 1
        log.info("lease_released", source=source, daemon=self.id, epoch=epoch)

    def _drop(self, source: str) -> None:
        with self._lock:
            self.held.pop(source, None)
            self._acquired.pop(source, None)

    def _lose_all(self, reason: str) -> None:
        with self._lock:
            lost = list(self.held)
        if not lost:
            return
        self.losses += 1
        if not self._cut:  # (else the watchdog halted them already, and said when)
            self.last_loss_at = time.time()
        log.error("leases_lost", daemon=self.id, sources=lost, reason=reason)
        for source in lost:
            self._halt(source)
            self._drop(source)
        for source in lost:
            self._stop(source)

    def _on_fenced(self, sources: set[str]) -> None:
        """From the commit fence (pipeline thread, inside a transaction): halt now, finish
        in the fleet thread."""
        for source in sources:
            self._halt(source)
        with self._lock:
            self._fenced |= sources

    # -- what it knows --------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """For ``/readyz`` and ``/healthz``: this daemon, the live members, every lease."""
        live = {m.id: m for m in self.members if m.live}
        unheld = [lease.source for lease in self.leases
                  if lease.holder is None or lease.holder not in live]
        return {
            "daemon": self.id,
            "connected": self.connected,
            "error": self.error,
            "share": self.share,
            "held": {s: {"epoch": e} for s, e in sorted(self.held_now().items())},
            "live_daemons": len(live),
            "unheld": sorted(unheld),
            "acquisitions": self.acquisitions,
            "releases": self.releases,
            "losses": self.losses,
            "fenced_batches": self.fence.fenced,
        }
