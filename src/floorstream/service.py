"""``floorstream run`` as a service: systemd's notify protocol, the watchdog, and SIGHUP.

- **Readiness** (``Type=notify``): once the daemon has started (store open, pipeline, sources
  and services running) it sends ``READY=1`` to ``$NOTIFY_SOCKET``, a unix datagram socket
  (``@name`` is Linux's abstract namespace). Before stopping it sends ``STOPPING=1``; around a
  reload ``RELOADING=1`` (with ``MONOTONIC_USEC``, as ``Type=notify-reload`` wants) and
  ``READY=1`` again. Plain :mod:`socket`, no dependency; without ``$NOTIFY_SOCKET`` nothing is
  sent.
- **Watchdog**: with ``$WATCHDOG_USEC`` set (``WatchdogSec=`` in the unit; ``$WATCHDOG_PID``,
  when set, must be this process) ``WATCHDOG=1`` goes out every half of it, but only while the
  pipeline thread lives and has not failed: a wedged or dead pipeline stops the pings and
  systemd restarts the service.
- **SIGHUP** reloads the config file: the daemon keeps running with its state (detector
  state, checkpoints, connections, the outbox; nothing is sent again). What can change under a
  running daemon is applied (see :func:`apply_reload`); keys whose change needs a restart are
  logged (``config_restart_needed`` with their key paths) and keep their running value; a
  config that does not validate is logged (``config_reload_failed``) and changes nothing.
- **SIGTERM / SIGINT** stop it cleanly (``daemon_stopping`` … ``daemon_stopped``, exit 0).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from floorstream.config import Config
from floorstream.errors import ConfigError
from floorstream.logs import configure_logging, get_logger
from floorstream.render import Renderer
from floorstream.route import Router

if TYPE_CHECKING:
    from floorstream.daemon import Daemon

__all__ = ["RELOADABLE", "Notifier", "Service", "apply_reload", "watchdog_interval"]

log = get_logger("floorstream.service")

#: settings applied by a reload (everything else of ``settings`` needs a restart); per team
#: ``sinks`` and ``description``, per source ``summary``
RELOADABLE = ("routes", "default_team", "admin_team", "teams", "alerts", "retention",
              "logging.level")
_TEAM_RELOADABLE = frozenset({"sinks", "description"})
_SOURCE_RELOADABLE = frozenset({"summary"})


class Notifier:
    """``sd_notify`` over ``$NOTIFY_SOCKET``; does nothing when there is none."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        self.failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False when not sent."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            if not self.failed:  # say it once: systemd gone, a wrong path
                self.failed = True
                log.warning("sd_notify_failed", socket=self.address.lstrip("\0"),
                            error=str(exc))
            return False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half of ``$WATCHDOG_USEC``), or None."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (a wrapper's child)
    try:
        seconds = int(usec) / 1_000_000
    except ValueError:
        return None
    return seconds / 2 if seconds > 0 else None


class Service:
    """Runs a :class:`Daemon` in the foreground until SIGTERM/SIGINT (or ``duration``)."""

    def __init__(self, daemon: Daemon, *, loader: Callable[[], Config] | None = None,
                 log_format: str = "auto", notifier: Notifier | None = None) -> None:
        self.daemon = daemon
        self.loader = loader
        self.log_format = log_format
        self.notifier = notifier or Notifier()
        self.watchdog = watchdog_interval()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self.reloads = 0  # reloads applied (tests)

    # -- signals ----------------------------------------------------------------------------

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal_received", signal=signal.Signals(signum).name)
        self.daemon.stop_event.set()
        self._wake.set()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()
        self._wake.set()

    def run(self, duration: float | None = None) -> None:
        handlers: dict[signal.Signals, Any] = {
            signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop,
            signal.SIGHUP: self._on_hup}
        previous = {s: signal.signal(s, h) for s, h in handlers.items()}
        daemon = self.daemon
        try:
            daemon.start_as_process()
            self.notifier.notify("READY=1", f"MAINPID={os.getpid()}",
                                 "STATUS=running: " + _status(daemon))
            self._loop(duration)
        finally:
            self.notifier.notify("STOPPING=1", "STATUS=stopping")
            try:
                daemon.stop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self.notifier.close()

    def _loop(self, duration: float | None) -> None:
        stop = self.daemon.stop_event
        deadline = None if duration is None else time.monotonic() + duration
        next_ping = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if self.watchdog is not None and now >= next_ping:
                if self.healthy():
                    self.notifier.notify("WATCHDOG=1")
                next_ping = now + self.watchdog
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
                continue
            waits = [1.0]
            if self.watchdog is not None:
                waits.append(next_ping - now)
            if deadline is not None:
                waits.append(deadline - now)
            self._wake.wait(max(0.0, min(waits)))
            self._wake.clear()

    def healthy(self) -> bool:
        """What the watchdog vouches for: the pipeline thread lives and has not failed."""
        pipeline = self.daemon.pipeline
        return pipeline.alive and pipeline.error is None

    # -- reload -----------------------------------------------------------------------------

    def reload(self) -> tuple[list[str], list[str]] | None:
        """Read the config file again and apply what can be applied; None if it failed."""
        log.info("config_reloading")
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}",
                             "STATUS=reloading the configuration")
        try:
            if self.loader is None:
                raise ConfigError([])
            new = self.loader()
        except ConfigError as exc:
            log.error("config_reload_failed", problems=[str(p) for p in exc.problems],
                      keeping="the running configuration")
            self.notifier.notify("READY=1", "STATUS=running (reload failed: the config is "
                                            "invalid)")
            return None
        except Exception as exc:  # an unreadable file, a plugin that would not load
            log.error("config_reload_failed", error=repr(exc),
                      keeping="the running configuration")
            self.notifier.notify("READY=1", "STATUS=running (reload failed)")
            return None
        applied, restart = apply_reload(self.daemon, new)
        if "logging.level" in applied:
            configure_logging(new.settings.logging.level, self.log_format,
                              self.daemon.config.secrets | new.secrets)
        self.reloads += 1
        log.info("config_reloaded", applied=applied, unchanged=not applied and not restart)
        if restart:
            log.warning("config_restart_needed", keys=restart,
                        hint="these keep their running values until floorstream restarts")
        self.notifier.notify("READY=1", "STATUS=running: " + _status(self.daemon)
                             + (f"; {len(restart)} changed keys need a restart"
                                if restart else ""))
        return applied, restart


