"""The daemon: adapters in threads feeding one pipeline, stopped cleanly on SIGTERM/SIGINT.

An adapter whose ``run`` raises is logged with its plugin's name and restarted with backoff; it
never takes the daemon down and never spins in a tight crash loop. On stop, adapters are asked
to stop first, then the pipeline drains and commits what was queued, then connections close.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog

from floorstream.api import Stream
from floorstream.config import Config
from floorstream.delivery.service import DeliveryService
from floorstream.health import HealthServer
from floorstream.pipeline import Pipeline
from floorstream.plugin.adapter import Adapter, AdapterContext, SourceConfig
from floorstream.plugins import Plugins
from floorstream.processing import Processor
from floorstream.store.store import Store

__all__ = ["Daemon", "SourceStatus"]

log = structlog.get_logger("floorstream.daemon")


@dataclass
class SourceStatus:
    """What the health check reports per source."""

    name: str
    adapter: str
    state: str = "starting"  # starting | running | restarting | stopped | failed
    restarts: int = 0
    last_error: str | None = None
    since: float = field(default_factory=time.time)


class Daemon:
    def __init__(self, config: Config, plugins: Plugins, store: Store | None = None, *,
                 delivery: bool = True) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store or Store.open(config.settings.store)
        self.processor = Processor(config, plugins, states=self.store)
        self.pipeline = Pipeline(self.processor, self.store, config.settings.pipeline, plugins)
        self.stop_event = threading.Event()
        self.status: dict[str, SourceStatus] = {}
        self._threads: list[threading.Thread] = []
        self._adapters: dict[str, Adapter[Any]] = {}
        self.extra_services: list[Any] = []  # delivery workers, health server: start()/stop()
        if config.sinks and delivery:  # else `floorstream deliver` runs it in its own process
            self.extra_services.append(DeliveryService(config, plugins, self.store))
        health = config.settings.health
        if health.port is not None:
            self.health_server = HealthServer(health.host, health.port, self.health)
            self.extra_services.append(self.health_server)

    def stream(self) -> Stream:
        """A library handle publishing through this daemon's own pipeline (same detector
        state, same commits, same ``post_committed`` hooks)."""
        return Stream(self.config, self.plugins, pipeline=self.pipeline)

    def start(self) -> None:
        self.pipeline.start()
        checkpoints = self.store.checkpoints()
        for source in self.config.sources:
            if not source.enabled:
                continue
            entry = next(e for e in self.plugins.adapters if e.name == source.adapter)
            status = self.status[source.name] = SourceStatus(source.name, source.adapter)
            thread = threading.Thread(
                target=self._run_source, args=(source, entry.item, entry.plugin,
                                               checkpoints.get(source.name), status),
                name=f"source-{source.name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for service in self.extra_services:
            service.start()
        log.info("daemon_started", sources=[s.name for s in self.config.sources if s.enabled],
                 store=self.store.engine.url.render_as_string(hide_password=True))

    def _run_source(self, source: SourceConfig, adapter_cls: type[Adapter[Any]], plugin: str,
                    checkpoint: str | None, status: SourceStatus) -> None:
        delay = 1.0
        bound = log.bind(source=source.name, adapter=source.adapter, plugin=plugin)
        while not self.stop_event.is_set():
            adapter: Adapter[Any] | None = None
            started = time.monotonic()
            try:
                context = AdapterContext(source.name, checkpoint, self.plugins.decoders, bound,
                                         lambda: self.store.checkpoints().get(source.name))
                adapter = adapter_cls(source, context)
                self._adapters[source.name] = adapter
                status.state, status.since = "running", time.time()
                adapter.run(self.pipeline.emitter(source.name), self.stop_event)
                if not self.stop_event.is_set():
                    bound.info("source_finished")  # a finite source (a replay) ran out
                    status.state = "finished"
                    return
                break
            except Exception as exc:
                status.last_error = repr(exc)
                bound.exception("adapter_failed", error=repr(exc))
            finally:
                if adapter is not None:
                    try:
                        adapter.close()
                    except Exception as exc:
                        bound.warning("adapter_close_failed", error=repr(exc))
            if self.stop_event.is_set():
                break
            if time.monotonic() - started > 60:
                delay = 1.0
            status.state, status.restarts = "restarting", status.restarts + 1
            self.stop_event.wait(delay)
            delay = min(delay * 2, 60.0)
            # resume from what is committed now, not from what was committed at start
            checkpoint = self.store.checkpoints().get(source.name, checkpoint)
        status.state = "stopped"

    def stop(self, timeout: float = 30.0) -> None:
        log.info("daemon_stopping")
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        # drain and commit what the adapters queued first, so the outbox already holds the
        # last posts when delivery stops (what it cannot send now it sends on the next start)
        self.pipeline.stop(max(1.0, deadline - time.monotonic()))
        for service in reversed(self.extra_services):
            service.stop()
        self.store.close()
        log.info("daemon_stopped", posts=self.pipeline.committed_posts)

    def run_forever(self, duration: float | None = None) -> None:
        """Start, wait for SIGTERM/SIGINT (or ``duration`` seconds), stop."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            self.stop_event.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self.stop_event.wait(duration)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def health(self) -> dict[str, Any]:
        pipeline = self.pipeline
        ok = pipeline.alive and pipeline.error is None
        return {
            "status": "ok" if ok else "failing",
            "queue": {"depth": pipeline.queue.qsize(), "capacity": pipeline.queue.maxsize},
            "committed": {"batches": pipeline.committed_batches,
                          "posts": pipeline.committed_posts,
                          "last_commit": pipeline.last_commit},
            "sources": {name: vars(s) for name, s in self.status.items()},
        }
