"""Create the example ERP database and play an ERP user moving work orders along.

    python examples/erp/make_changes.py            # creates examples/erp/erp.db, then edits
    floorstream run -c examples/erp/floorstream.yaml   # in another terminal
    floorstream feed -c examples/erp/floorstream.yaml --team planning
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

HERE = Path(__file__).parent
NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
EDITS = [
    ("WH/MO/00042", "state", "progress"),
    ("WH/MO/00042", "product_qty", 12),
    ("WH/MO/00043", "date_planned_start", "2026-11-27 14:00:00"),
    ("WH/MO/00043", "product_id", 2),
    ("WH/MO/00042", "state", "done"),
]


def create(path: Path) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript((HERE / "schema.sql").read_text())
        db.executemany("INSERT INTO product_product VALUES (?, ?)",
                       [(1, "[FURN_8855] Drawer"), (2, "[FURN_7800] Desk Combination")])
        for number, state in ((42, "confirmed"), (43, "draft")):
            db.execute(f"INSERT INTO mrp_production (name, product_id, product_qty, state, "
                       f"date_planned_start, create_date, write_date) VALUES (?, 1, 10, ?, "
                       f"'2026-11-26 06:00:00', {NOW}, {NOW})", (f"WH/MO/{number:05d}", state))


def play(path: Path, pause: float) -> None:
    for name, column, value in EDITS:
        time.sleep(pause)
        with sqlite3.connect(path) as db:
            db.execute(f"UPDATE mrp_production SET {column} = ?, write_date = {NOW} "
                       "WHERE name = ?", (value, name))
        print(f"{name}: {column} = {value}")


if __name__ == "__main__":
    database = HERE / "erp.db"
    create(database)
    print(f"created {database}; start `floorstream run -c examples/erp/floorstream.yaml` now")
    time.sleep(5)
    play(database, pause=1.0)
