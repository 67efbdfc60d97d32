"""Retention on SQLite, PostgreSQL and MariaDB: a store with old rows of every kind, pruned in
small batches; what must stay stays (pending deliveries, reply references, fresh subjects,
source-wide state); --dry-run counts the same and deletes nothing; the command and the daemon's
thread do it too."""

from __future__ import annotations

import subprocess
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from floorstream.config import parse_config
from floorstream.config.settings import RetentionSettings
from floorstream.daemon import Daemon
from floorstream.model import Post, Severity, event_id
from floorstream.plugins import build_plugins
from floorstream.progress import NullLog, logged
from floorstream.retention import prune
from floorstream.store import schema
from floorstream.store.store import CommitBatch, QuarantineItem, Store
from support.daemon import FLOORSTREAM
from support.waiting import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _post(n: int, created: datetime, teams: tuple[str, ...] = ("maintenance", "quality")
          ) -> Post:
    return Post(id=event_id("presses", f"press-{n}", str(n), "machine.state_changed"),
                type="machine.state_changed", source="presses", subject=f"press-{n}",
                summary=f"post {n}", severity=Severity.INFO, teams=teams,
                occurred_at=created, created_at=created, fields={"n": n},
                routing=tuple({"team": t, "rule": "routes[0]"} for t in teams))


def _fill(store: Store, *, old: int = 25, recent: int = 5) -> dict[str, list[Post]]:
    """Old and recent posts, each with its outbox row on sink ``hook`` (one per post and
    sink, whichever team it came through)."""
    made: dict[str, list[Post]] = {"old": [], "recent": []}
    for label, count, when, base in (("old", old, OLD, 0), ("recent", recent, RECENT, 1000)):
        posts = [_post(base + n, when + timedelta(seconds=n)) for n in range(count)]
        store.commit(CommitBatch(
            posts=posts, deliveries=[(p.id, t, "hook") for p in posts for t in p.teams]))
        made[label] = posts
    return made


def _set_outbox(store: Store, post_id: str, **values: object) -> None:
    d = schema.deliveries
    with store.engine.begin() as conn:
        conn.execute(update(d).where(d.c.post_id == post_id).values(**values))


def _count(store: Store, table: object, *where: object) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        for clause in where:
            query = query.where(clause)  # type: ignore[arg-type]
        return int(conn.execute(query).scalar_one())


def _scenario(store: Store) -> dict[str, object]:
    made = _fill(store)
    old, recent = made["old"], made["recent"]
    # every old post delivered long ago (no message reference), but:
    for post in old:
        _set_outbox(store, post.id, status="delivered", delivered_at=OLD,
                    created_at=OLD)
    _set_outbox(store, old[0].id, status="pending", delivered_at=None)  # still to send
    _set_outbox(store, old[1].id, status="held", delivered_at=None)  # waiting for a digest
    _set_outbox(store, old[2].id, status="failed", delivered_at=None)  # given up on
    # recent posts: one delivered 40 days ago... (delivered_at can't precede creation in
    # life, but the rule is about delivered_at) and one holding a Slack ts
    _set_outbox(store, recent[0].id, status="delivered", delivered_at=OLD, created_at=OLD)
    _set_outbox(store, recent[1].id, status="delivered", delivered_at=OLD, created_at=OLD,
                remote_ref="1718000000.000100")
    # quarantine: 9 old, 2 recent
    items = [QuarantineItem("presses", f"bad {n}".encode(), "invalid JSON",
                            position=f"q{n}", received_at=OLD) for n in range(9)]
    items += [QuarantineItem("presses", f"new {n}".encode(), "invalid JSON",
                             position=f"r{n}", received_at=RECENT) for n in range(2)]
    store.commit(CommitBatch(quarantined=items))
    # detector state: press-quiet (two detectors, both old), press-mixed (one old, one
    # fresh), the source-wide replay guard (old)
    store.commit(CommitBatch(states={
        ("presses", "press-quiet", "state_change:state"): {"state": "RUNNING"},
        ("presses", "press-quiet", "threshold:t:above:90"): {"status": "normal"},
        ("presses", "press-mixed", "state_change:state"): {"state": "STOPPED"},
        ("presses", "press-mixed", "threshold:t:above:90"): {"status": "raised"},
        ("presses", "", "replay-guard"): {"positions": []},
    }))
    t = schema.detector_state
    with store.engine.begin() as conn:
        conn.execute(update(t).values(updated_at=OLD))
        conn.execute(update(t).where(t.c.subject == "press-mixed",
                                     t.c.detector == "threshold:t:above:90")
                     .values(updated_at=RECENT))
    return {"old": old, "recent": recent}


