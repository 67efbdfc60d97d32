"""Two daemons on one config and one PostgreSQL store: one polls, the other stands by.

Daemon A is a real ``floorstream run`` process; daemon B runs in the test. While A holds the
source's advisory lock, B never polls. A is killed with SIGKILL (its session, and so its lock,
ends with the process); B takes over from A's committed checkpoint and every change is posted
exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from floorstream.adapters.erp.adapter import ErpTableAdapter
from floorstream.adapters.erp.lock import lock_key
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

from .harness import create_erp, update

CONFIG = """
store: {url}
default_team: planning
logging: {{level: warning}}
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


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_one_poller_per_source_and_takeover_when_it_dies(pg_url: str, tmp_path: Path) -> None:
    erp = create_erp(pg_url, orders=3)
    config_text = CONFIG.format(url=pg_url)
    config_file = tmp_path / "fs.yaml"
    config_file.write_text(config_text)
    store = Store.open(pg_url)

    def summaries() -> list[str]:
        return sorted(p.summary for p in store.feed("planning", limit=100))

    script = Path(sys.executable).with_name("floorstream")
    first = subprocess.Popen([str(script), "run", "-c", str(config_file)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    plugins = build_plugins()
    second: Daemon | None = None
    try:
        assert _wait(lambda: "orders" in store.checkpoints()), "daemon A never polled"
        second = Daemon(parse_config(config_text, plugins), plugins)
        second.start()
        assert _wait(lambda: "orders" in second._adapters)
        standby = second._adapters["orders"]
        assert isinstance(standby, ErpTableAdapter)
        update(erp, 1, state="progress")
        assert _wait(lambda: len(summaries()) == 1)
        time.sleep(0.5)
        assert standby.polls == 0, "B polled while A held the lock"
        assert standby.lock is not None and standby.lock.acquired == 0

        first.send_signal(signal.SIGKILL)  # no goodbye: the lock goes with A's session
        first.wait(10)
        update(erp, 2, state="done")
        assert _wait(lambda: len(summaries()) == 2)
        assert summaries() == ["WH/MO/00001: status Confirmed → In progress",
                               "WH/MO/00002: status Confirmed → Done"]
        assert standby.polls > 0 and standby.lock.acquired == 1
        update(erp, 3, state="done")
        assert _wait(lambda: len(summaries()) == 3)
        time.sleep(0.5)  # more polls over the overlap window: nothing repeated
        assert summaries() == ["WH/MO/00001: status Confirmed → In progress",
                               "WH/MO/00002: status Confirmed → Done",
                               "WH/MO/00003: status Confirmed → Done"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        if second is not None:
            second.stop()
        store.close()
        erp.dispose()


def test_lock_key_is_a_stable_signed_64_bit_id_per_source() -> None:
    assert lock_key("orders") == lock_key("orders")
    assert lock_key("orders") != lock_key("orders-2")
    assert all(-(2**63) <= lock_key(n) < 2**63 for n in ("a", "orders", "x" * 200))
