"""Documents + ERP facts → the events a supply source emits, one story per shipment.

The adapter knows what a document means, so it decides the event itself (detectors are for
raw signals). Event types: ``shipment.dispatched`` (an ASN on time, notice when partial),
``shipment.status_changed``, ``shipment.delayed`` (an ASN arriving or shipped after the
promised date, a delay code or reason, an ETA later than the promised date or the last ETA),
``shipment.delivered``, ``shipment.exception``, ``shipment.retracted`` (a carrier withdrew an
event or a status report), ``asn.cancelled`` (a supplier cancelled its ASN) and
``asn.mismatch`` (PO not in the ERP yet, unknown, deleted or blocked line, quantity over the
order, units that do not convert).

**Stories** (design.md §9). Every document about one shipment joins one thread:

- an ASN's thread is ``<source>/ASN <number>[ from <sender>]`` (BSN02 / BGM 1004 / the CSV's
  ASN column or file name, scoped by the interchange sender); its bill of lading, tracking
  number, ASN number and POs become aliases of the thread;
- a carrier report joins the thread one of its references names (PRO / B10, bill of lading,
  booking, container, the shipper's shipment id B10-02), else the latest ASN thread of its PO,
  else starts ``<source>/shipment <id>``.

The first post of a thread is ``new``; later ones are ``update``s that refer to the post they
change (the ETA they move, the ASN they replace) and say what changed; an actual milestone is
the ``resolution`` of its estimate; a cancelled ASN or withdrawn carrier event is a
``retraction``. Purpose codes (X12 353, EDIFACT 1225, ``codes/``) decide: original, change
and replace update the story (a copy that changes nothing posts nothing), cancel retracts it,
duplicate and confirmation post nothing once the story is known; an unknown code is read as an
original with a warning in the log and a note on the post.

**Meaning decides duplicates.** A milestone (status, place, time) already told in the thread
posts nothing, whichever interchange repeats it; an ETA posts only when it moves past the
source's threshold (a new calendar day or ``eta_threshold``). **The ERP may lag**: an ASN for a
PO the ERP does not know posts one "unmatched" post and waits in the memory (``pending_for``);
when the PO appears — checked on every later document of the source — the ASN is matched and
posted as an update of its thread.

Positions are ``<document key>:<part>``: the same document received twice yields the same
event ids; a document already reflected in the memory (a replay after the checkpoint was
committed) yields nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from floorstream.adapters.supply.code_tables import (
    CodeTables,
    Meaning,
    Purpose,
    fixed_factor,
    unit_id,
)
from floorstream.adapters.supply.correlation import ErpLookup, PoLine, PurchaseOrder
from floorstream.adapters.supply.documents import (
    Asn,
    AsnLine,
    AsnOrder,
    Document,
    Retraction,
    Status,
    StatusReport,
)
from floorstream.adapters.supply.memory import Memory
from floorstream.model import Event, Relation, Severity, utcnow
from floorstream.plugin import alpha_out
from floorstream.plugin.log import get_logger

__all__ = ["Interpreter", "StoryOptions"]

log = get_logger("floorstream.adapter.supply")

_REASON_SCHEME = {"at7": "at7_reason"}
_MILESTONES_KEPT = 40  # milestone keys per story (a shipment reports a few dozen at most)
_RETRACTED = "retracted"


@dataclass(frozen=True, slots=True)
class StoryOptions:
    """A source's story settings (``SupplyConfig``: eta_threshold, pending_for, units…)."""

    eta_threshold: float = 7_200.0  # seconds an ETA must move on the same day to be news
    eta_new_day: bool = True  # an ETA on another calendar day is always news
    pending_for: float = 14 * 86_400.0  # how long an ASN waits for its PO to reach the ERP
    recheck_every: float = 60.0  # how often a waiting PO is looked up again
    over_tolerance: float = 0.0  # fraction shipped above the ordered quantity still accepted
    under_tolerance: float = 0.0  # fraction below it still counted as complete
    units: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # 1 CS = 12 EA


@dataclass(slots=True)
class _Analysis:
    """One PO of an ASN compared with the ERP."""

    shipped: dict[str, float]  # unit code → quantity, in the PO's unit where it converts
    ordered: float | None
    unit: str | None
    promised: datetime | None
    late: int | None
    partial: bool
    problems: list[dict[str, Any]]


