"""The phrase book: an event type's default wording, contributed by the plugin that makes it.

Filled through the ``register_phrases`` hook, so the core knows no integration's wording:
supply phrasing lives with the supply adapters, the ERP mass-update phrase with the ERP
adapter, Sparkplug's with the MQTT adapter. The helpers people's phrases need (numbers,
units, durations) are in :mod:`floorstream.plugin.phrasing`.
"""

from __future__ import annotations

from collections.abc import Callable

from floorstream.model import Event

__all__ = ["Phrase"]

#: A default phrase: the event → the one line people read (at most 200 characters).
Phrase = Callable[[Event], str]
