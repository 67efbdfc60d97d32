"""What every supply transport shares: config keys and "bytes in → events out".

A transport (folder, HTTP poll, HTTP inbox) only finds bytes and knows how to acknowledge
them; :class:`FeedHandler` parses them, asks the ERP, emits the events and finally one
``Emitter.checkpoint`` that carries the transport's ack and the source's memory. That is the
file's commit marker: the pipeline runs its ack only after every event of the file is
committed, so a file is moved to ``done/`` (or a push answered 200) only when its posts are
safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator
from sqlalchemy.exc import SQLAlchemyError

from floorstream.adapters.supply.code_tables import KINDS, CodeTables, milestones
from floorstream.adapters.supply.correlation import ErpConfig, ErpLookup
from floorstream.adapters.supply.documents import Parsed
from floorstream.adapters.supply.events import Interpreter, StoryOptions
from floorstream.adapters.supply.formats.csv_feed import CsvMapping
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.memory import Loader, Memory, StateUnavailable
from floorstream.model import Event
from floorstream.plugin import Ack, Adapter, Duration, Emitter, SourceConfig

__all__ = ["FeedHandler", "Outcome", "Received", "SupplyAdapter", "SupplyConfig", "check_erp"]


class Tolerance(BaseModel):
    """``tolerance: {over: 5, under: 2}``: percent of the ordered quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    over: float = Field(default=0.0, ge=0, description="shipped above the order, still fine")
    under: float = Field(default=0.0, ge=0, le=100,
                         description="shipped below the order, still complete")


class SupplyConfig(SourceConfig):
    """Keys shared by ``supply.folder``, ``supply.http`` and ``supply.inbox``."""

    format: Literal["auto", "x12", "edifact", "csv", "json"] = Field(
        default="auto", description="document format; auto = sniffed from the content")
    csv: CsvMapping = Field(default_factory=CsvMapping,
                            description="column mapping for supplier CSV files")
    erp: ErpConfig | None = Field(default=None,
                                  description="PO lookup for supplier, promised date, quantity")
    carriers: dict[str, str] = Field(default_factory=dict,
                                     description="carrier code (SCAC…) → name for posts")
    codes: dict[str, dict[str, tuple[str, str]]] = Field(
        default_factory=dict,
        description="extra status codes per table (at7, iftsta, dcsa, x12_315, generic, "
                    "aftership…): code → [milestone, detail] (a canonical milestone of "
                    "codes/milestones.json) or [text, kind]")
    vocabulary: Literal["generic", "aftership", "trackingmore", "shippo", "easypost",
                        "17track"] = Field(
        default="generic", description="the aggregator whose status list plain carrier JSON "
                                       "speaks (TrackingMore's 'pickup' is out for delivery)")
    remember: int = Field(default=1_000, ge=10,
                          description="shipment stories cached in memory (threads, last ETA, "
                                      "milestones); the others are read back from the store "
                                      "when a document names them")
    forget_after: Duration = Field(default=60 * 86_400.0, gt=0,
                                   description="a story untouched this long is forgotten")
    eta_threshold: Duration = Field(default=7_200.0, description="an ETA that moves less on "
                                    "the same day posts nothing")
    eta_new_day: bool = Field(default=True,
                              description="an ETA on another calendar day always posts")
    pending_for: Duration = Field(default=14 * 86_400.0, description="how long an ASN whose "
                                  "PO is not in the ERP waits for it")
    recheck_every: Duration = Field(default=60.0, description="how often a waiting PO is "
                                    "looked up again (on the source's next document)")
    units: dict[str, dict[str, PositiveFloat]] = Field(
        default_factory=dict, description="unit conversions, 1 CS = 12 EA: {CS: {EA: 12}}")
    tolerance: Tolerance = Field(default_factory=Tolerance,
                                 description="over- and under-shipment accepted, in percent")
    join: list[str] = Field(default_factory=list,
                            description="other supply sources whose shipment stories this "
                                        "source's documents continue (an ASN inbox for a "
                                        "carrier feed): their threads are looked up, read-only")

    @field_validator("codes")
    @classmethod
    def _known_kinds(cls, codes: dict[str, dict[str, tuple[str, str]]]
                     ) -> dict[str, dict[str, tuple[str, str]]]:
        known = set(KINDS) | set(milestones())
        for table, entries in codes.items():
            for code, (first, second) in entries.items():
                if first not in known and second not in known:
                    raise ValueError(
                        f"codes.{table}.{code}: [{first}, {second}] names no milestone "
                        f"({', '.join(sorted(milestones()))}) and no kind ({', '.join(KINDS)})")
        return codes

    def story_options(self) -> StoryOptions:
        return StoryOptions(
            eta_threshold=self.eta_threshold, eta_new_day=self.eta_new_day,
            pending_for=self.pending_for, recheck_every=self.recheck_every,
            over_tolerance=self.tolerance.over / 100, under_tolerance=self.tolerance.under / 100,
            units={a.upper(): {b.upper(): f for b, f in to.items()}
                   for a, to in self.units.items()})



