"""Default wording of the ERP adapter's own events: "sale_order: 1,250 rows changed at once
(state draft → sent ×1,250)", "1000123: added CNF (Confirmed), DLV (Delivered); removed PCNF
(Partially confirmed)", "MFG-WO-2024-00001: operations row 2 (Assembly): completed qty 0 → 5".
"""

from __future__ import annotations

from floorstream.model import Event
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

__all__ = ["PHRASES", "register_phrases"]


def _mass_update(e: Event) -> str:
    f = e.fields
    text = f"{e.subject}: {f['count']:,} rows changed at once"
    changes = [f"{c['label']} {phrasing.value(c['before'])} → {phrasing.value(c['after'])} "
               f"×{c['count']:,}" if c.get("before") is not None else
               f"{c['label']} → {phrasing.value(c['after'])} ×{c['count']:,}"
               for c in f.get("changes", [])[:2]]
    return text + (f" ({'; '.join(changes)})" if changes else "")


def _statuses(items: list[dict[str, str]]) -> str:
    return ", ".join(f"{i['code']} ({i['text']})" if i.get("text") else i["code"]
                     for i in items)


def _status_changed(e: Event) -> str:
    f = e.fields
    added, removed = f.get("added") or [], f.get("removed") or []
    if f.get("new") and not removed:
        return f"{e.subject}: status {_statuses(added)}"
    parts = ([f"added {_statuses(added)}"] if added else []) + \
        ([f"removed {_statuses(removed)}"] if removed else [])
    return f"{e.subject}: {'; '.join(parts)}{phrasing.steps_unseen(f)}"


def _row(e: Event) -> str:
    f = e.fields
    where = f"{f['table_label']} row {f['number']}" if f.get("number") is not None \
        else f"{f['table_label']} row"
    return where + (f" ({f['row_label']})" if f.get("row_label") else "")


def _row_changed(e: Event) -> str:
    changes = "; ".join(f"{c['label']} {phrasing.value(c['before'])} → "
                        f"{phrasing.value(c['after'])}" for c in e.fields.get("changes") or [])
    return f"{e.subject}: {_row(e)}: {changes}"


def _row_added(e: Event) -> str:
    return f"{e.subject}: {_row(e)} added"


def _row_removed(e: Event) -> str:
    return f"{e.subject}: {_row(e)} removed"


#: event type → phrase; the host registers these by reference (``floorstream.plugins``), so
#: this module loads when a post is first worded with one of them, not in every daemon
PHRASES: dict[str, Phrase] = {
    "record.mass_update": _mass_update,
    "record.status_changed": _status_changed,
    "record.row_changed": _row_changed,
    "record.row_added": _row_added,
    "record.row_removed": _row_removed,
}


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    for type_, phrase in PHRASES.items():
        phrases.add(phrase, name=type_)
