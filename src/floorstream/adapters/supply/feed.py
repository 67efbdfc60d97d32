"""What every supply transport shares: config keys and "bytes in → events out".

A transport (folder, HTTP poll, HTTP inbox) only finds bytes and knows how to acknowledge
them; :class:`FeedHandler` parses them, asks the ERP, emits the events and finally one
``Emitter.checkpoint`` that carries the transport's ack and the source's memory. That is the
file's commit marker: the pipeline runs its ack only after every event of the file is
committed, so a file is moved to ``done/`` (or a push answered 200) only when its posts are
safe.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator

from floorstream.adapters.supply.code_tables import KINDS, milestones
from floorstream.adapters.supply.correlation import ErpConfig, ErpLookup
from floorstream.adapters.supply.csv_mapping import CsvMapping
from floorstream.plugin import Adapter, Duration, SourceConfig, TimeZoneName

if TYPE_CHECKING:  # the parsers and the story machinery load when a supply source starts
    from floorstream.adapters.supply.events import StoryOptions
    from floorstream.adapters.supply.handler import FeedHandler

__all__ = ["SupplyAdapter", "SupplyConfig", "check_erp"]


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
    timezone: TimeZoneName | None = Field(
        default=None, description="the partner's time zone (IANA name, e.g. America/Chicago): "
                                  "X12 time code LT and times sent without a zone are read in "
                                  "it; unset: UTC, and an LT is warned about")
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

    def zone(self) -> tzinfo | None:
        """The partner's zone (:attr:`timezone`), or None."""
        return ZoneInfo(self.timezone) if self.timezone else None

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
        from floorstream.adapters.supply.events import StoryOptions

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


def __getattr__(name: str) -> Any:
    """``FeedHandler``, ``Outcome``, ``Received`` moved to :mod:`.handler` (imported when a
    supply source starts, so a daemon without one loads no parser): still importable here."""
    if name in ("FeedHandler", "Outcome", "Received", "MAX_SUBJECT"):
        from floorstream.adapters.supply import handler

        return getattr(handler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