class Interpreter:
    """Turns documents into events for one source, keeping its stories in ``memory``."""

    def __init__(self, source: str, *, memory: Memory, codes: CodeTables,
                 lookup: ErpLookup | None = None, carriers: dict[str, str] | None = None,
                 attrs: dict[str, str] | None = None,
                 options: StoryOptions | None = None) -> None:
        self.source = source
        self.memory = memory
        self.codes = codes
        self.lookup = lookup
        self.carriers = carriers or {}
        self.attrs = attrs or {}
        self.options = options or StoryOptions()
        # what prefetch worked out of each status report (id → the report, its names): the
        # interpretation that follows needs the same, ~2 us a DCSA event to work out again
        self._named: dict[int, tuple[StatusReport, tuple[str, list[str], str | None]]] = {}

    def events(self, doc: Document) -> list[Event]:
        """What a document means, as events the adapter emits past the detectors.

        All or nothing: if anything fails (the ERP is down), the memory goes back to what it
        was at the last checkpoint, so the file's retry decides as this attempt would have."""
        try:
            out = self._recheck() if self.memory.size("pending") else []
            if isinstance(doc, Asn):
                out.extend(self._asn(doc))
            elif isinstance(doc, StatusReport):
                out.extend(self._status(doc))
            else:
                out.extend(self._retraction(doc))
            return out
        except BaseException:
            self.memory.rollback()
            raise

    def prefetch(self, docs: Iterable[Document]) -> None:
        """Read what the memory knows of these documents' shipments in one go (one store
        query per file rather than one per name)."""
        threads: list[str] = []
        names: list[str] = []
        self._named = named = {}
        for doc in docs:
            if isinstance(doc, Asn):
                own, ident, refs = self._asn_names(doc)
                threads.append(own)
                names += [f"asn:{ident}", *(f"ref:{r}" for r in refs)]
            elif isinstance(doc, StatusReport):
                found = self._status_names(doc)
                named[id(doc)] = (doc, found)
                own, aliases, po = found
                threads.append(own)
                names += aliases + ([f"po:{alpha_out(po)}"] if po else [])
            else:
                names.append(f"ev:{doc.retracted_id}")
        self.memory.prefetch(threads, names)

    def recheck(self) -> list[Event]:
        """Look the waiting POs up again (a transport may call this on an idle poll)."""
        try:
            return self._recheck()
        except BaseException:
            self.memory.rollback()
            raise

    # -- helpers ---------------------------------------------------------------------------

    def _event(self, subject: str, position: str, type: str, severity: str,
               fields: dict[str, Any], when: datetime | None, *, thread: str,
               relation: Relation = "new", refers_to: str | None = None) -> Event:
        return Event.create(type=type, source=self.source, subject=subject, position=position,
                            occurred_at=when or utcnow(), severity=Severity.parse(severity),
                            fields=_clean(fields), attrs=dict(self.attrs), thread=thread,
                            relation=relation, refers_to=refers_to)

    def _carrier(self, code: str | None) -> str | None:
        return self.carriers.get(code or "", code) if code else None

    def _purpose(self, doc: Asn | StatusReport) -> Purpose:
        scheme = ("x12_353" if doc.key.startswith("x12:") else
                  "edifact_1225" if doc.key.startswith("edifact:") else "")
        if not scheme or not doc.purpose:
            return Purpose("", "original", "original")
        purpose = self.codes.purpose(scheme, doc.purpose)
        if not purpose.known:
            log.warning("supply_unknown_purpose", source=self.source, document=doc.key,
                        code=purpose.code, read_as="original")
        return purpose

    @staticmethod
    def _story(kind: str) -> dict[str, Any]:
        # o: "<ASN>|<PO>" → that ASN's post for the PO {id, doc, s(napshot)}; e: estimate
        # key → [time, post id]; m: milestones told and r: recent reports (short hashes);
        # d: document number → post ids; c: cancelled ASN numbers; x: open | cancelled;
        # (when set) dv: delivered at; sh: shipment ids of the carrier reports told in it
        return {"o": {}, "e": {}, "m": [], "d": {}, "r": [], "c": [], "v": {}, "x": None,
                "last": None}

    def _load(self, thread: str) -> dict[str, Any] | None:
        """The thread's story with every key present (the memory keeps only non-empty ones,
        and not what the newest ASN part says already: see :meth:`_save`)."""
        stored = self.memory.story(thread)
        if stored is None:
            return None
        story = {**self._story(""), **stored}
        newest = next(reversed(story["o"].values()), None) if story["o"] else None
        if newest is not None:
            story["e"] = dict(story["e"])
            if story["last"] is None:
                story["last"] = newest["id"]
            if "delivered|" not in story["e"] and newest.get("s", {}).get("eta"):
                story["e"]["delivered|"] = [newest["s"]["eta"], newest["id"]]
            elif story["e"].get("delivered|") == 0:
                del story["e"]["delivered|"]
        return story

    def _save(self, thread: str, story: dict[str, Any], aliases: list[str] | None = None,
              carrier_ids: list[str] | None = None) -> None:
        newest = next(reversed(story["o"].values()), None) if story["o"] else None
        if newest is not None:  # leave out what the newest ASN part says (most ASN stories)
            story = {**story, "e": dict(story["e"])}
            if story["last"] == newest["id"]:
                story["last"] = None
            eta = newest.get("s", {}).get("eta")
            if eta and story["e"].get("delivered|") == [eta, newest["id"]]:
                del story["e"]["delivered|"]
            elif eta and "delivered|" not in story["e"]:
                story["e"]["delivered|"] = 0  # its ETA is resolved or withdrawn
        self.memory.put_story(thread, story, aliases or (), carrier_ids or ())

    def _joined(self, names: list[str], own: str, kind: str
                ) -> tuple[str, dict[str, Any] | None]:
        """A shipment this source does not know, in a story a ``join``-ed source tells: this
        source's part of it starts in that thread, as an update of its newest post."""
        joined = self.memory.joined_thread(names)
        if joined is None:
            return own, None
        thread, last = joined
        return thread, {**self._story(kind), "last": last}

    def _thread(self, aliases: list[str]) -> str | None:
        for alias in aliases:
            thread = self.memory.thread_of(alias)
            if thread is not None:
                return thread
        return None

    # -- ASN -------------------------------------------------------------------------------

    def _asn(self, doc: Asn) -> list[Event]:
        purpose = self._purpose(doc)
        # the ERP first: it may fail, and nothing may have changed in the memory by then
        erp = {o.po: self.lookup.order(o.po) for o in doc.orders if o.po} if self.lookup else {}
        own, ident, refs = self._asn_names(doc)
        thread, story = own, self._load(own)
        if story is None:  # an ASN joins the story its bill of lading or tracking number names
            names = [f"asn:{ident}"] + [f"ref:{r}" for r in refs]
            thread = self._thread(names) or own
            story = self._load(thread) if thread != own else None
            if story is None and thread == own:  # or a story a joined source tells
                thread, story = self._joined(names, own, "asn")
        if purpose.effect == "cancel":
            return self._cancel_asn(doc, thread, story, purpose, erp)
        told = story is not None and any(k.startswith(f"{doc.asn_id}|") for k in story["o"])
        if purpose.effect == "ignore" and told:
            return []  # a duplicate or confirmation of a story already told
        if story is None:
            story = self._story("asn")
        if doc.asn_id in story.get("c", []):  # reissued after a cancellation: told afresh
            story["c"] = [a for a in story["c"] if a != doc.asn_id]
            story["x"] = None
        out: list[Event] = []
        for order in doc.orders:
            out.extend(self._asn_order(doc, order, erp.get(order.po), story, purpose, thread))
        aliases = [f"ref:{r}" for r in [*refs, doc.asn_id]] + [
            f"po:{alpha_out(o.po)}" for o in doc.orders if o.po]  # 0004500012 = 4500012
        if thread != own:  # its own key names another story: the ASN number must lead there
            aliases.append(f"asn:{ident}")
        self._save(thread, story, aliases)
        return out

    def _asn_names(self, doc: Asn) -> tuple[str, str, list[str]]:
        """An ASN's own thread, its number scoped by the sender, its references."""
        sender = (doc.sender or "").strip()
        ident = f"{sender}/{doc.asn_id}" if sender else doc.asn_id
        refs = [r for r in (doc.bill_of_lading, doc.tracking) if r]
        own = f"{self.source}/ASN {doc.asn_id}" + (f" from {sender}" if sender else "")
        return own, ident, refs

    def _asn_order(self, doc: Asn, order: AsnOrder, erp: PurchaseOrder | None,
                   story: dict[str, Any], purpose: Purpose, thread: str) -> list[Event]:
        po = order.po
        subject = f"PO {po}" if po else f"ASN {doc.asn_id}"
        base = f"{doc.key}:po:{po}"
        slot = f"{doc.asn_id}|{po}"  # one ASN's part for one PO
        previous = story["o"].get(slot)
        doc_hash = _h(doc.key)
        if previous is not None and previous["doc"] == doc_hash and not previous.get("pending"):
            return []  # this very document again (a replay after its checkpoint)
        note = self._note(purpose)
        common = {"asn": doc.asn_id, "po": po or None, "purpose": _purpose_words(purpose),
                  **note}
        when = doc.ship_date
        if self.lookup is not None and po and erp is None:
            return self._unmatched(doc, order, story, thread, subject, base, common, previous)
        analysis = self._analyse(order, erp)
        analysis.late = _days(doc.eta, analysis.promised)
        if doc.eta is None:  # only the ship date: it can prove lateness, never earliness
            shipped_late = _days(doc.ship_date, analysis.promised)
            analysis.late = shipped_late if shipped_late is not None and shipped_late > 0 \
                else None
        supplier = (erp.supplier if erp else None) or doc.supplier
        eta, ship = _iso(doc.eta), _iso(doc.ship_date)
        snapshot = _snapshot(eta, ship, order, analysis)
        relation: Relation = "new"
        refers = story["last"]
        changes: list[dict[str, Any]] = []
        if previous is not None and not previous.get("pending"):
            changes = self._asn_changes(previous["s"], snapshot)
            if not changes:
                # the same shipment re-sent: nothing new to say, but it is the one in force
                story["o"][slot] = {**previous, "doc": doc_hash}
                return []
            relation, refers = "update", previous["id"]
        elif refers is not None:
            relation = "update"
        out: list[Event] = []
        late = analysis.late
        eta_later = any(c["what"] == "eta" and c["moved"] > 0 for c in changes)
        if (late is not None and late > 0 and (not changes or eta_later)) or eta_later:
            type_, severity = "shipment.delayed", "warning"
        else:
            type_ = "shipment.dispatched"
            severity = "notice" if analysis.partial or changes else "info"
        fields = {
            **common, "supplier": supplier,
            **_amounts(analysis, erp is not None),
            "ship_date": ship, "eta": eta,
            "promised": _iso(analysis.promised), "late_days": late, "partial": analysis.partial,
            "carrier": self._carrier(doc.carrier),
            "tracking": doc.tracking or doc.bill_of_lading, "lines": [
                {"line": ln.line, "qty": ln.qty, "uom": ln.uom, "part": ln.vendor_part,
                 "description": ln.description} for ln in order.lines],
            "changes": changes or None,
            "matched_late": bool(previous and previous.get("pending")) or None}
        head = self._event(subject, base, type_, severity, fields, when, thread=thread,
                           relation=relation, refers_to=refers)
        out.append(head)
        if not po and previous is None:
            out.append(self._event(subject, f"{base}:nopo", "asn.mismatch", "warning",
                                   {**common, "problem": "no_po"}, when, thread=thread,
                                   relation="update", refers_to=head.id))
        told = set(previous["s"].get("pr", [])) if previous and "s" in previous else set()
        for index, problem in enumerate(analysis.problems):
            if _problem_key(problem) in told:
                continue
            out.append(self._event(subject, f"{base}:line:{index}", "asn.mismatch", "warning",
                                   {**common, **problem}, when, thread=thread,
                                   relation="update", refers_to=head.id))
        story["o"][slot] = {"id": head.id, "doc": doc_hash, "s": snapshot}
        if eta is not None:
            story["e"]["delivered|"] = [eta, head.id]
        if analysis.promised is not None:
            story["promised"] = analysis.promised.isoformat()
        story["last"] = out[-1].id
        return out

    def _note(self, purpose: Purpose) -> dict[str, Any]:
        if purpose.known:
            return {}
        text = f"Unknown purpose code {purpose.code!r}: read as an original document."
        return {"note": text, "body": text, "purpose_code": purpose.code}

    def _unmatched(self, doc: Asn, order: AsnOrder, story: dict[str, Any], thread: str,
                   subject: str, base: str, common: dict[str, Any],
                   previous: dict[str, Any] | None) -> list[Event]:
        """The PO is not in the ERP (yet): one post, then the ASN waits for it."""
        now = self.memory.clock()
        po = order.po
        slot = f"{doc.asn_id}|{po}"
        key = f"{thread}|{slot}"
        item = {"po": po, "thread": thread, "doc": doc.key, "asn": doc.asn_id,
                "subject": subject, "supplier": doc.supplier, "carrier": doc.carrier,
                "tracking": doc.tracking, "bol": doc.bill_of_lading, "sender": doc.sender,
                "ship": _iso(doc.ship_date), "eta": _iso(doc.eta),
                "lines": [[ln.line, ln.qty, ln.uom, ln.vendor_part, ln.description]
                          for ln in order.lines],
                "since": now, "until": now + self.options.pending_for,
                "next": now + self.options.recheck_every}
        if previous is not None and previous.get("pending"):
            # a newer version of an ASN still waiting: it waits in its place, nothing to post
            item.update(since=previous.get("since", now), ref=previous["id"])
            self.memory.put_pending(key, item)
            story["o"][slot] = {**previous, "doc": _h(doc.key)}
            return []
        relation: Relation = "update" if story["last"] else "new"
        event = self._event(subject, f"{base}:unknown", "asn.mismatch", "warning", {
            **common, "problem": "unknown_po", "supplier": doc.supplier,
            "waiting_days": round(self.options.pending_for / 86_400),
            "shipped_units": _units_text(order.lines)}, doc.ship_date, thread=thread,
            relation=relation, refers_to=story["last"])
        item["ref"] = event.id
        self.memory.put_pending(key, item)
        story["o"][slot] = {"id": event.id, "doc": _h(doc.key), "pending": True}
        story["last"] = event.id
        return [event]

    def _recheck(self) -> list[Event]:
        out: list[Event] = []
        now = self.memory.clock()
        for key, item in self.memory.pending_items():
            if item["until"] <= now:
                out.extend(self._expired(key, item))
                continue
            if item["next"] > now or self.lookup is None:
                continue
            erp = self.lookup.order(item["po"])
            if erp is None:
                self.memory.put_pending(key, {**item, "next": now + self.options.recheck_every})
                continue
            self.memory.drop_pending(key)
            story = self._load(item["thread"])
            entry = story["o"].get(f"{item['asn']}|{item['po']}") if story else None
            if story is None or entry is None or not entry.get("pending"):
                continue  # cancelled or replaced meanwhile
            doc = Asn(key=item["doc"], asn_id=item["asn"], orders=(), supplier=item["supplier"],
                      carrier=item["carrier"], tracking=item["tracking"],
                      bill_of_lading=item["bol"], sender=item["sender"],
                      ship_date=_parse(item["ship"]), eta=_parse(item["eta"]))
            order = AsnOrder(item["po"], tuple(
                AsnLine(line=ln[0], qty=float(ln[1]), uom=ln[2], vendor_part=ln[3],
                        description=ln[4]) for ln in item["lines"]))
            story["last"] = entry["id"]  # the update answers the "unmatched" post
            out.extend(self._asn_order(doc, order, erp, story, Purpose("", "original", "original"),
                                       item["thread"]))
            self._save(item["thread"], story)
        return out

    def _expired(self, key: str, item: dict[str, Any]) -> list[Event]:
        """The PO never reached the ERP: say so in the ASN's thread (the "unmatched" post
        promised to wait only so long), and stop waiting. A re-sent ASN is told afresh."""
        self.memory.drop_pending(key)
        log.warning("supply_pending_expired", source=self.source, po=item["po"],
                    asn=item["asn"], thread=item["thread"])
        story = self._load(item["thread"])
        slot = f"{item['asn']}|{item['po']}"
        entry = story["o"].get(slot) if story else None
        if story is None or entry is None or not entry.get("pending"):
            return []  # cancelled or matched meanwhile
        until = datetime.fromtimestamp(float(item["until"]), UTC)
        event = self._event(item["subject"], f"{item['doc']}:po:{item['po']}:expired",
                            "asn.expired", "warning", {
                                "asn": item["asn"], "po": item["po"],
                                "supplier": item.get("supplier"),
                                "waited_s": float(item["until"]) - float(item["since"]),
                                "since": _iso(datetime.fromtimestamp(float(item["since"]), UTC)),
                                "problem": "expired_unmatched"},
                            until, thread=item["thread"], relation="update",
                            refers_to=entry["id"])
        del story["o"][slot]
        story["last"] = event.id
        self._save(item["thread"], story)
        return [event]

    def _analyse(self, order: AsnOrder, erp: PurchaseOrder | None) -> _Analysis:
        shipped: dict[str, float] = {}  # display code → quantity
        codes: dict[str, str] = {}  # unit id → the first code it was shipped under
        ordered: float | None = 0.0
        promised: datetime | None = None
        problems: list[dict[str, Any]] = []
        po_units: set[str] = set()
        for line in order.lines:
            match = erp.find(line.line, line.vendor_part) if erp else None
            qty: float | None = line.qty
            unit = line.uom
            if match is not None and match.uom and match.uom != unit:
                converted = self._convert(line.qty, line.uom, match.uom, match)
                if converted is not None:
                    qty, unit = converted, match.uom
            code = codes.setdefault(unit_id(unit) or "", unit or "")
            shipped[code] = shipped.get(code, 0.0) + (qty if qty is not None else line.qty)
            if match is not None and match.promised is not None:
                promised = max(promised or match.promised, match.promised)
            if erp is None:
                continue
            problem = {"line": line.line, "vendor_part": line.vendor_part,
                       "shipped": line.qty, "unit": line.uom}
            if match is None:
                problems.append({**problem, "problem": "unknown_line"})
                ordered = None
                continue
            if match.deleted or match.blocked:
                problems.append({**problem, "line": match.line,
                                 "problem": "deleted_line" if match.deleted else "blocked_line"})
                ordered = None
                continue
            if unit != match.uom and match.uom and line.uom:
                problems.append({**problem, "line": match.line, "problem": "unit_mismatch",
                                 "ordered_unit": match.uom, "ordered": match.ordered})
                ordered = None
                continue
            if match.ordered is None:
                ordered = None
                continue
            po_units.add(unit_id(match.uom) or "")
            if qty is not None and qty > match.ordered * (1 + self.options.over_tolerance):
                problems.append({**problem, "line": match.line, "problem": "over_quantity",
                                 "ordered": match.ordered, "shipped": qty,
                                 "unit": match.uom or line.uom})
            if ordered is not None:
                ordered += match.ordered
        if erp is None or len(po_units) > 1 or len(shipped) > 1:
            ordered = None  # nothing to compare with, or not in one unit
        unit = next(iter(shipped)) if len(shipped) == 1 else None
        total = sum(shipped.values())
        partial = ordered is not None and total < ordered * (1 - self.options.under_tolerance)
        return _Analysis(shipped=shipped, ordered=ordered, unit=unit or None,
                         promised=promised, late=None, partial=partial, problems=problems)

    def _convert(self, qty: float, unit: str | None, to: str, line: PoLine) -> float | None:
        """``qty`` of ``unit`` in the PO line's unit ``to``; None when nothing converts it."""
        if not unit:
            return qty  # the ASN names no unit: it ships in the ordered one
        source, target = unit_id(unit), unit_id(to)
        if source == target:
            return qty
        for a, b in ((unit.upper(), to.upper()), (source, target)):
            factor = _factor(self.options.units, a or "", b or "")
            if factor is not None:
                return qty * factor
        if line.alt_uom and line.alt_factor and unit_id(line.alt_uom) == source:
            return qty * line.alt_factor
        fixed = fixed_factor(source or "", target or "")
        return qty * fixed if fixed is not None else None

    def _asn_changes(self, before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
        """What an ASN for the same shipment and PO changed, worth a post."""
        changes: list[dict[str, Any]] = []
        old_eta, new_eta = _parse(before.get("eta")), _parse(after.get("eta"))
        if old_eta and new_eta and self._moved(old_eta, new_eta):
            changes.append({"what": "eta", "before": before["eta"], "after": after["eta"],
                            "moved": (new_eta - old_eta).total_seconds()})
        elif (old_eta is None) != (new_eta is None):
            changes.append({"what": "eta", "before": before.get("eta"),
                            "after": after.get("eta"), "moved": 0})
        if before.get("shipped") != after.get("shipped"):
            changes.append({"what": "shipped", "before": before.get("shipped"),
                            "after": after.get("shipped")})
        elif before.get("lh") != after.get("lh"):
            changes.append({"what": "lines"})
        old_ship, new_ship = _parse(before.get("ship")), _parse(after.get("ship"))
        if new_ship is not None and (old_ship is None or old_ship.date() != new_ship.date()):
            # by calendar day: a replace that drops the time of the same day ("20 Nov 14:30"
            # → "20 Nov") read "sent 20 Nov (was 20 Nov)"
            changes.append({"what": "ship_date", "before": before.get("ship"),
                            "after": after.get("ship")})
        return changes

    def _moved(self, before: datetime, after: datetime) -> bool:
        """An estimate moved enough to be news: another calendar day, or the threshold."""
        if self.options.eta_new_day and before.date() != after.date():
            return True
        return abs((after - before).total_seconds()) >= self.options.eta_threshold

    def _cancel_asn(self, doc: Asn, thread: str, story: dict[str, Any] | None,
                    purpose: Purpose, erp: dict[str, PurchaseOrder | None]) -> list[Event]:
        """The supplier cancelled the ASN: retract each PO's post (one post per PO)."""
        out: list[Event] = []
        if story is not None and doc.asn_id in story.get("c", []):
            return []  # cancelled already
        prefix = f"{doc.asn_id}|"
        pos = [o.po for o in doc.orders] or [
            k[len(prefix):] for k in (story or {}).get("o", {}) if k.startswith(prefix)] or [""]
        for po in pos:
            subject = f"PO {po}" if po else f"ASN {doc.asn_id}"
            told = story["o"].pop(prefix + po, None) if story else None
            fields = {"asn": doc.asn_id, "po": po or None,
                      "supplier": getattr(erp.get(po), "supplier", None) or doc.supplier,
                      "purpose": purpose.words, "known": told is not None,
                      "was": _was(told)}
            out.append(self._event(subject, f"{doc.key}:po:{po}:cancel", "asn.cancelled",
                                   "notice", fields, doc.ship_date, thread=thread,
                                   relation="retraction",
                                   refers_to=told["id"] if told else None))
            self.memory.drop_pending(f"{thread}|{prefix}{po}")
        if story is None:
            story = self._story("asn")
        story["c"] = [*story.get("c", []), doc.asn_id][-8:]
        if not story["o"]:
            story["x"] = "cancelled"
            story["e"] = {k: v for k, v in story["e"].items() if not k.startswith("delivered|")}
        story["last"] = out[-1].id
        self._save(thread, story)
        return out

    # -- carrier status --------------------------------------------------------------------

    def _status(self, doc: StatusReport) -> list[Event]:
        purpose = self._purpose(doc)
        named = self._named.pop(id(doc), None)
        own, aliases, po = named[1] if named is not None and named[0] is doc else (
            self._status_names(doc))
        promised = self._promised(po)  # the ERP first, before the memory changes
        thread, story = own, self._load(own)
        via_po = False
        if story is None:
            names = aliases + ([f"po:{alpha_out(po)}"] if po else [])
            found = self._thread(aliases)
            if found is None and po:  # only the PO names a story: its latest ASN's
                found = self._thread(names[len(aliases):])
                via_po = found is not None
            thread = found or own
            story = self._load(thread) if thread != own else None
            if via_po and story is not None and not _same_shipment(aliases, story):
                thread, story, via_po = own, None, False  # another shipment of that PO
            if story is None and thread == own:  # or a story a joined source tells
                thread, story = self._joined(names, own, "shipment")
        if purpose.effect == "cancel":
            return self._cancel_report(doc, thread, story, purpose)
        if purpose.effect == "ignore" and story is not None and story["last"]:
            return []
        if story is None:
            story = self._story("shipment")
        if _h(doc.key) in story["r"]:
            return []  # this very report again (a replay, or a DCSA event id sent twice)
        story["r"] = [*story["r"], _h(doc.key)][-16:]
        if promised is None and story.get("promised"):
            promised = _parse(story["promised"])
        subject = f"shipment {doc.shipment}"
        carrier = self._carrier(doc.carrier)
        classifier = doc.references.get("classifier")
        note = self._note(purpose)
        trailer = _trailer(doc)
        out: list[Event] = []
        carrier_ids: list[str] = []
        ordered = sorted(doc.statuses, key=lambda s: (s.when is None, s.when or 0, s.index))
        for status in ordered:
            position = f"{doc.key}:{status.index}"
            meaning = self.codes.status(status.scheme, status.code, status.text,
                                        private=status.private)
            reason = self.codes.reason(_REASON_SCHEME[status.scheme], status.reason) \
                if status.scheme in _REASON_SCHEME else None
            fields: dict[str, Any] = {
                "carrier": carrier, "shipment": doc.shipment, "po": po, "code": status.code,
                "status": meaning.text, "milestone": meaning.milestone,
                "detail": meaning.detail, "when": _iso(status.when),
                "location": status.location,
                "container": doc.equipment if doc.equipment != doc.shipment and not
                trailer else None,
                "trailer": doc.equipment if trailer else None,
                "reason": reason.text if reason and reason.kind != "normal" else (
                    None if reason else status.reason), **note}
            estimate = (status.estimated or meaning.kind == "estimate"
                        or classifier in ("EST", "PLN"))
            if self._after_delivery(status, meaning, estimate, story):
                continue
            if estimate:
                event = self._estimate(status, meaning, story, fields, promised, subject,
                                       position, thread)
                key = ""
                if event is not None and out and _folds_into(event, out[-1]):
                    # "out for delivery" and "expected 24 Nov" from one report: one post
                    out[-1] = _with_eta(out[-1], event)
                    story["e"][_estimate_key(status, meaning)][1] = out[-1].id
                    story["last"] = out[-1].id
                    continue
            else:
                key = _h(f"{meaning.milestone if meaning.milestone != 'other' else meaning.text}"
                         f"|{status.location or ''}|{_instant(status.when)}")
                event = None if key in story["m"] else self._milestone(
                    status, meaning, reason, story, fields, subject, position, thread)
            if event is None:
                continue
            out.append(event)
            story["last"] = event.id
            if meaning.kind == "delivered" and status.when is not None:
                story["dv"] = status.when.isoformat()
            if key:
                story["m"] = [*story["m"], key][-_MILESTONES_KEPT:]
            if status.event_id:  # a DCSA retraction names it by the carrier's id
                story["v"][status.event_id] = [subject, event.id, key]
                carrier_ids.append(status.event_id)
        if out and doc.shipment not in story.get("sh", []):  # see _same_shipment
            story["sh"] = [*story.get("sh", []), doc.shipment][-8:]
        if doc.doc_id and out:
            story["d"][doc.doc_id] = [e.id for e in out][-8:]
            story["d"] = dict(list(story["d"].items())[-8:])
        if po and "promised" not in story and promised is not None:
            story["promised"] = promised.isoformat()
        if thread == own:  # the report's own key finds this story: its shipment id needs no alias
            aliases = aliases[1:] if aliases and aliases[0] == f"ref:{doc.shipment}" else aliases
        self._save(thread, story, aliases, carrier_ids)
        return out

    @staticmethod
    def _after_delivery(status: Status, meaning: Meaning, estimate: bool,
                        story: dict[str, Any]) -> bool:
        """History a carrier reports after the delivery it already reported: a delivery
        estimate, or a milestone from before the delivery ("en route to the delivery
        location" at 07:00 sent after "delivered" at 13:42). Posting it made the delivered
        shipment read as on its way again. Exceptions still post (a refusal or damage found
        at the dock is news whatever its time)."""
        delivered = _parse(story.get("dv"))
        if delivered is None or meaning.kind in ("delivered", "exception"):
            return False
        if estimate:
            return _estimate_key(status, meaning) == "delivered|"
        return status.when is not None and status.when < delivered

    def _status_names(self, doc: StatusReport) -> tuple[str, list[str], str | None]:
        """A report's own thread, the aliases of its references, its first PO."""
        po = doc.po_refs[0] if doc.po_refs else None
        references = doc.references
        kinds = [q for q in references if q in _SHIPMENT_RANK]  # most reports: one or two
        if len(kinds) > 1:
            kinds.sort(key=_SHIPMENT_RANK.__getitem__)
        # a 214's MS2 is a truck trailer: it carries other shipments (LTL) before and after
        # this one, so it names none of them (the trial's second PRO in the same trailer
        # joined the first one's thread, and after its delivery posted nothing)
        equipment = None if _trailer(doc) else doc.equipment
        refs = [r for r in (doc.shipment, equipment, *(references[q] for q in kinds))
                if r and r != "?"]
        return f"{self.source}/shipment {doc.shipment}", [
            f"ref:{r}" for r in dict.fromkeys(refs)], po

    def _milestone(self, status: Status, meaning: Meaning, reason: Meaning | None,
                   story: dict[str, Any], fields: dict[str, Any], subject: str, position: str,
                   thread: str) -> Event:
        type_, severity = "shipment.status_changed", "info"
        if meaning.kind == "delivered":
            type_, severity = "shipment.delivered", "notice"
        elif meaning.kind == "exception":
            type_, severity = "shipment.exception", "warning"
        elif meaning.kind == "delayed" or (reason is not None and reason.kind == "problem"):
            type_, severity = "shipment.delayed", "warning"
        relation: Relation = "update" if story["last"] else "new"
        refers = story["last"]
        estimate_key = self._resolves(meaning.milestone, status.location, story)
        if estimate_key is not None:
            expected, estimate_id = story["e"].pop(estimate_key)[:2]
            relation, refers = "resolution", estimate_id
            fields["expected"] = expected
            if status.when is not None:
                fields["late_days"] = _days(status.when, _parse(expected))
        return self._event(subject, position, type_, severity, fields, status.when,
                           thread=thread, relation=relation, refers_to=refers)

    @staticmethod
    def _resolves(milestone: str, location: str | None, story: dict[str, Any]) -> str | None:
        """The estimate an actual milestone turns into a fact, if one is open."""
        estimates: dict[str, Any] = story["e"]
        for key in (f"{milestone}|{location or ''}", f"{milestone}|"):
            if key in estimates:
                return key
        if milestone == "delivered":
            return next((k for k in estimates if k.startswith("delivered|")), None)
        return None

    def _estimate(self, status: Status, meaning: Meaning, story: dict[str, Any],
                  fields: dict[str, Any], promised: datetime | None, subject: str,
                  position: str, thread: str) -> Event | None:
        if status.when is None:
            return None  # an estimate without a time says nothing
        key = _estimate_key(status, meaning)
        previous = story["e"].get(key)
        before = _parse(previous[0]) if previous else None
        if before is not None and (before == status.when or not self._moved(before,
                                                                            status.when)):
            return None  # the same estimate, or one that moved too little to be news
        # only an arrival or delivery is promised: a departure 2 h late is not "7 days
        # earlier than promised" (the PO's date is when the goods are due, not when they leave)
        late = _days(status.when, promised) if key.split("|")[0] in _PROMISED_MILESTONES \
            else None
        fields.update(estimated=True, eta=status.when.isoformat(),
                      previous_eta=previous[0] if previous else None,
                      moved=(status.when - before).total_seconds() if before else None,
                      promised=_iso(promised), late_days=late,
                      target=key.split("|")[0], status=meaning.text)
        if meaning.kind != "estimate" and meaning.milestone != "other":
            fields["planned"] = True  # a carrier's planned milestone (DCSA EST LOAD at a port)
        # later than the last estimate; the first one: later than promised
        later = status.when > before if before is not None else late is not None and late > 0
        type_, severity = ("shipment.delayed", "warning") if later else (
            "shipment.status_changed", "info")
        relation: Relation = "update" if story["last"] else "new"
        event = self._event(subject, position, type_, severity, fields, status.when,
                            thread=thread, relation=relation,
                            refers_to=previous[1] if previous else story["last"])
        entry = [status.when.isoformat(), event.id]
        if previous and status.event_id:  # a carrier may retract it: keep the one it replaced
            entry += previous[:2]
        story["e"][key] = entry
        return event

    def _promised(self, po: str | None) -> datetime | None:
        if po is None or self.lookup is None:
            return None
        erp = self.lookup.order(po)
        if erp is None:
            return None
        dates = [line.promised for line in erp.lines.values() if line.promised]
        return max(dates) if dates else None

    def _cancel_report(self, doc: StatusReport, thread: str, story: dict[str, Any] | None,
                       purpose: Purpose) -> list[Event]:
        """A carrier cancelled a status report: withdraw what it posted."""
        posted = (story or {}).get("d", {}).get(doc.doc_id or "", [])
        subject = f"shipment {doc.shipment}"
        event = self._event(subject, f"{doc.key}:cancel", "shipment.retracted", "notice", {
            "carrier": self._carrier(doc.carrier), "document": doc.doc_id,
            "purpose": purpose.words, "known": bool(posted)}, None, thread=thread,
            relation="retraction", refers_to=posted[-1] if posted else None)
        if story is not None and posted:
            story["d"].pop(doc.doc_id or "", None)
            story["last"] = event.id
            self._save(thread, story)
        elif story is not None and story["last"] == event.id:
            return []
        return [event]

    # -- retraction ------------------------------------------------------------------------

    def _retraction(self, doc: Retraction) -> list[Event]:
        known = self.memory.carrier_event(doc.retracted_id)
        if known is not None and known[3] == _RETRACTED:
            return []  # withdrawn already
        if known is None:
            subject, ref, thread, key = f"carrier event {doc.retracted_id[:8]}", None, "", ""
        else:
            subject, ref, thread, key = known[0], known[1], known[2], known[3]
        story = self._load(thread or subject) or self._story("")
        fields: dict[str, Any] = {"carrier": self._carrier(doc.carrier),
                                  "retracted_id": doc.retracted_id, "known": known is not None}
        if known is not None:
            story["m"] = [k for k in story["m"] if k != key]  # a re-report is news again
            estimates: dict[str, Any] = {}
            for target, entry in story["e"].items():
                if entry[1] != ref:
                    estimates[target] = entry
                    continue
                # a withdrawn estimate: the one it replaced is in force again, so the actual
                # milestone resolves that one (it used to resolve nothing)
                fields.update(withdrawn_eta=entry[0], target=target.split("|")[0],
                              location=target.split("|", 1)[1] or None,
                              eta=entry[2] if len(entry) >= 4 else None)
                if len(entry) >= 4:
                    estimates[target] = entry[2:4]
            story["e"] = estimates
        event = self._event(subject, doc.key, "shipment.retracted", "notice", _clean(fields),
                            None, thread=thread or subject, relation="retraction",
                            refers_to=ref)
        story["last"] = event.id
        story["v"][doc.retracted_id] = [subject, event.id, _RETRACTED]
        self._save(thread or subject, story, carrier_ids=[doc.retracted_id])
        return [event]


#: references that name one shipment: bill of lading, booking, carrier PRO, container,
#: DCSA booking / transport document, the shipper's shipment id (214 B10-02)
_SHIPMENT_REFS = ("BM", "BN", "CN", "EQ", "BKG", "TRD", "SI")
_SHIPMENT_RANK = {q: n for n, q in enumerate(_SHIPMENT_REFS)}  # their order: the aliases'


def _trailer(doc: StatusReport) -> bool:
    """A 214's equipment (MS2) is a truck's trailer or van unless MS2-03 says container
    (``CN``): "closed van XXXX902577" is no container, and it carries other shipments too."""
    return doc.equipment is not None and any(s.scheme == "at7" for s in doc.statuses) and \
        doc.references.get("equipment_type") != "CN"


def _same_shipment(aliases: list[str], story: dict[str, Any]) -> bool:
    """Whether a carrier report that names only a PO may continue the story of that PO's
    latest ASN: not when that ASN is cancelled, nor when carrier reports already tell its
    story under other shipment ids (none of this report's references among them). The
    first carrier number to report on the ASN claims it; a PO shipped in two lots is two
    stories (the trial's second PRO posted in the first lot's thread, and after that lot's
    delivery not at all; then in the thread of an ASN the supplier had cancelled)."""
    if story.get("x") == "cancelled":
        return False  # a cancelled ASN ships nothing: a report of its PO is another lot
    known = story.get("sh")
    return not known or bool({a[4:] for a in aliases if a.startswith("ref:")}
                             .intersection(known))


#: the estimates a PO's promised date is compared with
_PROMISED_MILESTONES = frozenset(("delivered", "arrived"))


def _folds_into(estimate: Event, actual: Event) -> bool:
    """Whether a report's first estimate of the arrival or delivery is said in the post of
    the actual milestone the same report carried just before it ("out for delivery (24 Nov),
    delivery expected the same day") instead of a second post a moment later. A delay, or
    an estimate that moved, stays a post of its own: that is news by itself."""
    f = estimate.fields
    return (estimate.type == "shipment.status_changed" and not f.get("previous_eta")
            and not f.get("planned") and f.get("target") in _PROMISED_MILESTONES
            and not actual.fields.get("estimated") and actual.type in _FOLDING_TYPES)


#: the actual milestones an estimate may ride on (not a delivery: nothing is expected after it)
_FOLDING_TYPES = frozenset(("shipment.status_changed", "shipment.exception"))


def _with_eta(actual: Event, estimate: Event) -> Event:
    f = estimate.fields
    fields = {**actual.fields, "eta": f["eta"], "eta_target": f["target"],
              "promised": f.get("promised"), "eta_late_days": f.get("late_days")}
    return actual.model_copy(update={"fields": _clean(fields)})


def _estimate_key(status: Status, meaning: Meaning) -> str:
    """What an estimate is about: ``delivered|`` for a delivery date, ``<milestone>|<place>``
    for a carrier's planned milestone (DCSA EST ARRI at Rotterdam)."""
    if meaning.kind == "estimate":
        target = meaning.target or "delivered"
        return f"{target}|" if target == "delivered" else f"{target}|{status.location or ''}"
    if meaning.milestone == "other":  # an ETA without a code of its own (IFTSTA DTM+132, JSON)
        return "delivered|"
    return f"{meaning.milestone}|{status.location or ''}"


def _factor(units: Mapping[str, Mapping[str, float]], a: str, b: str) -> float | None:
    """1 ``a`` = factor ``b`` from a ``units: {CS: {EA: 12}}`` map (either direction)."""
    direct = units.get(a, {}).get(b)
    if direct:
        return float(direct)
    inverse = units.get(b, {}).get(a)
    return 1 / float(inverse) if inverse else None


def _snapshot(eta: str | None, ship: str | None, order: AsnOrder, analysis: _Analysis
              ) -> dict[str, Any]:
    """What a later version of the ASN is compared with."""
    snapshot = {"eta": eta, "ship": ship,
                # in the document's order: the posts list them so ("it said: shipped 100 pcs
                # + 2 cases", not "2 cases + 100 pcs"); compared as dicts, order-free
                "shipped": {u: round(q, 6) for u, q in analysis.shipped.items()},
                "lh": _h(repr([[ln.line, ln.qty, ln.uom] for ln in order.lines])),
                "pr": [_problem_key(p) for p in analysis.problems]}
    return {k: v for k, v in snapshot.items() if v not in (None, [])}


def _problem_key(problem: dict[str, Any]) -> str:
    return _h(f"{problem.get('problem')}:{problem.get('line')}:{problem.get('shipped')}")


def _h(text: str) -> str:
    """A short stable hash: documents, milestones and lines are remembered by it (compared
    within one story only, where a few dozen are kept)."""
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def _amounts(analysis: _Analysis, with_erp: bool) -> dict[str, Any]:
    """``shipped``/``unit`` when the ASN ships in one unit, else ``shipped_units`` (never a sum
    across units)."""
    if len(analysis.shipped) <= 1:
        total = sum(analysis.shipped.values())
        return {"shipped": total, "unit": analysis.unit,
                "ordered": analysis.ordered if with_erp else None}
    return {"shipped_units": [[q, u or None] for u, q in analysis.shipped.items()],
            "ordered": None}


def _units_text(lines: tuple[AsnLine, ...]) -> list[list[Any]]:
    totals: dict[str, float] = {}
    for line in lines:
        key = unit_id(line.uom) or ""
        totals[key] = totals.get(key, 0.0) + line.qty
    codes = {unit_id(ln.uom) or "": ln.uom for ln in lines}
    return [[q, codes[k]] for k, q in totals.items()]


def _was(told: dict[str, Any] | None) -> dict[str, Any] | None:
    if not told or "s" not in told:
        return None
    snap = told["s"]
    return {"shipped": snap.get("shipped"), "eta": snap.get("eta"), "ship": snap.get("ship")}


def _purpose_words(purpose: Purpose) -> str | None:
    return purpose.words if purpose.effect in ("change", "replace") else None


def _instant(when: datetime | None) -> str:
    """A milestone's time as the instant it names: "08:15 ET" re-sent as "13:15 UT" is the
    same departure (its ISO text with the offset made two milestones of it)."""
    # a time given in UTC keeps the key it always had; one given with another offset was
    # keyed with that offset until 2026-12-01 (such a story may tell it once more)
    return when.astimezone(UTC).isoformat() if when is not None else ""


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _parse(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _days(when: datetime | None, promised: datetime | None) -> int | None:
    if when is None or promised is None:
        return None
    return (when.date() - promised.date()).days


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
