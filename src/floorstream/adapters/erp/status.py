"""``mode: status``: SAP status sets (JEST), one post per object whose set changed.

An SAP order's system status is not a column but a *set* of rows in ``JEST`` (``OBJNR``,
``STAT``, ``INACT``): ``REL`` and ``PCNF`` can be active together, and a confirmation turns
``PCNF`` off and ``CNF`` and ``DLV`` on in one go. Each poll reads the active statuses of the
watched objects (``OBJNR`` starting with ``status.objects``, default ``OR``: orders), compares
each object's set with the one committed last, and posts one ``record.status_changed`` per
object that changed, naming what was added and removed with their texts: "1000123: added CNF
(Confirmed), DLV (Delivered); removed PCNF (Partially confirmed)".

Texts come from ``TJ02T`` (system statuses, by ``status.texts``) and ``TJ30T`` (user
statuses ``E…``, of the object's status profile from ``JSTO``) in the source's ``language``
(SAP's one-letter ``SPRAS``; ``en``/``de``… are mapped), else from the English texts shipped
in ``data/sap.json``, else the code is shown as it is.

The subject is the object number without its two-letter type and ALPHA zeros
(``OR000001000123`` → ``1000123``), or the ``subject:`` template over ``row.objnr``,
``row.object``, ``row.number`` (zero-padded) and ``row.type``. Like snapshot mode the sets
travel in the checkpoint (about 30 bytes per object) and are committed with the last post of
a diff; a crash replays the same diff with the same ids (an object's posts are numbered in
the checkpoint, so a set that comes back is a new post).

Several changes of one object between two polls: JEST's ``CHGNR`` counts them. With the
status change documents (``JCDS``) complete for the span, each step is posted in order at
its document's time; without them the one post from the set before to the set after says
how many changes it covers and that their intermediate states were not seen ("may be
missing" when the table keeps no change numbers). A single change carries no note.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    column,
    inspect,
    or_,
    select,
    table,
)
from sqlalchemy.exc import DBAPIError

from floorstream.adapters.erp.alpha import alpha_out, canonical
from floorstream.adapters.erp.auditlogs import sap_time
from floorstream.adapters.erp.config import TableConfig, subject_environment
from floorstream.adapters.erp.idioms import data_file
from floorstream.adapters.erp.publish import EventSpec, RowChange
from floorstream.adapters.erp.sqlcommon import SchemaProblem, client_filter, present_columns
from floorstream.model import utcnow

__all__ = ["StatusWatcher", "sap_language"]


def _order(code: str) -> tuple[bool, str]:
    """System statuses (I…) first, then user statuses (E…), each by number: SAP's order."""
    return (not code.startswith("I"), code)


def sap_language(language: str | None) -> str:
    """A language as SAP's one-character ``SPRAS``: ``E`` as it is, ``de``/``de_DE`` → ``D``;
    default English."""
    if not language:
        return "E"
    if len(language) == 1:
        return language.upper()
    code = language.replace("-", "_").split("_")[0].lower()
    found = data_file("sap").get("languages", {}).get(code)
    return str(found) if found else "E"


