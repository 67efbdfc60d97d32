"""What the plugin registers with floorstream (the ``floorstream`` entry point names this
module): two adapters, two detectors and the wording of their events."""

from __future__ import annotations

from typing import Any

from floorstream.plugin import Adapter, Detector, Phrase, Registry, hookimpl
from floorstream_mtconnect.conditions import Conditions
from floorstream_mtconnect.cycles import Cycles
from floorstream_mtconnect.phrases import PHRASES

__all__ = ["register_adapters", "register_detectors", "register_phrases"]


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    # by reference: an adapter's module (HTTP client, XML, SHDR parser) loads when a config
    # names it
    registry.add_lazy("mtconnect.agent", "floorstream_mtconnect.agent:AgentSource")
    registry.add_lazy("mtconnect.shdr", "floorstream_mtconnect.shdr:ShdrSource")


@hookimpl
def register_detectors(registry: Registry[type[Detector]]) -> None:
    registry.add(Conditions)
    registry.add(Cycles)


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    for name, phrase in PHRASES.items():
        phrases.add(phrase, name=name)
