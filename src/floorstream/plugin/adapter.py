"""The adapter contract: what a source plugin gets and what it must do.

An adapter reaches the rest of floorstream only through what it is handed: its validated
config, an :class:`AdapterContext` (last committed checkpoint, decoders, logger) and an
:class:`Emitter`. That is what lets a vendor write one in a separate package.

Delivery guarantee: the pipeline calls an emitted item's ``ack`` only after the posts it
produced and its ``checkpoint`` were committed together. An adapter acknowledges its source
(MQTT ack, file move) in that callback, never before, and resumes from ``context.checkpoint``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from floorstream.model import Change, Event, utcnow
from floorstream.plugin.checkpoints import Checkpoint
from floorstream.plugin.detector import DetectorOptions, Interest, SettleOptions
from floorstream.plugin.durations import Duration
from floorstream.plugin.generic import config_model_from_generic
from floorstream.plugin.log import get_logger
from floorstream.plugin.registry import Registry

__all__ = ["Ack", "Adapter", "AdapterContext", "DetectorSpec", "Emitter", "FloodOptions",
           "PruneContext", "ReplayContext", "SourceConfig", "SourceHealth"]

Ack = Callable[[], None]


class DetectorSpec(BaseModel):
    """One entry of a source's ``detect:`` list, validated by the named detector's options."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    #: dumped as the named detector's own options model, not as the bare base class: a
    #: reload compares sources by their dumps, and a dump without the options (``{}``)
    #: made ``threshold.above: 85 → 90`` look unchanged under SIGHUP
    options: SerializeAsAny[DetectorOptions]


