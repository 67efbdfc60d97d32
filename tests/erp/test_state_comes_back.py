"""A row whose content comes back is a new change, not a repeat of the first one.

Snapshot mode names a change by the row's content hash; an order that goes Confirmed → In
progress → Confirmed → In progress (a planner undoing and redoing a start, common on Odoo
shop floors) had the second "→ In progress" at the first one's position, hence the same
event id, and the store dropped it as already posted: a transition that happened was never
said. The positions now carry the number of the diff they belong to (kept in the
checkpoint), so each back-and-forth is posted, and a restart still posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support.erp import ErpRun, create_erp, update

from .idioms_support import POLLED

#: the columns that matter, as an SAP table without a change time (or a user leaving out
#: write_date) reads: the content really comes back
SNAPSHOT = """        mode: snapshot
        columns: [id, name, state]
"""


def _at_least(count: int) -> Callable[[list[str]], bool]:
    return lambda found: len(found) >= count


def test_a_state_that_comes_back_is_posted_each_time(store_url: str, tmp_path: Path) -> None:
    erp = create_erp(store_url, orders=1)
    run = ErpRun(tmp_path, store_url, SNAPSHOT)
    run.start()
    steps = [f"WH/MO/00001: status Confirmed → In progress{POLLED}",
             f"WH/MO/00001: status In progress → Confirmed{POLLED}"]
    try:
        for n, state in enumerate(("progress", "confirmed", "progress", "confirmed"), 1):
            update(erp, 1, state=state)
            run.wait_summaries(_at_least(n))  # a poll between the edits
    finally:
        run.stop()
    update(erp, 1, state="progress")
    run.start()
    try:
        found = run.sentinel(erp)
        assert found == [*steps, *steps, steps[0]]
    finally:
        run.stop()
