"""Text search pages of the web feed: the store's text index against the scan it replaced.

    python bench/web_search.py sqlite:////tmp/search.db [POSTS]
    python bench/web_search.py postgresql+psycopg://postgres@127.0.0.1/fs_search [POSTS]
    python bench/web_search.py "mysql+pymysql://root@127.0.0.1/fs_search?charset=utf8mb4"
    python bench/web_search.py --commit-cost [ROUNDS]

``--commit-cost``: what keeping the SQLite index costs a commit. 20,000 posts through
``Store.commit`` in commits of 100 into a fresh SQLite store, with the index and with its
statement replaced by a no-op, rounds interleaved; CPU microseconds per post.

Loads POSTS posts (300,000 by default; a store that has them already is kept) with the
driver's executemany, six words each from twenty, "zebra" in every 20,000th post (rare) and
"spindle" in about every fourth (common), alternately in two teams; then times the first
page (50 posts) of the everything feed and of a team feed searched for each word, through
``FeedQueries.page`` (the index) and through the old condition (``LIKE '%word%'`` on the
lowered summary and body, walked back from the newest post). Medians of 7 (3 for the scan);
milliseconds of wall clock and of this process's CPU (all of SQLite's work; the database
server's own time is in the wall clock only).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select

from floorstream.model import Post
from floorstream.store import schema
from floorstream.store.store import Store
from floorstream.web.queries import FeedFilter, FeedQueries, posts_by_seq

VOCABULARY = ["press", "stopped", "running", "fault", "temperature", "above", "limit", "order",
              "confirmed", "delayed", "shipment", "container", "discharged", "spindle", "oven",
              "line", "material", "waiting", "quantity", "changed"]
COLUMNS = ("id, type, source, subject, severity, summary, body, tags, links, fields, routing, "
           "occurred_at, created_at, thread, relation")


def load(store: Store, url: str, posts: int) -> None:
    have = store.count_posts()
    if have >= posts:
        return
    rng = random.Random(7)
    mark = "?" if url.startswith("sqlite") else "%s"
    stamp = "2026-12-01 10:00:00.000000"
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for start in range(have, posts, 50_000):
            rows = []
            for n in range(start, min(posts, start + 50_000)):
                words = " ".join(rng.choice(VOCABULARY) for _ in range(6))
                rare = " zebra" if n % 20_000 == 7 else ""
                subject = f"press-{n % 300}"
                rows.append((f"b{n}", "machine.state_changed", "presses", subject, 10,
                             f"{subject} {words}{rare}", None, "[]", "{}", "{}", "[]", stamp,
                             stamp, subject, "new"))
            cursor.executemany(f"INSERT INTO fs_posts ({COLUMNS}) VALUES "
                               f"({', '.join([mark] * 15)})", rows)
            raw.commit()
        cursor.execute(
            "INSERT INTO fs_post_teams (team, post_id, post_seq, severity, created_at) "
            "SELECT CASE WHEN MOD(seq, 2) = 0 THEN 'maintenance' ELSE 'production' END, id, "
            f"seq, severity, created_at FROM fs_posts WHERE seq > {have}")
        if url.startswith("sqlite"):  # a bulk load goes around Store.commit: index it
            cursor.execute(schema.SQLITE_TEXT_REBUILD)
        else:
            analyze = "ANALYZE TABLE" if url.startswith("mysql") else "ANALYZE"
            cursor.execute(f"{analyze} fs_posts")
            cursor.execute(f"{analyze} fs_post_teams")
        raw.commit()
    finally:
        raw.close()


def scanned_page(store: Store, team: str | None, needle: str) -> list[tuple[int, Post]]:
    """The condition before schema v8: a substring of the lowered text, no index."""
    p, pt = schema.posts, schema.post_teams
    found = or_(func.lower(p.c.summary).contains(needle, autoescape=True),
                func.lower(func.coalesce(p.c.body, "")).contains(needle, autoescape=True))
    with store.engine.connect() as conn:
        if team is None:
            query = select(p.c.seq).where(found).order_by(p.c.seq.desc())
        else:
            query = select(pt.c.post_seq).join(p, p.c.seq == pt.c.post_seq).where(
                pt.c.team == team, found).order_by(pt.c.post_seq.desc())
        return posts_by_seq(conn, list(conn.execute(query.limit(50)).scalars()))


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def commit_cost(rounds: int) -> None:
    import tempfile

    from floorstream.model import utcnow
    from floorstream.store.store import CommitBatch

    indexed = schema.SQLITE_TEXT_ADD_SQL
    skipped = "SELECT 1 WHERE 0 AND 1 IN {seqs}"
    for _ in range(rounds):
        for label, statement in (("no index", skipped), ("index", indexed)):
            schema.SQLITE_TEXT_ADD_SQL = statement  # (read by Store.commit at each commit)
            store = Store.open(f"sqlite:///{tempfile.mkdtemp()}/cost.db")
            posts = [Post(id=f"p{n}", type="machine.state_changed", source="presses",
                          subject=f"press-{n % 50}", severity=10, teams=("maintenance",),
                          summary=f"Press {n % 50} stopped after {n} cycles, 81.5 °C",
                          occurred_at=utcnow()) for n in range(20_000)]
            cpu = time.process_time()
            for start in range(0, len(posts), 100):
                store.commit(CommitBatch(posts=posts[start:start + 100]))
            spent = time.process_time() - cpu
            store.close()
            print(f"{label:8}  {spent / len(posts) * 1e6:5.1f} us CPU per post", flush=True)
    schema.SQLITE_TEXT_ADD_SQL = indexed


def main() -> None:
    if sys.argv[1] == "--commit-cost":
        commit_cost(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
        return
    url = sys.argv[1]
    posts = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
    store = Store.open(url)
    try:
        load(store, url, posts)
        queries = FeedQueries(store)
        for team in (None, "maintenance"):
            for word in ("zebra", "spindle"):
                def indexed(team: str | None = team, word: str = word) -> Any:
                    return queries.page(teams=[team] if team else None, readable=None,
                                        filters=FeedFilter(text=word))

                def scanned(team: str | None = team, word: str = word) -> Any:
                    return scanned_page(store, team, word)

                shown = len(indexed().posts)
                index, scan = timed(indexed, 7), timed(scanned, 3)
                print(f"{'everything' if team is None else 'team':10} {word:8} "
                      f"posts={shown:2}  index: wall {index[0]:7.1f} ms cpu {index[1]:6.1f} ms"
                      f"   scan: wall {scan[0]:8.1f} ms cpu {scan[1]:7.1f} ms", flush=True)
    finally:
        store.close()


if __name__ == "__main__":
    main()