def check_erp(config: SourceConfig) -> list[str]:
    """``floorstream check``: run the PO query once, so a wrong URL or column shows at start."""
    if not isinstance(config, SupplyConfig) or config.erp is None:
        return []
    lookup = ErpLookup(config.erp)
    try:
        lookup.order("__floorstream_check__")
    except Exception as exc:
        return [f"erp: the PO lookup query failed: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:200]}"]
    finally:
        lookup.close()
    return []


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one received file: events emitted, or the parse error."""

    events: int
    warnings: tuple[str, ...] = ()
    error: ParseError | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """One file read and parsed (or not: ``error``), not yet interpreted."""

    raw: bytes
    name: str
    digest: str
    parsed: Parsed | None
    error: ParseError | None


class FeedHandler:
    """Parses received bytes and emits their events; one per adapter instance."""

    def __init__(self, config: SupplyConfig, checkpoint: str | None, log: Any,
                 load_state: Loader | None = None,
                 load_state_of: Callable[[str, Collection[str]], dict[str, dict[str, Any]]]
                 | None = None) -> None:
        self.config = config
        self.log = log
        self.memory = Memory.load(checkpoint, config.remember, max_age=config.forget_after,
                                  loader=load_state, join=[s for s in config.join
                                                           if s != config.name],
                                  foreign=load_state_of)
        self.lookup = ErpLookup(config.erp) if config.erp is not None else None
        self.interpreter = Interpreter(
            config.name, memory=self.memory, codes=CodeTables(config.codes, config.vocabulary),
            lookup=self.lookup, carriers=config.carriers, attrs=dict(config.attrs),
            options=config.story_options())

    def handle(self, emitter: Emitter, raw: bytes, name: str, *, ack: Ack | None = None,
               on_failure: Callable[[], None] | None = None,
               format: str | None = None, allow_empty: bool = False) -> Outcome:
        """Emit the events of one file; ``ack`` runs after they are committed.

        A file that does not parse is quarantined whole (raw bytes, segment and offset of the
        failure) and ``on_failure`` runs after that commit instead of ``ack``. ERP errors
        propagate: the file must wait for the ERP rather than be posted without its facts.
        """
        read = self.prepare(raw, name, format=format, allow_empty=allow_empty)
        self.prefetch([read])
        return self.finish(emitter, read, ack=ack, on_failure=on_failure)

    def prepare(self, raw: bytes, name: str, *, format: str | None = None,
                allow_empty: bool = False) -> Received:
        """Parse one file (no memory, no ERP yet): a transport with a backlog parses a few
        files, :meth:`prefetch`-es their stories in one query, then :meth:`finish`-es each."""
        digest = hashlib.sha256(raw).hexdigest()
        try:
            parsed = parse_any(raw, format or self.config.format, csv_mapping=self.config.csv,
                               name=name, allow_empty=allow_empty)
        except ParseError as exc:
            return Received(raw, name, digest, None, exc)
        except Exception as exc:  # a parser bug met by this input: it costs this file only
            self.log.error("supply_parser_failed", file=name, error=repr(exc), exc_info=True)
            return Received(raw, name, digest, None,
                            ParseError(f"cannot be read ({exc.__class__.__name__}: {exc})"))
        return Received(raw, name, digest, parsed, None)

    def prefetch(self, received: Sequence[Received]) -> None:
        """What the memory knows of these files' shipments, read from the store at once."""
        docs = [d for r in received if r.parsed is not None for d in r.parsed.documents]
        if docs:
            self.interpreter.prefetch(docs)

    def finish(self, emitter: Emitter, read: Received, *, ack: Ack | None = None,
               on_failure: Callable[[], None] | None = None) -> Outcome:
        """Interpret a prepared file and emit its events and its commit marker."""
        raw, name, digest, parsed = read.raw, read.name, read.digest, read.parsed
        if parsed is None:
            assert read.error is not None
            return self._quarantine(emitter, raw, name, digest, read.error, on_failure or ack)
        try:
            events = [e for doc in parsed.documents for e in self.interpreter.events(doc)]
            _check_events(events)
        except ParseError as exc:
            self.memory.rollback()  # what the file's documents changed is not posted
            return self._quarantine(emitter, raw, name, digest, exc, on_failure or ack)
        except _ERP_ERRORS:
            raise  # the ERP (or the store) is unreachable: the file waits for it
        except Exception as exc:  # a bug met by this input: it costs this file only
            self.memory.rollback()
            self.log.error("supply_parser_failed", file=name, error=repr(exc), exc_info=True)
            error = ParseError(f"cannot be read ({exc.__class__.__name__}: {exc})")
            return self._quarantine(emitter, raw, name, digest, error, on_failure or ack)
        for warning in parsed.warnings:
            self.log.warning("supply_document_warning", file=name, warning=warning)
        for event in events:
            emitter.event(event)
        # the file is done once its events are committed: then the transport may move it
        self._commit(emitter, ack)
        return Outcome(len(events), tuple(parsed.warnings))

    def recheck(self, emitter: Emitter) -> int:
        """Look the waiting documents up again when no file came (an idle poll): a PO that
        reached the ERP updates its thread, an expired wait is posted. Returns the events."""
        if not self.memory.size("pending"):
            return 0
        try:
            events = self.interpreter.recheck()  # rolls the memory back if it fails
        except _ERP_ERRORS as exc:  # the next idle poll tries again; a file would wait too
            self.log.warning("supply_recheck_failed", error=repr(exc))
            return 0
        for event in events:
            emitter.event(event)
        if events or self.memory.dirty:
            self._commit(emitter, None)
        return len(events)

    def _commit(self, emitter: Emitter, ack: Ack | None) -> None:
        """The file's checkpoint (if it changed) and the rows of the stories it changed, in
        the commit of its events; the cache lets those rows go once they are committed."""
        dump = self.memory.dump()
        if dump.checkpoint is None and not dump.state and ack is None:
            return

        def committed() -> None:
            self.memory.committed(dump)
            if ack is not None:
                ack()

        emitter.checkpoint(dump.checkpoint, ack=committed, state=dump.state)

    def quarantine(self, emitter: Emitter, raw: bytes, name: str, reason: str, *,
                   ack: Ack | None = None, position: str | None = None,
                   context: dict[str, Any] | None = None) -> Outcome:
        """Quarantine bytes the transport refused before parsing (an oversized file)."""
        error = ParseError(reason)
        position = position or f"file:{hashlib.sha256(raw).hexdigest()}"
        emitter.quarantine(raw, f"{name}: {error}", position=position,
                           context={"file": name, **error.context(), **(context or {})},
                           ack=ack, checkpoint=self._checkpoint_only(emitter))
        return Outcome(0, error=error)

    def _quarantine(self, emitter: Emitter, raw: bytes, name: str, digest: str,
                    exc: ParseError, ack: Ack | None) -> Outcome:
        emitter.quarantine(raw, f"{name}: {exc}", position=f"file:{digest}",
                           context={"file": name, **exc.context()}, ack=ack,
                           checkpoint=self._checkpoint_only(emitter))
        return Outcome(0, error=exc)

    def _checkpoint_only(self, emitter: Emitter) -> str | None:
        """The checkpoint a quarantine commits (an HTTP page key in ``extra``). A quarantined
        file changed no story (rolled back), so there are no rows, bar an earlier recheck's."""
        dump = self.memory.dump()
        if dump.state:
            emitter.checkpoint(None, ack=lambda: self.memory.committed(dump), state=dump.state)
        return dump.checkpoint

    def close(self) -> None:
        if self.lookup is not None:
            self.lookup.close()


#: what the ERP lookup raises when its database is unreachable or the query is wrong, and
#: the memory when the store cannot be read
_ERP_ERRORS = (SQLAlchemyError, OSError, StateUnavailable)
#: the store's limit of a subject (a VARCHAR(255) column)
MAX_SUBJECT = 255


def _check_events(events: list[Event]) -> None:
    for event in events:
        if len(event.subject) > MAX_SUBJECT:
            raise ParseError(f"subject {event.subject[:40]!r}... is {len(event.subject)} "
                             f"characters long, more than {MAX_SUBJECT}: an identifier "
                             "this long is not one")


SupplyConfigT = TypeVar("SupplyConfigT", bound=SupplyConfig)


class SupplyAdapter(Adapter[SupplyConfigT]):
    """What the three transports share: the ERP check and closing their feed handler."""

    handler: FeedHandler

    @classmethod
    def check(cls, config: SourceConfig) -> list[str]:
        return check_erp(config)

    def close(self) -> None:
        handler = getattr(self, "handler", None)
        if handler is not None:
            handler.close()