SETTINGS = RetentionSettings(posts="90d", delivered="30d", failed="90d", quarantine="30d",
                             detector_state="90d", erp_changes=None, batch=7, pause=0)


def test_prune_keeps_what_must_stay(store: Store) -> None:
    made = _scenario(store)
    old: list[Post] = made["old"]  # type: ignore[assignment]
    recent: list[Post] = made["recent"]  # type: ignore[assignment]
    p, pt, d, q, t = (schema.posts, schema.post_teams, schema.deliveries, schema.quarantine,
                      schema.detector_state)
    before = {name: _count(store, table) for name, table in
              (("posts", p), ("teams", pt), ("outbox", d), ("quarantine", q), ("state", t))}

    dry = prune(store, SETTINGS, dry_run=True, now=NOW)
    after_dry = {name: _count(store, table) for name, table in
                 (("posts", p), ("teams", pt), ("outbox", d), ("quarantine", q), ("state", t))}
    assert after_dry == before, "a dry run deleted something"

    report = prune(store, SETTINGS, now=NOW)
    assert report.errors == {}
    assert report.counts == dry.counts
    # 25 old posts: the pending and the held one stay; the failed one (failed rows are
    # 200 days old, over failed: 90d) goes with the 22 delivered ones
    assert report.counts["posts"] == 23
    assert report.kept_pending == 2 == dry.kept_pending
    remaining = set(store_ids(store))
    assert remaining == {old[0].id, old[1].id} | {r.id for r in recent}
    # their team rows went with them, the kept posts' stayed
    assert _count(store, pt) == 2 * len(remaining)
    assert _count(store, pt, pt.c.post_id.in_([old[0].id, old[1].id])) == 4
    # outbox: the pending/held rows stay; the reply reference stays with its post; the
    # plainly delivered row of a recent post went; nothing of a deleted post is left
    outbox = {(r.post_id, r.status) for r in _rows(store, d)}
    assert (old[0].id, "pending") in outbox and (old[1].id, "held") in outbox
    assert (recent[1].id, "delivered") in outbox
    assert not any(post_id == recent[0].id and status == "delivered"
                   for post_id, status in outbox)
    assert {post_id for post_id, _ in outbox} <= remaining
    # one outbox row per post and sink: 22 old posts' rows and recent[0]'s; old[2]'s failed
    assert report.counts["delivered"] == 23
    assert report.counts["failed"] == 1
    # quarantine: the 9 old items went
    assert report.counts["quarantine"] == 9
    assert _count(store, q) == 2
    # detector state: press-quiet went (both rows), press-mixed stays whole, the guard stays
    states = {(r.subject, r.detector) for r in _rows(store, t)}
    assert states == {("press-mixed", "state_change:state"),
                      ("press-mixed", "threshold:t:above:90"), ("", "replay-guard")}
    assert report.counts["detector_state"] == 2
    # and a second pass finds nothing more
    again = prune(store, SETTINGS, now=NOW)
    assert again.total == 0



@pytest.mark.parametrize(("old", "recent"), [(25, 5), (0, 5), (25, 0), (1, 1), (0, 0)])
def test_the_posts_total_counts_the_old_posts_without_a_scan(store: Store, old: int,
                                                             recent: int) -> None:
    """The progress total of the posts pass is the number of posts made before the cutoff,
    found by bisecting ``seq`` (posts are numbered as they are made), not by a count over
    the unindexed ``created_at`` that read all 1,000,000 posts of a store on every pass."""
    _fill(store, old=old, recent=recent)
    totals: dict[str, int | None] = {}

    def progress(kind: str, total: int | None) -> Any:
        totals[kind] = total
        return logged(NullLog(), "test", total)

    prune(store, SETTINGS, now=NOW, progress=progress, kinds=("posts",), dry_run=True)
    assert totals == {"posts": old}

