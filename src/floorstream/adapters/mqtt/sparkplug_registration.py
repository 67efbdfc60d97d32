"""Registers the ``sparkplug`` decoder without loading protobuf.

The decoder itself (:mod:`floorstream.adapters.mqtt.sparkplug_b`) imports the generated
``sparkplug_b_pb2`` module, whose descriptors cost ~4 MB of RSS; a daemon whose sources all
decode JSON never needs them (issue 16, memory). The registry holds this factory instead:
``decoders.get("sparkplug")()`` imports and builds the real decoder when a source that decodes
Sparkplug starts, and not before.
"""

from __future__ import annotations

from typing import Any, ClassVar

from floorstream.plugin import Decoder, Registry, hookimpl

__all__ = ["LazySparkplugDecoder", "register_decoders"]


class LazySparkplugDecoder:
    """Stands in the decoder registry for :class:`~floorstream.adapters.mqtt.sparkplug_b.
    SparkplugDecoder`: same name, and calling it returns a real decoder."""

    name: ClassVar[str] = "sparkplug"
    max_bytes: ClassVar[int] = Decoder.max_bytes

    def __call__(self) -> Decoder:
        from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder

        return SparkplugDecoder()


@hookimpl
def register_decoders(registry: Registry[Any]) -> None:
    registry.add(LazySparkplugDecoder())
