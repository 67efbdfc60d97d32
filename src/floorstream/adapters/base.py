"""The adapter contract: what a source plugin gets and what it must do.

An adapter reaches the rest of floorstream only through what it is handed: its validated
config, an :class:`AdapterContext` (last committed checkpoint, decoders, logger) and an
:class:`Emitter`. That is what lets a vendor write one in a separate package.

Delivery guarantee: the pipeline calls an emitted change's ``ack`` only after the posts it
produced and its ``checkpoint`` were committed together. An adapter acknowledges its source
(MQTT ack, file move) in that callback, never before, and resumes from ``context.checkpoint``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

from floorstream.detectors.base import DetectorOptions
from floorstream.detectors.flood import FloodOptions
from floorstream.model import Change
from floorstream.registry import Registry

__all__ = ["Ack", "Adapter", "AdapterContext", "DetectorSpec", "Emitter", "SourceConfig"]

Ack = Callable[[], None]


class DetectorSpec(BaseModel):
    """One entry of a source's ``detect:`` list, validated by the named detector's options."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    options: DetectorOptions


class SourceConfig(BaseModel):
    """Keys every source accepts. An adapter subclasses this with its own keys; unknown keys are
    errors so a typo never silently disables a feature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="unique source name, used in routes and the store")
    adapter: str = Field(description="the adapter plugin that reads this source")
    enabled: bool = True
    detect: list[DetectorSpec] = Field(default_factory=list,
                                       description="detectors, each {name: {options}}")
    summary: str | dict[str, str] | None = Field(
        default=None,
        description="Jinja2 template for posts' summary, or a map event-type glob → template",
    )
    attrs: dict[str, str] = Field(default_factory=dict,
                                  description="labels added to every change (site, area…)")
    flood: FloodOptions | None = Field(default=None,
                                       description="flood control for this source's subjects")


class Emitter(Protocol):
    """Where an adapter sends what it observed. Calls block while the pipeline queue is full.

    A change of ``kind="event"`` carries an event the adapter decided itself (``data`` =
    ``{"type": ..., "severity": ..., "fields": {...}, "clears": optional id}``); it skips the
    detectors and goes straight to flood control, rendering and routing.
    """

    def emit(self, change: Change, *, ack: Ack | None = None,
             checkpoint: str | None = None) -> None:
        """Queue a change; ``ack`` runs after commit; ``checkpoint`` is stored in that commit."""

    def quarantine(self, raw: bytes, error: str, *, position: str | None = None,
                   context: dict[str, Any] | None = None, ack: Ack | None = None,
                   checkpoint: str | None = None) -> None:
        """Keep input that could not be decoded, with the reason; the source goes on."""

    def problem(self, subject: str, message: str, *, position: str,
                fields: dict[str, Any] | None = None) -> None:
        """Report a fault in the source itself (a dropped column, a revoked login): one
        critical ``source.problem`` post to the admin team."""


@dataclass
class AdapterContext:
    """What the host hands an adapter besides its config."""

    source: str
    checkpoint: str | None
    decoders: Registry[Any]
    log: Any = field(default_factory=lambda: structlog.get_logger("floorstream.adapter"))
    #: the source's checkpoint as committed now (another daemon may have moved it: a standby
    #: that takes over a source resumes from there, not from what it read at start)
    committed_checkpoint: Callable[[], str | None] = field(default=lambda: None)


class Adapter:
    """Base class of adapters. Subclasses set ``name`` and ``config_model`` and override
    :meth:`run`, which blocks until ``stop`` is set and must return promptly after that."""

    name: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self, config: SourceConfig, context: AdapterContext) -> None:
        self.config = config
        self.context = context

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once after :meth:`run` returned."""

    @classmethod
    def check(cls, config: SourceConfig) -> list[str]:
        """Warnings for ``floorstream check`` beyond schema validation (e.g. a missing index).
        May connect to the source; must not change anything."""
        return []