class FloodOptions(BaseModel):
    """``flood: {max_posts: 10, window: 5m}`` on a source, or at the top level for all.

    Flood control is a pipeline stage every post passes, whichever adapter or detector made
    it; the options live with the source contract because a source may tune its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_posts: int = Field(default=10, ge=1, description=(
        "posts allowed per subject per window at least as severe as the next one (so info "
        "posts never use up the warnings' budget)"))
    window: Duration = Field(default=300.0, gt=0, description="window length")


class SourceConfig(BaseModel):
    """Keys every source accepts. An adapter subclasses this with its own keys; unknown keys are
    errors so a typo never silently disables a feature."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
    states: SettleOptions | None = Field(
        default=None, description="settle time and flap detection for state-like posts")

    @classmethod
    def implied_detectors(cls, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Detect entries this kind of source needs beyond the ones the user listed, each
        ``{name: {options}}`` (e.g. an ERP table's ``track:`` columns imply ``field_change``).

        Called with the source's raw config mapping before validation; the host validates the
        entries with the named detector's options, exactly like the user's own entries.
        """
        return []


class Emitter(Protocol):
    """Where an adapter sends what it observed. Calls block while the pipeline queue is full.

    Five kinds of input, one method each, so no detector ever sees a pseudo-change:

    - :meth:`emit`: an observation; the source's detectors decide what it means;
    - :meth:`baseline`: an observation to learn from without posting (a first start, rows a
      mass update rewrote): detectors update their state, whatever they find is dropped;
    - :meth:`event`: something the adapter already understood (a shipment delayed, a node
      died); it skips the detectors and goes straight to flood control, phrasing and routing;
    - :meth:`checkpoint`: progress without data (a poll that found nothing new);
    - :meth:`quarantine` / :meth:`problem`: bad input, or a fault of the source itself.
    """

    def emit(self, change: Change, *, ack: Ack | None = None,
             checkpoint: Checkpoint | None = None) -> None:
        """Queue a change; ``ack`` runs after commit; ``checkpoint`` is stored in that commit."""

    def baseline(self, change: Change, *, ack: Ack | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        """Queue a change the detectors learn from silently (their events are discarded)."""

    def event(self, event: Event, *, ack: Ack | None = None,
              checkpoint: Checkpoint | None = None) -> None:
        """Queue an event the adapter decided itself (build it with ``Event.create``)."""

    def checkpoint(self, checkpoint: Checkpoint | None, *, ack: Ack | None = None,
                   state: Mapping[str, dict[str, Any]] | None = None) -> None:
        """Mark progress without data: ``checkpoint`` (if any) is stored with the next
        commit and ``ack`` runs after it (a file whose events are all queued, a poll that
        found nothing new).

        ``state``: the adapter's own keyed rows (key → JSON object, keys of at most 255
        characters) written in that same commit, for what is too big to rewrite whole with
        every checkpoint (a supply source's thousands of shipment stories): only the rows a
        unit changed travel, and :attr:`AdapterContext.load_state` reads them back by key. A
        row is overwritten, never deleted: write what your adapter reads as "nothing"."""

    def quarantine(self, raw: bytes, error: str, *, position: str | None = None,
                   context: dict[str, Any] | None = None, ack: Ack | None = None,
                   checkpoint: Checkpoint | None = None) -> None:
        """Keep input that could not be decoded, with the reason; the source goes on."""

    def problem(self, subject: str, message: str, *, position: str,
                fields: dict[str, Any] | None = None) -> None:
        """Report a fault in the source itself (a dropped column, a revoked login): one
        critical ``source.problem`` post to the admin team."""


class SourceHealth:
    """``context.health``: how an adapter tells the host whether its source can be reached.

    Call :meth:`connected` when a connection is up (or a poll went through) and
    :meth:`disconnected` with the error when it broke or could not be made, on every failed
    attempt, so the error shown stays the current one. Both are cheap, thread-safe and may be
    called as often as convenient: only a change of state moves :attr:`since`. The host shows
    the state per source in ``/healthz``, answers ``/readyz`` with 503 while a source is
    disconnected, and posts to the admin team when one stays down.

    An adapter that reports sets ``reports_connection = True`` on its class: its source counts
    as disconnected until its first :meth:`connected`. One that never reports counts as
    connected while its ``run`` runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: None until the adapter first reported
        self.is_connected: bool | None = None
        #: when ``is_connected`` last changed (aware UTC)
        self.since: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        #: failed attempts since the last :meth:`connected`
        self.failures = 0

    def connected(self) -> None:
        """The source is reachable (connected, subscribed, a poll succeeded)."""
        if self.is_connected:
            return  # the common case, once per poll or connect: no lock
        with self._lock:
            if not self.is_connected:  # another thread may have been first
                self.is_connected, self.since, self.failures = True, utcnow(), 0

    def disconnected(self, error: BaseException | str | None = None) -> None:
        """The source cannot be reached (a refused connect, a lost connection, a failed poll);
        ``error`` says why, as people should read it."""
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}".strip()
        now = utcnow()
        with self._lock:
            if self.is_connected is not False:
                self.is_connected, self.since = False, now
            self.failures += 1
            if error:
                self.last_error, self.last_error_at = error[:1000], now


@dataclass
class AdapterContext:
    """What the host hands an adapter besides its config."""

    source: str
    checkpoint: str | None
    decoders: Registry[Any]
    log: Any = field(default_factory=lambda: get_logger("floorstream.adapter"))
    #: the source's checkpoint as committed now (another daemon may have moved it: a standby
    #: that takes over a source resumes from there, not from what it read at start)
    committed_checkpoint: Callable[[], str | None] = field(default=lambda: None)
    #: where the adapter reports whether its source is reachable (see :class:`SourceHealth`)
    health: SourceHealth = field(default_factory=SourceHealth)
    #: the committed rows of ``Emitter.checkpoint(state=...)`` for these keys (absent keys are
    #: left out); one indexed query, so an adapter loads what it needs when it needs it
    load_state: Callable[[Collection[str]], dict[str, dict[str, Any]]] = field(
        default=lambda keys: {})
    #: the same for *another* source's rows (source name, keys), read-only: for sources of
    #: one integration that share identifiers (an ASN inbox and a carrier feed naming one
    #: shipment); what it returns is committed state, never written back by this adapter
    load_state_of: Callable[[str, Collection[str]], dict[str, dict[str, Any]]] = field(
        default=lambda source, keys: {})
    #: the host runs this source under a lease on its store (a fleet, docs/fleet.md): exactly
    #: one daemon runs it, so an adapter needs no single-runner lock of its own
    leased: bool = False
    #: which payload fields the source's detectors, templates and plugins read (see
    #: :class:`Interest`): an adapter may read only those; the default is all of them
    interest: Interest = field(default_factory=Interest)
    #: the plant's display zone (config ``display.timezone``): where an adapter formats a
    #: time into a value people read, it shows it in this zone, labelled; None: not set
    display_zone: tzinfo | None = None


@dataclass
class ReplayContext:
    """What :meth:`Adapter.replay` gets besides the raw bytes: the source's config as it is
    *now* (after the fix that makes a replay worth trying) and what was kept with the input
    when it was quarantined."""

    source: str
    config: Any  # the source's validated config (an instance of the adapter's config_model)
    position: str | None
    #: what the adapter passed as ``context=`` to ``emitter.quarantine`` (a topic, a file name)
    context: dict[str, Any]
    received_at: datetime
    decoders: Registry[Any]
    log: Any = field(default_factory=lambda: get_logger("floorstream.adapter"))


@dataclass
class PruneContext:
    """What :meth:`Adapter.prune` gets: delete what the source keeps for floorstream that is
    consumed (at or before ``checkpoint``) and older than ``older_than``."""

    source: str
    #: the source's committed checkpoint (None: nothing consumed yet, so nothing to prune)
    checkpoint: str | None
    older_than: datetime
    batch: int = 1000  # rows per transaction at most
    dry_run: bool = False  # count only
    log: Any = field(default_factory=lambda: get_logger("floorstream.adapter"))
    stop: threading.Event = field(default_factory=threading.Event)
    pause: float = 0.0  # seconds to rest between two transactions


ConfigT = TypeVar("ConfigT", bound=SourceConfig)


class Adapter(Generic[ConfigT]):
    """Base class of adapters, generic in their config model.

    ``class MyAdapter(Adapter[MyConfig])`` is all it takes for ``config_model`` to be
    ``MyConfig`` and ``self.config`` to be typed as one (no ``isinstance`` checks). Subclasses
    set ``name`` and override :meth:`run`, which blocks until ``stop`` is set and must return
    promptly after that.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]] = SourceConfig
    #: True when the adapter reports its connection through ``context.health``
    reports_connection: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = config_model_from_generic(cls, Adapter, SourceConfig)
        if model is not None:
            cls.config_model = model

    def __init__(self, config: ConfigT, context: AdapterContext) -> None:
        self.config: ConfigT = config
        self.context = context

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once after :meth:`run` returned."""

    def unacked_window(self) -> int | None:
        """How many inputs with an ack this source can have outstanding before its upstream
        stops sending (an MQTT broker's in-flight window), or None when there is no such
        limit (the default). A batch gathering a steady stream is taken once half of the
        smallest window is queued: the pipeline never waits for input the source holds back
        until it gets acks. Asked once, before :meth:`run`."""
        return None

    @classmethod
    def replay(cls, raw: bytes, context: ReplayContext) -> Sequence[Change | Event]:
        """Decode quarantined input again, through the source's current config.

        ``floorstream quarantine replay`` calls this (in its own process, with no connection
        to the source) for each item of this adapter's sources. Return what the adapter would
        have emitted for ``raw`` now: changes go through the source's detectors, events
        straight to flood control, phrasing and routing; positions must be the ones the
        adapter gives the same input live, so ids are deterministic and a replay posts once.
        Raise (a :class:`~floorstream.errors.DecodeError` with the reason people should read)
        when it still fails: the item stays quarantined with that reason. An empty list means
        the input is fine now but says nothing; the item is removed.

        The default says the adapter cannot replay; items a *detector* refused are replayed by
        the host itself (they hold the change, not the raw input).
        """
        raise NotImplementedError(f"the {getattr(cls, 'name', cls.__name__)} adapter cannot "
                                  "replay its input")

    @classmethod
    def supports_replay(cls) -> bool:
        return cls.replay.__func__ is not Adapter.replay.__func__  # type: ignore[attr-defined]

    @classmethod
    def prune(cls, config: Any, context: PruneContext) -> int:
        """Delete input the source keeps in the watched system for floorstream (a change log
        its triggers fill) that the source has consumed, i.e. at or before
        ``context.checkpoint``, and older than ``context.older_than`` (the host's
        ``retention.erp_changes``); at most ``context.batch`` rows per transaction; count
        only when ``context.dry_run``. Returns the rows deleted (or that would be).

        Called by the daemon's retention thread and ``floorstream prune`` with a committed
        checkpoint, never while holding anything of the adapter's own. Default: nothing kept.
        """
        return 0

    @classmethod
    def check(cls, config: Any) -> list[str]:
        """Warnings for ``floorstream check`` beyond schema validation (e.g. a missing index).
        May connect to the source; must not change anything. ``config`` is a validated
        instance of :attr:`config_model`."""
        return []
