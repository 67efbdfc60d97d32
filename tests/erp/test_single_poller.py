"""Two daemons on one config and one PostgreSQL store: one polls, the other stands by.

This is the ERP adapter's own lock, for daemons that do not form a fleet (``fleet.enabled:
false``); in a fleet the store's lease does the same for every kind of source
(tests/fleet/test_fleet_failover.py).

Daemon A is a real ``floorstream run`` process; daemon B runs in the test. While A holds the
source's advisory lock, B never polls. A is killed with SIGKILL (its session, and so its lock,
ends with the process); B takes over from A's committed checkpoint and every change is posted
exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from floorstream.adapters.erp.adapter import ErpTableAdapter
from floorstream.adapters.erp.lock import lock_key
from support import DaemonRunner, sentinel, wait_for
from support.erp import SENTINEL, create_erp, insert_order, update

from .idioms_support import POLLED

CONFIG = """
store: {url}
default_team: planning
logging: {{level: warning}}
fleet: {{enabled: false}}  # the ERP-side lock itself (a fleet leases the source instead)
sources:
  - name: orders
    adapter: erp.table
    url: {url}
    interval: 100ms
    standby_retry: 200ms
    table: production_order
    mode: cursor
    cursor: write_date
    overlap: 5s
    subject: "{{{{ row.name }}}}"
    track: [state]
    labels: {{state: status}}
    values: {{state: {{confirmed: Confirmed, progress: In progress, done: Done}}}}
"""


@pytest.mark.postgres
def test_one_poller_per_source_and_takeover_when_it_dies(pg_url: str, tmp_path: Path) -> None:
    erp = create_erp(pg_url, orders=3)
    config_text = CONFIG.format(url=pg_url)
    with DaemonRunner(config_text, process=True, workdir=tmp_path, name="a") as first, \
            DaemonRunner(config_text, name="b") as second:

        def summaries() -> list[str]:
            return sorted(first.summaries("planning"))

        first.start()
        # daemon A polls (a process: slow to start on a busy machine)
        first.wait_checkpoint("orders", timeout=60)
        second.start()
        standby = second.adapter("orders")
        assert isinstance(standby, ErpTableAdapter)
        update(erp, 1, state="progress")
        wait_for(lambda: len(summaries()) == 1)
        # B asks for the lock on every turn of its loop: once it has asked a few more times
        # after A's post, it provably stood by while A held the lock
        asked = _count_lock_checks(standby)
        wait_for(lambda: asked[0] >= 4, what="B asking for the lock")
        assert standby.polls == 0, "B polled while A held the lock"
        assert standby.lock is not None and standby.lock.acquired == 0

        first.kill()  # SIGKILL, no goodbye: the lock goes with A's session
        update(erp, 2, state="done")
        wait_for(lambda: len(summaries()) == 2)
        assert summaries() == [f"WH/MO/00001: status Confirmed → In progress{POLLED}",
                               f"WH/MO/00002: status Confirmed → Done{POLLED}"]
        assert standby.polls > 0 and standby.lock.acquired == 1
        update(erp, 3, state="done")
        wait_for(lambda: len(summaries()) == 3)
        # more polls over the overlap window repeat nothing: a sentinel order inserted behind
        # is posted, and nothing else came
        sentinel(lambda: insert_order(erp, SENTINEL),
                 lambda: f"WH/MO/{SENTINEL:05d} created" in summaries())
        assert summaries() == [f"WH/MO/00001: status Confirmed → In progress{POLLED}",
                               f"WH/MO/00002: status Confirmed → Done{POLLED}",
                               f"WH/MO/00003: status Confirmed → Done{POLLED}",
                               f"WH/MO/{SENTINEL:05d} created"]
    erp.dispose()


def _count_lock_checks(adapter: ErpTableAdapter) -> list[int]:
    """Count the adapter's ``lock.held()`` calls from now on (the lock itself unchanged)."""
    lock = adapter.lock
    assert lock is not None
    real = lock.held
    calls = [0]

    def held() -> bool:
        calls[0] += 1
        return real()

    lock.held = held  # type: ignore[method-assign]
    return calls


def test_lock_key_is_a_stable_signed_64_bit_id_per_source() -> None:
    assert lock_key("orders") == lock_key("orders")
    assert lock_key("orders") != lock_key("orders-2")
    assert all(-(2**63) <= lock_key(n) < 2**63 for n in ("a", "orders", "x" * 200))
