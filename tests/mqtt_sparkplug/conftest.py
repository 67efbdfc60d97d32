"""A daemon with one Sparkplug source on the shared Mosquitto, and edge nodes that publish
payloads encoded from the Sparkplug B ``.proto`` (:func:`encode_payload`).

Each test gets its own group (its topic prefix), client id and SQLite store. ``Node`` numbers
its messages like a real edge node (NBIRTH 0, then every message of the node and its devices
1, 2 … 255, 0 …), so a test can publish them out of order or leave one out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from support import DaemonRunner, sentinel
from support.daemon import all_posts
from support.mqtt import Publisher, Subscriptions

T0 = 1_764_057_600_000  # 2025-11-25 08:00 UTC


@dataclass
class Node:
    """An edge node of group ``ns`` (``[prefix/]spBv1.0/<group>``)."""

    ns: str
    name: str
    seq: int = 0
    bdseq: int = 1
    clock: int = T0
    aliases: dict[str, int] = field(default_factory=dict)

    def _next(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    def _tick(self, at: int | None) -> int:
        self.clock = at if at is not None else self.clock + 1000
        return self.clock

    def nbirth(self, at: int | None = None) -> tuple[str, bytes]:
        self.seq = 0
        return (f"{self.ns}/NBIRTH/{self.name}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": self.bdseq},
             {"name": "Node Control/Rebirth", "datatype": "Boolean", "value": False}],
            timestamp=self._tick(at), seq=0))

    def ndeath(self, at: int | None = None) -> tuple[str, bytes]:
        return (f"{self.ns}/NDEATH/{self.name}", encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": self.bdseq}],
            timestamp=self._tick(at)))

    def dbirth(self, device: str, metrics: dict[str, Any], at: int | None = None,
               units: dict[str, str] | None = None, labels: dict[str, str] | None = None
               ) -> tuple[str, bytes]:
        """Metrics by name; each gets an alias (the same name, the same alias); ``units``:
        their ``engUnit`` properties; ``labels``: their ``displayName`` properties."""
        specs = []
        for name, value in metrics.items():
            alias = self.aliases.setdefault(name, len(self.aliases) + 1)
            specs.append({"name": name, "alias": alias, "datatype": _type(value),
                          "value": value, "unit": (units or {}).get(name),
                          "label": (labels or {}).get(name)})
        return (f"{self.ns}/DBIRTH/{self.name}/{device}",
                encode_payload(specs, timestamp=self._tick(at), seq=self._next()))

    def ddata(self, device: str, metrics: dict[str, Any], at: int | None = None,
              historical: bool = False, named: bool = False,
              seq: int | None = None) -> tuple[str, bytes]:
        """Metrics by alias (as edge nodes send data), or by name with ``named``."""
        specs: list[dict[str, Any]] = []
        for name, value in metrics.items():
            spec: dict[str, Any] = {"datatype": _type(value), "value": value,
                                    "is_historical": historical}
            if named or name not in self.aliases:
                spec["name"] = name
            if name in self.aliases:
                spec["alias"] = self.aliases[name]
                if not named:
                    spec.pop("name", None)
            specs.append(spec)
        return (f"{self.ns}/DDATA/{self.name}/{device}",
                encode_payload(specs, timestamp=self._tick(at),
                               seq=self._next() if seq is None else seq))


def _type(value: Any) -> str:
    return ("Boolean" if isinstance(value, bool) else "Int64" if isinstance(value, int)
            else "Double" if isinstance(value, float) else "String")


@dataclass
class Session:
    publisher: Publisher
    ns: str  # spBv1.0/<group> (with the prefix, if the config has one)
    group: str
    store: Store
    daemon: Any
    subscriptions: Subscriptions

    def restart(self) -> None:
        """Stop the daemon and start it again on the same store and broker session."""
        self.daemon.restart()
        self.subscriptions.wait("sp")

    def node(self, name: str) -> Node:
        return Node(self.ns, name)

    def posts(self) -> list[Any]:
        """Every post, oldest first."""
        return list(all_posts(self.store))

    def summaries(self, *, but: str = "Sentinel") -> list[str]:
        return [p.summary for p in self.posts() if not p.subject.startswith(but)]

    def sentinel(self) -> None:
        """A node of its own, born and flipped behind everything sent so far: once its post
        is in, everything before it was handled (``support.sentinel``)."""
        node = self.node(f"Sentinel-{len(self.posts())}")
        device = f"Sentinel{node.name[9:]}"
        sentinel(lambda: self.publisher.publish_all([
            node.nbirth(), node.dbirth(device, {"State": "RUNNING"}),
            node.ddata(device, {"State": "STOPPED"})]),
            lambda: any(p.subject == device for p in self.posts()), timeout=20)


@pytest.fixture
def sparkplug(mqtt_broker: tuple[str, int], topic_prefix: str, sqlite_url: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Session]]:
    """``sparkplug(options="reorder_timeout: 0.3", prefix="", topics=None)`` starts the
    daemon and returns a :class:`Session`."""
    host, port = mqtt_broker
    group = topic_prefix.replace("/", "-")
    runners: list[DaemonRunner] = []
    publishers: list[Publisher] = []

    def start(options: str = "", prefix: str = "", topics: list[str] | None = None,
              detect: str | None = None, protocol: str = "5") -> Session:
        ns = f"{prefix}spBv1.0/{group}"
        filters = topics or [f"{ns}/#"]
        text = f"""
store: {sqlite_url}
flood: null
pipeline: {{batch_wait_ms: 1}}
teams: {{maintenance: {{}}}}
default_team: maintenance
sources:
  - name: sp
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{group}
    protocol: "{protocol}"
    decode: sparkplug
    topics: {filters!r}
    sparkplug: {{{options}}}
    detect:
{detect or '''      - state_change: {field: State}
      - threshold: {field: Temperature, above: 85, clear_below: 80, unit: "°C"}'''}
"""
        subscriptions = Subscriptions().install(monkeypatch)
        runner = DaemonRunner(text, plugins=build_plugins(load_entry_points=False))
        runner.__enter__()
        runners.append(runner)
        runner.start()
        subscriptions.wait("sp")
        publisher = Publisher(host, port)
        publishers.append(publisher)
        return Session(publisher, ns, group, runner.store, runner, subscriptions)

    yield start
    for publisher in publishers:
        publisher.close()
    for runner in runners:
        runner.__exit__(None, None, None)
