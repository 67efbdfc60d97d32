"""Default wording of the ERP adapter's own events: "sale_order: 1,250 rows changed at once
(state draft → sent ×1,250)"."""

from __future__ import annotations

from floorstream.model import Event
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

__all__ = ["register_phrases"]


def _mass_update(e: Event) -> str:
    f = e.fields
    text = f"{e.subject}: {f['count']:,} rows changed at once"
    changes = [f"{c['label']} {phrasing.value(c['before'])} → {phrasing.value(c['after'])} "
               f"×{c['count']:,}" if c.get("before") is not None else
               f"{c['label']} → {phrasing.value(c['after'])} ×{c['count']:,}"
               for c in f.get("changes", [])[:2]]
    return text + (f" ({'; '.join(changes)})" if changes else "")


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    phrases.add(_mass_update, name="record.mass_update")
