"""Bytes in → events out for a supply source: :class:`FeedHandler` (see :mod:`.feed`).

Kept apart from the config keys in :mod:`.feed` because it imports the document parsers and
the story machinery (~3.5 MB of RSS, issue 16): the transports import it when a supply source
starts, so a daemon without one never loads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.correlation import ErpLookup
from floorstream.adapters.supply.documents import Parsed
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.feed import SupplyConfig
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.text import partner_zone
from floorstream.adapters.supply.memory import Loader, Memory, StateUnavailable
from floorstream.model import Event
from floorstream.plugin import Ack, Emitter

__all__ = ["MAX_SUBJECT", "FeedHandler", "Outcome", "Received"]


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
        self.zone = config.zone()
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
                allow_empty: bool = False, digest: str | None = None,
                body: bool = False) -> Received:
        """Parse one file (no memory, no ERP yet): a transport with a backlog parses a few
        files, :meth:`prefetch`-es their stories in one query, then :meth:`finish`-es each.
        ``digest``: the SHA-256 hex of ``raw`` if the transport has it already. ``body``:
        keep a JSON file's decoded body in ``parsed.body`` (the HTTP poll reads its cursor
        there); otherwise it goes at once, as a folder holds up to 32 parsed files at a time
        and a decoded 1,000-event page takes a few MB."""
        digest = digest or hashlib.sha256(raw).hexdigest()
        try:
            with partner_zone(self.zone) as guessed:
                parsed = parse_any(raw, format or self.config.format,
                                   csv_mapping=self.config.csv, name=name,
                                   allow_empty=allow_empty)
            if guessed:
                parsed.warnings.append(
                    f"{len(guessed)} time(s) in local time (X12 time code LT), first "
                    f"{guessed[0]}, read as UTC: set the source's timezone to the partner's")
        except ParseError as exc:
            return Received(raw, name, digest, None, exc)
        except Exception as exc:  # a parser bug met by this input: it costs this file only
            self.log.error("supply_parser_failed", file=name, error=repr(exc), exc_info=True)
            return Received(raw, name, digest, None,
                            ParseError(f"cannot be read ({exc.__class__.__name__}: {exc})"))
        if not body:
            parsed.body = None
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
