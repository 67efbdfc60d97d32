"""Records made from other records: whose story a row's posts join.

An ERP makes a new document out of an old one in a few ways, and people follow them as one
story: a cancelled Frappe document is *amended* into ``…-1`` (``amended_from``), an Odoo
transfer leaves a *backorder* (``backorder_id``), a manufacturing order is *split* (Odoo
renames it ``…-001`` and numbers the parts ``…-002``; the shared DDL's ``backorder_of_id``).
For such a row this module fills two virtual fields (see :mod:`.values`):

- ``_origin`` = ``{"verb": …, "of": <subject of the record it came from>}``: the
  ``field_change`` detector words the record's first post after it;
- ``_thread`` = the subject of the first record of the chain (an amendment of an amendment
  still joins the original's thread).

Parents are read from the same table by the column ``parent.key`` (default ``key:``), one
query per chain level and batch, and cached (bounded, LRU): parents never change once made.
A ``thread:`` template, when configured, decides the thread instead.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, column, literal_column, select, table

from floorstream.adapters.erp.config import TableConfig, subject_environment

if TYPE_CHECKING:
    from floorstream.adapters.erp.values import Humanizer

__all__ = ["Lineage"]

_DEPTH = 10  # chains longer than this are cut (a loop in bad data must not hang a poll)
_CACHE = 10_000


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False


class Lineage:
    def __init__(self, config: TableConfig, humanizer: Humanizer) -> None:
        self.config = config
        self.humanizer = humanizer
        self.parent = humanizer.idiom.parent
        self.split_names: re.Pattern[str] | None = humanizer.idiom.split_names
        self.thread = subject_environment().from_string(config.thread) \
            if config.thread else None
        #: parent reference → (its subject, its own parent reference or None)
        self._known: OrderedDict[Any, tuple[str, Any]] = OrderedDict()
        self._subject: Any = None

    def _subject_of(self, key: Any, row: dict[str, Any]) -> str:
        if self._subject is None:
            from floorstream.adapters.erp.publish import SubjectMaker
            self._subject = SubjectMaker(self.config)
        subject: str = self._subject(key, row)
        return subject

    def apply(self, conn: Connection, raws: list[dict[str, Any]],
              shown: list[dict[str, Any]]) -> None:
        cfg = self.config
        parent = self.parent
        if parent is not None:
            refs = {r.get(parent.column) for r in raws if not _empty(r.get(parent.column))}
            if refs:
                self._resolve(conn, refs)
        for raw, data in zip(raws, shown, strict=True):
            if self.thread is not None:
                try:
                    text = self.thread.render(row=data, key=raw.get(cfg.key),
                                              table=cfg.table).strip()
                except Exception:
                    text = ""
                if text:
                    data["_thread"] = text[:255]
            ref = raw.get(parent.column) if parent is not None else None
            if parent is not None and not _empty(ref):
                of, root = self._chain(ref)
                data["_origin"] = {"verb": parent.verb, "of": of}
                data.setdefault("_thread", root)
                continue
            if self.split_names is not None:
                name = raw.get("name")
                if not isinstance(name, str):
                    continue
                match = self.split_names.search(name)
                if match is not None and match.start() > 0:
                    root = name[:match.start()]
                    data["_origin"] = {"verb": "split", "of": root}
                    data.setdefault("_thread", root)

    def _chain(self, ref: Any) -> tuple[str, str]:
        """(subject of the direct parent, subject of the chain's first record)."""
        first = self._known.get(ref)
        if first is None:
            text = str(ref)
            return text, text
        subject, up = first
        root = subject
        seen = {ref}
        for _ in range(_DEPTH):
            if _empty(up) or up in seen or up not in self._known:
                break
            seen.add(up)
            root, up = self._known[up]
        return subject, root

    def _resolve(self, conn: Connection, refs: set[Any]) -> None:
        """Read the parents of ``refs`` (and theirs, up the chain) that are not cached."""
        parent = self.parent
        assert parent is not None
        by = parent.key or self.config.key
        src = table(self.config.table, column(by))
        wanted = {r for r in refs if r not in self._known}
        for _ in range(_DEPTH):
            if not wanted:
                return
            stmt: Any = select(literal_column("*")).select_from(src).where(
                src.c[by].in_(bindparam("refs", expanding=True)))
            rows = [dict(r) for r in conn.execute(stmt, {"refs": sorted(wanted, key=str)})
                    .mappings()]
            shown = self.humanizer.rows(conn, rows, virtual=False) if rows else []
            found = set()
            nxt = set()
            for raw, data in zip(rows, shown, strict=True):
                ref = raw.get(by)
                up = raw.get(parent.column)
                self._known[ref] = (self._subject_of(raw.get(self.config.key), data),
                                    None if _empty(up) else up)
                self._known.move_to_end(ref)
                found.add(ref)
                if not _empty(up) and up not in self._known:
                    nxt.add(up)
            for missing in wanted - found:  # gone (deleted, archived): named by the reference
                self._known[missing] = (str(missing), None)
            while len(self._known) > _CACHE:
                self._known.popitem(last=False)
            wanted = nxt