def _status(daemon: Daemon) -> str:
    sources = [s.name for s in daemon.config.sources if s.enabled]
    return f"{len(sources)} sources, {len(daemon.config.sinks)} sinks"


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model


def apply_reload(daemon: Daemon, new: Config) -> tuple[list[str], list[str]]:
    """Apply to a running daemon what changed in ``new`` and can be changed live; returns
    (applied key paths, key paths whose change needs a restart).

    Live: ``routes``, ``default_team``, ``admin_team``, ``teams`` (a team's ``sinks`` and
    ``description``; teams added or removed), ``alerts``, ``retention``, ``logging.level``
    and a source's ``summary``. Everything else (the store, the pipeline, health, plugins,
    flood defaults, logging.format, a source added, removed or otherwise changed, sinks, a
    team's delivery policy) keeps its running value and is reported.
    """
    old = daemon.config
    before, after = old.settings, new.settings
    applied: list[str] = []
    restart: list[str] = []
    update: dict[str, Any] = {}
    skip = {"sources", "sinks", "teams", "logging"}
    for name in type(before).model_fields:
        if name in skip:
            continue
        a, b = getattr(before, name), getattr(after, name)
        if _dump(a) == _dump(b):
            continue
        if name in RELOADABLE:
            update[name] = b
            applied.append(name)
        else:
            restart.append(name)
    # logging: the level lives, the format is the terminal's business
    if before.logging.level.lower() != after.logging.level.lower():
        applied.append("logging.level")
    if before.logging.format != after.logging.format:
        restart.append("logging.format")
    update["logging"] = before.logging.model_copy(update={"level": after.logging.level})
    # teams: routing (which sinks get a post's rows) lives; delivery policies do not
    teams: dict[str, Any] = {}
    for team, wanted in after.teams.items():
        was = before.teams.get(team)
        if was is None:
            teams[team] = wanted
            applied.append(f"teams.{team}")
            default = type(wanted)()
            restart += [f"teams.{team}.{k}" for k in type(wanted).model_fields
                        if k not in _TEAM_RELOADABLE
                        and getattr(wanted, k) != getattr(default, k)]
            continue
        keep = {}
        for key in type(wanted).model_fields:
            if getattr(was, key) == getattr(wanted, key):
                continue
            if key in _TEAM_RELOADABLE:
                keep[key] = getattr(wanted, key)
                applied.append(f"teams.{team}.{key}")
            else:
                restart.append(f"teams.{team}.{key}")
        teams[team] = was.model_copy(update=keep) if keep else was
    for team in before.teams:
        if team not in after.teams:
            applied.append(f"teams.{team}")  # removed: no more outbox rows for it
    update["teams"] = teams
    # sources: a summary template lives; anything else needs the adapter restarted
    sources = []
    renderer_changed = False
    new_sources = {s.name: s for s in new.sources}
    for source in old.sources:
        fresh = new_sources.get(source.name)
        if fresh is None:
            restart.append(f"sources.{source.name}")
            sources.append(source)
            continue
        was, now = _dump(source), _dump(fresh)
        changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        live = [k for k in changed if k in _SOURCE_RELOADABLE]
        restart += [f"sources.{source.name}.{k}" for k in changed if k not in live]
        if live:
            source = source.model_copy(update={k: getattr(fresh, k) for k in live})
            applied += [f"sources.{source.name}.{k}" for k in live]
            renderer_changed = True
        sources.append(source)
    restart += [f"sources.{name}" for name in new_sources if name not in
                {s.name for s in old.sources}]
    old_sinks = {s.name: _dump(s) for s in old.sinks}
    new_sinks = {s.name: _dump(s) for s in new.sinks}
    restart += [f"sinks.{name}" for name in sorted(set(old_sinks) | set(new_sinks))
                if old_sinks.get(name) != new_sinks.get(name)]

    settings = before.model_copy(update=update)
    config = dataclasses.replace(old, settings=settings, sources=sources,
                                 secrets=old.secrets | new.secrets,
                                 warnings=new.warnings)
    processor = daemon.processor
    with daemon.pipeline.lock:  # between two batches
        daemon.config = config
        processor.config = config
        processor.router = Router(settings.routes, settings.default_team)
        processor.teams = settings.teams
        if renderer_changed:
            processor.renderer = Renderer(
                {s.name: s.summary for s in sources},
                {entry.name: entry.item for entry in daemon.plugins.phrases},
                settings.display.zone)
        daemon.monitor.settings = settings.alerts
    return applied, sorted(dict.fromkeys(restart))
