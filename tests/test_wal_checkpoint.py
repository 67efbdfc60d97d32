"""SQLite WAL checkpoints leave the commit path while a pipeline runs (store/walcheckpoint.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from floorstream.model import Post, event_id
from floorstream.store.store import CommitBatch, Store
from floorstream.store.walcheckpoint import WalCheckpointer
from support import wait_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/fs.db")
    try:
        yield opened
    finally:
        opened.close()


def _batch(n: int) -> CommitBatch:
    batch = CommitBatch()
    batch.checkpoints["line"] = f"pos-{n}"
    batch.states[("line", f"press-{n % 7}", "state_change:state")] = {"state": "RUN", "n": n}
    batch.posts.append(Post(id=event_id("line", f"press-{n % 7}", str(n), "machine.stopped"),
                            type="machine.stopped", source="line", subject=f"press-{n % 7}",
                            summary=f"press {n} stopped", teams=("maintenance",),
                            occurred_at=datetime(2026, 12, 1, tzinfo=UTC)))
    return batch


def _autocheckpoint(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def test_commits_do_not_checkpoint_and_the_thread_copies_the_log(store: Store,
                                                                 tmp_path: Path) -> None:
    database = tmp_path / "fs.db"
    assert _autocheckpoint(store) == 1000  # SQLite's own default, in commits
    wal = store.checkpoint_in_background()
    assert wal is not None
    assert _autocheckpoint(store) == 0  # the engine's connections no longer checkpoint
    size_before = database.stat().st_size
    for n in range(300):
        store.commit(_batch(n))
    # the thread copied the log into the database file, and nothing was left behind
    wait_for(lambda: wal.checkpoints >= 1 and database.stat().st_size > size_before,
             what="a background checkpoint")
    store.commit(_batch(300))
    wait_for(lambda: wal.checkpoints >= 2, what="the checkpoint after the last commit")
    assert wal.failures == 0 and wal.last_error is None
    assert wal.behind_pages == 0
    # what was committed is there, read back through a fresh connection
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM fs_posts")).scalar_one() == 301

    assert wal.running
    store.checkpoint_in_commits()
    assert store.wal is None and not wal.running
    assert _autocheckpoint(store) == 1000


def test_in_memory_and_other_stores_keep_sqlites_own_checkpoints() -> None:
    memory = Store.open("sqlite://")
    try:
        assert memory.checkpoint_in_background() is None
        assert memory.wal is None
    finally:
        memory.close()


def test_a_failing_checkpoint_is_counted_and_reported_not_raised(tmp_path: Path) -> None:
    wal = WalCheckpointer(str(tmp_path / "no" / "such" / "folder" / "fs.db"))
    wal.checkpoint()
    wal.checkpoint()
    report = wal.report()
    assert report["failures"] == 2 and report["checkpoints"] == 0
    assert "unable to open" in str(report["last_error"])


def test_the_pipeline_moves_checkpoints_off_its_commits_while_it_runs(store: Store) -> None:
    from floorstream.config import parse_config
    from floorstream.pipeline import Pipeline
    from floorstream.plugins import build_plugins
    from floorstream.processing import Processor

    plugins = build_plugins()
    config = parse_config("store: sqlite://\nteams: {maintenance: {}}\n", plugins)
    pipeline = Pipeline(Processor(config, plugins, states=store), store,
                        config.settings.pipeline, plugins)
    pipeline.start()
    wal = store.wal
    try:
        assert wal is not None and wal.running
        assert _autocheckpoint(store) == 0
    finally:
        pipeline.stop()
    assert store.wal is None and not wal.running
    assert _autocheckpoint(store) == 1000
