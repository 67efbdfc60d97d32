"""The delivery service the daemon runs next to its pipeline: workers per sink, woken by commits.

It has the ``start()``/``stop()`` shape of ``Daemon.extra_services``. Workers poll the outbox,
and the service also registers a ``post_committed`` hook so a fresh post is picked up at once
instead of at the next poll: latency from commit to delivery stays in milliseconds while an
idle daemon polls only every ``poll`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from floorstream.config import Config
from floorstream.delivery.outbox import LEASE, Outbox
from floorstream.delivery.policy import TeamPolicy
from floorstream.delivery.worker import SinkWorker, wake_workers
from floorstream.logs import get_logger
from floorstream.model import Post
from floorstream.plugin.markers import hookimpl
from floorstream.plugin.sink import Sink
from floorstream.plugins import Plugins
from floorstream.store.store import Store

__all__ = ["DeliveryService", "team_policies"]

log = get_logger("floorstream.delivery")


def team_policies(config: Config) -> dict[str, TeamPolicy]:
    """Each configured team's policy (validated already when the config was loaded)."""
    return {name: TeamPolicy.parse(team.immediate, team.digest, team.quiet_hours,
                                   team.timezone)
            for name, team in config.settings.teams.items()}


class _WakeOnCommit:
    """A hook object: wakes the workers when the pipeline commits new posts."""

    def __init__(self, service: DeliveryService) -> None:
        self.service = service

    @hookimpl
    def post_committed(self, posts: Sequence[Post]) -> None:
        self.service.wake(posts)


class DeliveryService:
    def __init__(self, config: Config, plugins: Plugins, store: Store, *, poll: float = 0.5,
                 lease: float = LEASE, batch: int = 100) -> None:
        self.config = config
        self.plugins = plugins
        self.outbox = Outbox(store.engine, lease=lease)  # renewed while held: see outbox.py
        self.policies = team_policies(config)
        self.poll = poll
        self.batch = batch
        self.stop_event = threading.Event()
        self.workers: list[SinkWorker] = []
        self.groups: list[list[SinkWorker]] = []  # the workers of each sink
        self._hook: Any = None

    def start(self) -> None:
        self.stop_event.clear()
        self.workers = []  # stopped workers stay readable (their counters) until a restart
        self.groups = []
        for sink_config in self.config.sinks:
            sink_cls: type[Sink[Any]] = self.plugins.sinks.get(sink_config.type)
            group: list[SinkWorker] = []
            for index in range(sink_config.workers):
                sink = sink_cls(sink_config)  # one instance per thread: no shared connections
                secrets = frozenset(self.config.secrets | sink.secrets())
                worker = SinkWorker(sink, self.outbox, self.policies, secrets=secrets,
                                    stop=self.stop_event, poll=self.poll, batch=self.batch,
                                    index=index)
                group.append(worker)
                worker.siblings = group
            self.groups.append(group)
            self.workers.extend(group)
            for worker in group:
                worker.start()
        self._hook = _WakeOnCommit(self)
        self.plugins.manager.register(self._hook, name=f"floorstream-delivery-{id(self)}")
        log.info("delivery_started", sinks=[s.name for s in self.config.sinks],
                 workers=len(self.workers))

    def wake(self, posts: Sequence[Post] | None = None) -> None:
        """Posts were committed: per sink, as many idle workers look as lanes got new rows
        (see ``wake_workers``); without ``posts``, every worker looks."""
        teams = self.config.settings.teams
        for group in self.groups:
            if posts is None:
                lanes = len(group)
            else:
                sink = group[0].name_
                lanes = len({team for post in posts for team in post.teams
                             if team in teams and sink in teams[team].sinks})
            if lanes:
                wake_workers(group, lanes)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for worker in self.workers:
            worker.wake.set()
        for worker in self.workers:
            worker.join(timeout)
        if self._hook is not None:
            self.plugins.manager.unregister(self._hook)
            self._hook = None
        log.info("delivery_stopped")
