"""Feeding a Sparkplug host decoded messages, as the mqtt adapter's network thread does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from floorstream.adapters.mqtt.sparkplug import classify
from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder
from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost

OBSERVED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def feed(host: SparkplugHost, stream: Iterable[tuple[str, bytes]],
         observed: datetime = OBSERVED) -> None:
    """Each (topic, payload) decoded lazily and handed to ``host`` (no ack: QoS 0)."""
    decoder = SparkplugDecoder()
    for topic, payload in stream:
        _, levels, bridge = classify(topic.split("/"), None)
        host.message(levels, topic, payload, decoder.decode_lazy(payload), observed, None,
                     bridge)
