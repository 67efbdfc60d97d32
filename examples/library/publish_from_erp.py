"""Publishing from ERP customisation code, no daemon: what an Odoo/ERPNext hook would do.

    python examples/library/publish_from_erp.py [sqlite:///example.db]

A work order changes state inside the ERP's own transaction hook; the hook publishes one event
keyed by the record's id and write date, so a retried transaction does not post twice.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import floorstream

CONFIG = {
    "teams": {"planning": {}, "production": {}},
    "routes": [
        {"name": "work orders", "match": {"type": "record.*"}, "teams": ["planning"]},
        {"name": "urgent", "match": {"severity": ">=warning"}, "teams": ["production"]},
    ],
}


def on_work_order_write(stream: floorstream.Stream, record: dict[str, object],
                        before: dict[str, object]) -> None:
    """What the ERP calls after a work order was written."""
    if before["state"] == record["state"]:
        return
    severity = "warning" if record["state"] == "blocked" else "info"
    stream.publish(
        source="odoo", subject=str(record["name"]), type="record.field_changed",
        fields={"field": "state", "label": "status", "before": before["state"],
                "after": record["state"]},
        severity=severity, key=f"mrp.production,{record['id']},{record['write_date']}",
    )


def main() -> None:
    store = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///example.db"
    with floorstream.open({**CONFIG, "store": store}) as stream:
        now = datetime.now(UTC).isoformat()
        record = {"id": 42, "name": "WH/MO/00042", "state": "In progress", "write_date": now}
        on_work_order_write(stream, record, {"state": "Confirmed"})
        on_work_order_write(stream, record, {"state": "Confirmed"})  # a retry: no second post
        blocked = {**record, "state": "blocked", "write_date": now + "+1"}
        on_work_order_write(stream, blocked, {"state": "In progress"})
        for team in ("planning", "production"):
            print(f"{team}:")
            for post in stream.feed(team):
                print(f"  {post.severity.label:<8} {post.summary}")


if __name__ == "__main__":
    main()
