"""Cursor mode's two steps on SQLite: new rows first, then the overlap window.

Driven through the watcher directly, to stop between the steps the way a crash would: the
position handed over with the new rows still carries the window's edge (``w``), so a watcher
built from it (the restart) re-reads the window and finds a late commit there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from floorstream.adapters.erp.config import TableConfig
from floorstream.adapters.erp.cursor import CursorWatcher
from floorstream.adapters.erp.publish import FLUSH, RowChange
from support.erp import create_erp, update

CONFIG = TableConfig(table="production_order", cursor="write_date", overlap=30.0, batch=4,
                     track=["state"])
COLUMNS = ["id", "name", "product_id", "product_qty", "uom", "state", "date_planned_start",
           "create_date", "write_date", "write_uid"]


def _keys(changes: list[RowChange | None]) -> list[Any]:
    return [c.key for c in changes if c is not None]


def test_new_rows_then_window_and_a_crash_between_them_rereads_the_window(
        sqlite_url: str) -> None:
    erp = create_erp(sqlite_url, orders=6)
    watcher = CursorWatcher(CONFIG, None, lambda: COLUMNS)
    assert sorted(_keys(list(watcher.poll(erp)))) == [1, 2, 3, 4, 5, 6]  # baseline, paged by 4
    assert "w" not in watcher.position

    update(erp, 3, state="progress")
    with erp.begin() as conn:  # a late commit: a write_date a few seconds behind the position
        conn.execute(text("UPDATE production_order SET state = 'done', write_date = "
                          "strftime('%Y-%m-%d %H:%M:%f', 'now', '-5 seconds') WHERE id = 5"))
    stream = watcher.poll(erp)
    first: list[RowChange | None] = []
    for change in stream:  # the new rows, up to the flush; then "crash"
        if change is FLUSH:
            break
        first.append(change)
    assert _keys(first) == [3]
    assert first[-1] is not None and "w" in first[-1].after  # the window is still owed

    restarted = CursorWatcher(CONFIG, first[-1].after, lambda: COLUMNS)
    found = [c for c in restarted.poll(erp) if c is not None]
    assert 5 in [c.key for c in found]  # the late commit, found in the re-read window
    assert [c.data["state"] for c in found if c.key == 5] == ["done"]
    assert "w" not in restarted.position
    # the next poll finds nothing new: the window's rows are known by their values
    assert _keys(list(restarted.poll(erp))) == []
    erp.dispose()
