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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import Field

from floorstream.adapters.supply.code_tables import KINDS, CodeTables
from floorstream.adapters.supply.correlation import ErpConfig, ErpLookup
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats.csv_feed import CsvMapping
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.memory import Memory
from floorstream.plugin import Ack, Adapter, Emitter, SourceConfig

__all__ = ["FeedHandler", "Outcome", "SupplyAdapter", "SupplyConfig", "check_erp"]


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
    codes: dict[str, dict[str, tuple[str, Literal[KINDS]]]] = Field(  # type: ignore[valid-type]
        default_factory=dict,
        description="extra status codes per table (at7, iftsta, dcsa, x12_315, generic): "
                    "code → [text, kind]")
    remember: int = Field(default=2_000, ge=10,
                          description="shipments whose last ETAs are kept for 'delayed'")


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


class FeedHandler:
    """Parses received bytes and emits their events; one per adapter instance."""

    def __init__(self, config: SupplyConfig, checkpoint: str | None, log: Any) -> None:
        self.config = config
        self.log = log
        self.memory = Memory.load(checkpoint, config.remember)
        self.lookup = ErpLookup(config.erp) if config.erp is not None else None
        self.interpreter = Interpreter(
            config.name, memory=self.memory, codes=CodeTables(config.codes), lookup=self.lookup,
            carriers=config.carriers, attrs=dict(config.attrs))

    def handle(self, emitter: Emitter, raw: bytes, name: str, *, ack: Ack | None = None,
               on_failure: Callable[[], None] | None = None,
               format: str | None = None, allow_empty: bool = False) -> Outcome:
        """Emit the events of one file; ``ack`` runs after they are committed.

        A file that does not parse is quarantined whole (raw bytes, segment and offset of the
        failure) and ``on_failure`` runs after that commit instead of ``ack``. ERP errors
        propagate: the file must wait for the ERP rather than be posted without its facts.
        """
        digest = hashlib.sha256(raw).hexdigest()
        try:
            parsed = parse_any(raw, format or self.config.format, csv_mapping=self.config.csv,
                               name=name, allow_empty=allow_empty)
            events = [e for doc in parsed.documents for e in self.interpreter.events(doc)]
        except ParseError as exc:
            emitter.quarantine(raw, f"{name}: {exc}", position=f"file:{digest}",
                               context={"file": name, **exc.context()},
                               ack=on_failure or ack,
                               checkpoint=self.memory.dump() if self.memory.dirty else None)
            return Outcome(0, error=exc)
        for warning in parsed.warnings:
            self.log.warning("supply_document_warning", file=name, warning=warning)
        for event in events:
            emitter.event(event)
        # the file is done once its events are committed: then the transport may move it
        emitter.checkpoint(self.memory.dump() if self.memory.dirty else None, ack=ack)
        return Outcome(len(events), tuple(parsed.warnings))

    def close(self) -> None:
        if self.lookup is not None:
            self.lookup.close()


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