def _number(value: Any) -> int | None:
    """A JEST change number (CHGNR ``'003'``) as an int; None when it is not one."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _steps(before: int | None, after: int | None) -> int | None:
    """How many status changes of an object happened between two polls, from the highest
    change number before and after; None when the numbers cannot tell (no CHGNR column, a
    writer that does not keep it, a set committed before numbers were kept)."""
    if before is None or after is None or after <= before:
        return None
    return after - before


def _replay(before: set[str], documents: list[tuple[int, datetime | None,
                                                     list[tuple[str, bool]]]]
            ) -> list[tuple[int, datetime | None, set[str]]]:
    """The set after each status change document, starting from ``before``."""
    current, out = set(before), []
    for nr, when, codes in documents:
        current = set(current)
        for code, active in codes:
            (current.add if active else current.discard)(code)
        out.append((nr, when, current))
    return out


class StatusWatcher:
    def __init__(self, config: TableConfig, saved: Any,
                 columns: Callable[[], list[str] | None]) -> None:
        self.config = config
        self.columns = columns
        self.initialized = isinstance(saved, dict)
        state = saved if isinstance(saved, dict) else {}
        self.sets: dict[str, str] = {str(k): str(v) for k, v in (state.get("s") or {}).items()}
        #: object → the highest JEST change number (CHGNR) seen in its committed set
        self.numbers: dict[str, int] = {str(k): int(v) for k, v in
                                        (state.get("n") or {}).items()
                                        if isinstance(v, int)}
        #: object → how many posts it had: in the position, so a set that comes back
        #: (REL → TECO → REL) is a new post, not the first one's id again
        self.posted: dict[str, int] = {str(k): int(v) for k, v in
                                       (state.get("q") or {}).items() if isinstance(v, int)}
        self.last_query_s = 0.0
        self.language = sap_language(config.site.language)
        self.texts: dict[str, tuple[str, str]] | None = None
        self.user_texts: dict[tuple[str, str], tuple[str, str]] = {}
        self.profiles: dict[str, str] = {}
        env = subject_environment()
        self.subject = env.from_string(config.subject) if config.subject else None
        self.thread = env.from_string(config.thread) if config.thread else None

    @property
    def position(self) -> dict[str, Any]:
        at: dict[str, Any] = {"s": self.sets}
        if self.numbers:
            at["n"] = self.numbers
        if self.posted:
            at["q"] = self.posted
        return at

    def poll(self, engine: Engine) -> Iterator[RowChange]:
        cfg, st = self.config, self.config.status
        present = self.columns() or []
        missing = [c for c in (st.object, st.status, st.inactive) if c not in present]
        if missing:  # a problem post and a paused table, not a retry loop
            raise SchemaProblem(f"table {cfg.table} has no column {', '.join(missing)} "
                                "(status: object/status/inactive name JEST's columns)")
        # CHGNR, where the table has it: how many changes an object went through
        numbered: list[ColumnClause[Any]] = \
            [column(st.change)] if st.change and st.change in present else []
        jest = table(cfg.table, column(st.object), column(st.status), column(st.inactive),
                     *numbered)
        obj, stat, inact = jest.c[st.object], jest.c[st.status], jest.c[st.inactive]
        base = select(obj, stat, inact, *numbered).order_by(obj, stat).limit(cfg.batch)
        if st.objects:
            base = base.where(obj.like(st.objects + "%"))
        held = client_filter(cfg.site.client, present)
        if held is not None:  # one SAP client's objects (MANDT), never training's
            base = base.where(held)
        active: dict[str, set[str]] = {}
        numbers: dict[str, int] = {}
        started = time.perf_counter()
        stmt = base
        with engine.connect() as conn:
            while True:
                rows = conn.execute(stmt).all()
                for objnr, code, flag, *number in rows:
                    name = str(objnr).strip()
                    codes = active.setdefault(name, set())
                    if not (isinstance(flag, str) and flag.strip()):  # 'X': inactive
                        codes.add(str(code).strip())
                    seen = _number(number[0]) if number else None
                    if seen is not None and seen > numbers.get(name, -1):
                        numbers[name] = seen
                if len(rows) < cfg.batch:
                    break
                last_o, last_s = rows[-1][0], rows[-1][1]
                stmt = base.where(or_(obj > last_o, and_(obj == last_o, stat > last_s)))
            self.last_query_s = time.perf_counter() - started
            now = {o: " ".join(sorted(c)) for o, c in active.items()}
            if not self.initialized and cfg.initial == "baseline":
                changed = []  # the sets so far are history: committed by the adapter's mark
            else:
                changed = [o for o in sorted(now) if self.sets.get(o) != now[o]
                           and (o in self.sets or now[o])]
            if changed:
                self._load_texts(conn, changed)
            # objects that went through several changes: their documents, where kept
            spans = {o: (self.numbers[o], numbers[o]) for o in changed
                     if o in self.sets and (_steps(self.numbers.get(o), numbers.get(o)) or 0) > 1}
            history = self._history(conn, spans) if spans else {}
        pending: list[RowChange] = []
        posted = dict(self.posted)
        for objnr in changed:
            before = set(self.sets.get(objnr, "").split()) - {""}
            after = set(now[objnr].split()) - {""}
            steps = _replay(before, history.get(objnr, []))
            if steps and steps[-1][2] == after:  # every step, in order
                for nr, when, step in steps:
                    if step == before:
                        continue  # a document that changed nothing active
                    posted[objnr] = posted.get(objnr, 0) + 1
                    pending.append(self._change(objnr, before, step, known=True, steps=1,
                                                seq=posted[objnr], occurred_at=when,
                                                change_number=nr))
                    before = step
                continue
            posted[objnr] = posted.get(objnr, 0) + 1
            pending.append(self._change(objnr, before, after, known=objnr in self.sets,
                                        steps=_steps(self.numbers.get(objnr),
                                                     numbers.get(objnr)),
                                        seq=posted[objnr]))
        self.sets = now
        self.numbers = numbers
        self.posted = posted
        self.initialized = True
        if pending:
            pending[-1].after = self.position
        yield from pending

    # -- one object ---------------------------------------------------------------------

    def _change(self, objnr: str, before: set[str], after: set[str], *, known: bool,
                steps: int | None, seq: int, occurred_at: datetime | None = None,
                change_number: int | None = None) -> RowChange:
        cfg = self.config
        kind_code, number = objnr[:2], objnr[2:]
        row = {"objnr": objnr, "type": kind_code, "number": number,
               "object": alpha_out(number) or number,
               "statuses": [self._text(objnr, c)[0] for c in sorted(after, key=_order)]}
        subject = self._render(self.subject, row) or str(row["object"])
        added = [self._entry(objnr, c) for c in sorted(after - before, key=_order)]
        removed = [self._entry(objnr, c) for c in sorted(before - after, key=_order)]
        fields = {"objnr": objnr, "object": row["object"], "added": added, "removed": removed,
                  "statuses": row["statuses"],
                  "before": [self._text(objnr, c)[0] for c in sorted(before, key=_order)],
                  "new": not known}
        if known and steps != 1:
            # the sets are compared, not the steps: say so rather than pretend one step
            fields["intermediate_unseen"] = True
            fields["changes"] = steps  # None: the table keeps no change numbers
            fields["polled_every_s"] = cfg.interval or cfg.site.interval
        if change_number is not None:
            fields["change_number"] = change_number  # a step read back from JCDS
        digest = hashlib.blake2b(" ".join(sorted(after)).encode(), digest_size=6).hexdigest()
        attrs = {attr: canonical(row.get(col)) for attr, col in cfg.row_attrs.items()
                 if row.get(col) not in (None, "")}
        spec = EventSpec(
            type="record.status_changed", fields=fields, thread=self._render(self.thread, row),
            relation="update" if known else "new")
        return RowChange(table=cfg.table, key=objnr, kind="row.updated",
                         position=f"{cfg.table}:{objnr}:{seq}:{digest}",
                         data=row,
                         occurred_at=occurred_at or utcnow(), subject=subject, attrs=attrs,
                         event=spec)

    def _render(self, template: Any, row: dict[str, Any]) -> str | None:
        if template is None:
            return None
        try:
            text = template.render(row=row, key=row["objnr"], table=self.config.table).strip()
        except Exception:
            return None
        return text[:255] or None

    def _entry(self, objnr: str, code: str) -> dict[str, str]:
        short, text = self._text(objnr, code)
        return {"status": code, "code": short, "text": text}

    def _text(self, objnr: str, code: str) -> tuple[str, str]:
        """(TXT04, TXT30) of a status: a user status by the object's profile, a system
        status from TJ02T or the shipped texts; an unknown code as it is."""
        if code.startswith("E"):
            profile = self.profiles.get(objnr, "")
            found = self.user_texts.get((profile, code)) or self.user_texts.get(("", code))
            if found:
                return found
        known = (self.texts or {}).get(code)
        if known:
            return known
        shipped = data_file("sap").get("system_statuses", {}).get(code)
        if isinstance(shipped, list) and len(shipped) == 2:
            return str(shipped[0]), str(shipped[1])
        return code, ""

    def _history(self, conn: Connection, spans: dict[str, tuple[int, int]]
                 ) -> dict[str, list[tuple[int, datetime | None, list[tuple[str, bool]]]]]:
        """Each object's status change documents past its last seen change number, in
        order: (CHGNR, when, [(status, active)]); an object whose documents are not all
        there (archived, a table of another shape) gets none, and its post says the steps
        were not seen."""
        name = self.config.status.history
        if not name:
            return {}
        try:
            if not inspect(conn).has_table(name):
                return {}
            h = table(name, column("objnr"), column("stat"), column("chgnr"), column("inact"),
                      column("udate"), column("utime"))
            stmt = self._held(conn, name, select(*h.c).where(
                h.c.objnr.in_(bindparam("o", expanding=True))))
            found: dict[str, dict[int, tuple[datetime | None, list[tuple[str, bool]]]]] = {}
            zone = self.config.site.time_zone
            for objnr, code, nr, flag, udate, utime in conn.execute(stmt, {"o": list(spans)}):
                key, number = str(objnr).strip(), _number(nr)
                low, high = spans.get(key, (0, 0))
                if number is None or not low < number <= high:
                    continue
                entry = found.setdefault(key, {}).setdefault(
                    number, (sap_time(udate, utime, zone), []))
                entry[1].append((str(code).strip(),
                                 not (isinstance(flag, str) and flag.strip())))
        except DBAPIError:
            conn.rollback()
            return {}
        return {o: [(n, when, codes) for n, (when, codes) in sorted(docs.items())]
                for o, docs in found.items()
                if sorted(docs) == list(range(spans[o][0] + 1, spans[o][1] + 1))}

    def _held(self, conn: Connection, name: str, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` over SAP table ``name`` held to the source's client when the table is
        client-dependent (TJ30T, JSTO have MANDT; TJ02T does not)."""
        held = client_filter(self.config.site.client, present_columns(conn, name)) \
            if self.config.site.client else None
        return stmt if held is None else stmt.where(held)

    def _load_texts(self, conn: Connection, objects: list[str]) -> None:
        """TJ02T once; TJ30T once; JSTO for the objects whose set changed (their profile
        picks their user status texts)."""
        st = self.config.status
        try:
            present = set(inspect(conn).get_table_names())
            if self.texts is None:
                self.texts = {}
                if st.texts and st.texts in present:
                    t = table(st.texts, column("istat"), column("spras"), column("txt04"),
                              column("txt30"))
                    self.texts = {str(i).strip(): (str(a or i).strip(), str(b or "").strip())
                                  for i, a, b in conn.execute(self._held(
                                      conn, st.texts, select(t.c.istat, t.c.txt04, t.c.txt30)
                                      .where(t.c.spras == self.language)))}
                if st.user_texts and st.user_texts in present:
                    u = table(st.user_texts, column("stsma"), column("estat"),
                              column("spras"), column("txt04"), column("txt30"))
                    for prof, code, a, b in conn.execute(self._held(
                            conn, st.user_texts,
                            select(u.c.stsma, u.c.estat, u.c.txt04, u.c.txt30)
                            .where(u.c.spras == self.language))):
                        entry = (str(a or code).strip(), str(b or "").strip())
                        self.user_texts[(str(prof).strip(), str(code).strip())] = entry
                        self.user_texts.setdefault(("", str(code).strip()), entry)
            if st.profiles and st.profiles in present and self.user_texts:
                j = table(st.profiles, column("objnr"), column("stsma"))
                self.profiles = {str(o).strip(): str(p or "").strip() for o, p in conn.execute(
                    self._held(conn, st.profiles, select(j.c.objnr, j.c.stsma).where(
                        j.c.objnr.in_(bindparam("o", expanding=True)))), {"o": objects})}
        except DBAPIError:
            conn.rollback()  # texts of another shape: the shipped texts and the codes