def store_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.posts.c.id)).scalars())


def _rows(store: Store, table: object) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(table)))  # type: ignore[call-overload]


def test_null_keeps_a_kind_forever(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        _scenario(store)
        keep = SETTINGS.model_copy(update={"posts": None, "quarantine": None,
                                           "detector_state": None})
        report = prune(store, keep, now=NOW)
        assert "posts" not in report.counts and "quarantine" not in report.counts
        assert _count(store, schema.posts) == 30
        assert _count(store, schema.quarantine) == 11
    finally:
        store.close()


def test_a_feed_still_reads_after_a_prune(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        made = _scenario(store)
        prune(store, SETTINGS, now=NOW)
        feed = store.feed("maintenance", limit=100)
        recent: list[Post] = made["recent"]  # type: ignore[assignment]
        assert {p.id for p in recent} <= {p.id for p in feed}
        assert len(feed) == 7
    finally:
        store.close()


def _config_text(url: str) -> str:
    return textwrap.dedent(f"""\
        store: "{url}"
        retention:
          posts: 90d
          delivered: 30d
          quarantine: 30d
          detector_state: 90d
          batch: 5
          pause: 0s
        sources:
          - name: presses
            adapter: simulator
            enabled: false
        """)


def test_prune_command_dry_run_then_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    store = Store.open(url)
    try:
        made = _fill(store, old=12, recent=3)
        for post in made["old"]:
            _set_outbox(store, post.id, status="delivered", delivered_at=OLD, created_at=OLD)
    finally:
        store.close()
    config = tmp_path / "floorstream.yaml"
    config.write_text(_config_text(url))
    dry = subprocess.run([FLOORSTREAM, "prune", "-c", str(config), "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "posts: would delete 12" in dry.stdout
    assert "detector state rows: would delete 0" in dry.stdout
    # not a terminal: plain progress lines on stderr, no bar drawing
    assert "\r" not in dry.stderr
    assert "counting posts" in dry.stderr and "done in" in dry.stderr
    store = Store.open(url)
    try:
        assert _count(store, schema.posts) == 15
    finally:
        store.close()
    done = subprocess.run([FLOORSTREAM, "prune", "-c", str(config)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "posts: deleted 12" in done.stdout
    assert "fs_erp_changes rows: deleted 0" in done.stdout
    store = Store.open(url)
    try:
        assert _count(store, schema.posts) == 3
        assert _count(store, schema.post_teams) == 6
    finally:
        store.close()


def test_the_daemon_prunes_by_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    store = Store.open(url)
    made = _fill(store, old=30, recent=2)
    for post in made["old"]:
        _set_outbox(store, post.id, status="delivered", delivered_at=OLD, created_at=OLD)
    plugins = build_plugins()
    config = parse_config(_config_text(url), plugins)
    daemon = Daemon(config, plugins, delivery=False)
    daemon.retention.first_delay = 0.0
    daemon.start()
    try:
        wait_for(lambda: daemon.retention.runs >= 1, 30, "a retention pass")
        report = daemon.retention.last_report
        assert report is not None and report.counts["posts"] == 30
        assert _count(store, schema.posts) == 2
    finally:
        daemon.stop()
        store.close()


class _Writer:
    """The pipeline's lock as the daemon hands it over, counting who takes it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> None:
        self.lock.acquire()
        self.taken += 1

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


def test_on_sqlite_each_transaction_takes_the_pipelines_lock(store_url: str) -> None:
    """SQLite's one writer: a commit that finds it busy sleeps in SQLite's backoff steps, so
    the daemon's pruner takes the pipeline's lock instead; elsewhere it never does (row locks
    let both write at once)."""
    store = Store.open(store_url)
    try:
        _scenario(store)
        writer = _Writer()
        report = prune(store, SETTINGS, now=NOW, writer=writer)
        assert report.counts["posts"] == 23
        if store.dialect == "sqlite":
            assert writer.taken >= 4  # at least one transaction per kind that deleted
        else:
            assert writer.taken == 0
    finally:
        store.close()
