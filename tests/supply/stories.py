"""Helpers of the story tests (``test_stories_*.py``): an interpreter over a real ERP, the posts
of a file as (type, relation, summary), derived variants of the real samples."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.correlation import ErpConfig, ErpLookup
from floorstream.adapters.supply.events import Interpreter, StoryOptions
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from floorstream.model import Event
from floorstream.testing.detectors import phrase

from .support import HERE, SAMPLES

ASN_856 = (SAMPLES / "x12" / "004060_856_apimeister.edi").read_bytes()
STATUS_214 = (SAMPLES / "x12" / "004010_214_staedi_ellipsis_terminator.edi").read_bytes()
STATUS_315 = (SAMPLES / "x12" / "004010_315_apimeister.edi").read_bytes()
IFTSTA = (SAMPLES / "edifact" / "d00b_iftsta_apimeister.edi").read_bytes()
DCSA = (SAMPLES / "carrier" / "dcsa_tnt_v3_event_examples.json").read_bytes()
DESADV = (HERE / "data" / "desadv_d96a_two_messages.edi").read_bytes()

#: the 856 sample's thread: the ASN number (BSN02) scoped by the interchange sender
ASN_THREAD = "supply/ASN 829716 from ZZ:ABCDEFGHIJKLMNO"


class Rows(dict[str, dict[str, Any]]):
    """A source's state rows as the store keeps them: what ``Emitter.checkpoint(state=...)``
    commits, read back by key like ``AdapterContext.load_state``."""

    checkpoint: str | None = None

    def load(self, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        return {key: self[key] for key in keys if key in self}

    def commit(self, memory: Memory) -> str | None:
        """What a file's commit does: the memory's rows and checkpoint (if it changed) are
        stored; returns the checkpoint text as committed now."""
        dump = memory.dump()
        self.update(dump.state)
        memory.committed(dump)
        if dump.checkpoint is not None:
            self.checkpoint = dump.checkpoint
        return self.checkpoint

    def restart(self, limit: int = 1_000, **options: Any) -> Memory:
        """The memory a restarted source builds from what is committed."""
        return Memory.load(self.checkpoint, limit, loader=Rows(self).load, **options)


class Clock:
    """A settable clock for the memory (expiry of stories and waiting ASNs)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def interpreter(erp_url: str | None = None, *, memory: Memory | None = None,
                vocabulary: str | None = None, query: str | None = None,
                po_alpha: int | None = 10, **options: Any) -> Interpreter:
    lookup = None
    if erp_url is not None:
        config: dict[str, Any] = {"url": erp_url, "cache_s": 0, "po_alpha": po_alpha,
                                  "supplier_names": {"V100": "Acme", "V200": "Widget Co"}}
        if query:
            config["query"] = query
        lookup = ErpLookup(ErpConfig(**config))
    return Interpreter("supply", memory=memory if memory is not None else Memory(),
                       codes=CodeTables(vocabulary=vocabulary), lookup=lookup,
                       carriers={"ABFS": "ABF"}, options=StoryOptions(**options))


def events(interp: Interpreter, raw: bytes, **kwargs: Any) -> list[Event]:
    return [e for doc in parse_any(raw, **kwargs).documents for e in interp.events(doc)]


@dataclass(frozen=True)
class Told:
    """One post as the tests compare it."""

    type: str
    relation: str
    summary: str
    thread: str
    refers_to: str | None
    id: str


def told(interp: Interpreter, raw: bytes, **kwargs: Any) -> list[Told]:
    return [Told(e.type, e.relation, phrase(e), e.thread or e.subject, e.refers_to, e.id)
            for e in events(interp, raw, **kwargs)]


def brief(posts: list[Told]) -> list[tuple[str, str, str]]:
    return [(p.type, p.relation, p.summary) for p in posts]


def x12(raw: bytes, control: int, **segments: str) -> bytes:
    """The X12 file as another interchange (ISA13/IEA02 ``control``), with segments replaced
    by tag: ``x12(raw, 7, BSN="BSN*01*829716*20111206*142428*0002")``."""
    text = raw.decode("utf-8")
    isa = text[:106]
    old = isa.split(isa[3])[13]
    text = text.replace(old, f"{control:09d}")
    for tag, segment in segments.items():
        text, n = re.subn(rf"(?m)^{tag}\*[^\n~…]*", segment, text, count=1)
        assert n == 1, tag
    return text.encode("utf-8")


def edifact(raw: bytes, reference: str, **segments: str) -> bytes:
    """The EDIFACT file as another interchange (UNB/UNZ reference), segments replaced by tag."""
    text = raw.decode("utf-8")
    unb = re.search(r"UNB\+[^']*'", text)
    assert unb is not None
    old = unb.group().rstrip("'").split("+")[5]
    text = text.replace(f"+{old}'", f"+{reference}'")
    for tag, segment in segments.items():
        text, n = re.subn(rf"{tag}\+[^']*", segment, text, count=1)
        assert n == 1, tag
    return text.encode("utf-8")
