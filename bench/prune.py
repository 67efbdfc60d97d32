"""Retention under load: prune 1,000,000 old posts while the pipeline commits a steady stream.

The store is filled with ``--old`` posts (default 1,000,000) made 200 days ago, each with a
team row and a delivered outbox row (so the prune deletes three rows per post, in the
``delivered`` pass and the ``posts`` pass). Then a pipeline (the daemon's own
:class:`~floorstream.pipeline.Pipeline`, no detectors, flood control off) gets ``--rate``
events a second (default 200) from a producer thread, each one a post with its outbox row:

1. **baseline**: ``--seconds`` (30) of the stream alone;
2. **pruning**: the stream while :func:`floorstream.retention.prune` (the daemon's retention
   code, ``retention.batch`` 1,000 rows per transaction, ``retention.pause`` 50 ms between
   them) deletes the old rows, until it is done;
3. **after**: ``--seconds`` more of the stream alone.

For each phase it reports the commit transaction's p50 / p99 / max (``Pipeline.on_commit``:
what a commit costs, lock waits included) and submit → committed p99 (what a source waits for
its ack), and the ratio of the pruning p99 to the baseline p99 (the bar: at most 2).

    .venv/bin/python bench/prune.py [--store postgres|sqlite|mysql|URL] [--old 1000000]
        [--rate 200] [--seconds 30] [--batch 1000] [--pause 0.05]

``postgres`` / ``mysql`` create a throwaway database on the local server and drop it after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from floorstream.config import parse_config
from floorstream.config.settings import RetentionSettings
from floorstream.model import Event, Severity, utcnow
from floorstream.pipeline import Pipeline
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.retention import prune
from floorstream.store import schema
from floorstream.store.store import Store

PG = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL = os.environ.get("FLOORSTREAM_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


@contextmanager
def store_url(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        return
    if kind not in ("postgres", "mysql"):
        yield kind
        return
    base = make_url(PG if kind == "postgres" else MYSQL)
    name = f"fs_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    quote = '"' if kind == "postgres" else "`"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgres" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
        admin.dispose()


def fill(store: Store, count: int, chunk: int = 20_000) -> float:
    """``count`` posts made 200 days ago, each with a team row and a delivered outbox row
    (no message reference). Bulk inserts, not the pipeline: this is the history."""
    started = time.perf_counter()
    old = utcnow() - timedelta(days=200)
    p, pt, d = schema.posts, schema.post_teams, schema.deliveries
    for first in range(0, count, chunk):
        numbers = range(first, min(count, first + chunk))
        with store.engine.begin() as conn:
            conn.execute(p.insert(), [{
                "id": f"old{n:029d}", "type": "machine.state_changed", "source": "presses",
                "subject": f"press-{n % 500}", "severity": 2,
                "summary": f"press-{n % 500}: state RUNNING → STOPPED", "body": None,
                "tags": ["area:pressing"], "links": {}, "fields": {"n": n},
                "routing": [{"team": "maintenance", "rule": "routes[0]"}], "clears": None,
                "occurred_at": old, "created_at": old, "thread": f"press-{n % 500}",
                "relation": "new", "refers_to": None} for n in numbers])
            seqs = {post_id: seq for post_id, seq in conn.execute(select(p.c.id, p.c.seq).where(
                p.c.id.in_([f"old{n:029d}" for n in numbers])))}
            conn.execute(pt.insert(), [{
                "team": "maintenance", "post_id": post_id, "post_seq": seq, "severity": 2,
                "created_at": old} for post_id, seq in seqs.items()])
            conn.execute(d.insert(), [{
                "post_id": post_id, "team": "maintenance", "sink": "chat",
                "status": "delivered", "attempts": 1, "next_attempt_at": old,
                "created_at": old, "delivered_at": old} for post_id in seqs])
        if first and first % 200_000 == 0:
            print(f"  filled {first:,} posts", flush=True)
    return time.perf_counter() - started


class Stream:
    """A producer thread submitting ``rate`` events a second, and the commit timings."""

    def __init__(self, pipeline: Pipeline, rate: float) -> None:
        self.pipeline = pipeline
        self.rate = rate
        self.stop = threading.Event()
        self.commits: list[tuple[float, float]] = []  # (monotonic end, seconds)
        self.acks: list[tuple[float, float]] = []  # (monotonic, submit → ack seconds)
        self.sent = 0
        pipeline.on_commit = lambda took: self.commits.append((time.monotonic(), took))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        due = time.monotonic()
        while not self.stop.is_set():
            n = self.sent
            submitted = time.monotonic()
            event = Event.create(type="machine.state_changed", source="line",
                                 subject=f"m{n % 200}", position=f"live{n}",
                                 occurred_at=utcnow(), severity=Severity.WARNING,
                                 fields={"n": n})
            self.pipeline.submit(Envelope(
                "line", event=event,
                ack=lambda s=submitted: self.acks.append((time.monotonic(),
                                                           time.monotonic() - s))))
            self.sent += 1
            due += interval
            wait = due - time.monotonic()
            if wait > 0:
                self.stop.wait(wait)

    def window(self, start: float, end: float) -> dict[str, Any]:
        commits = sorted(t for at, t in self.commits if start <= at < end)
        acks = sorted(t for at, t in self.acks if start <= at < end)
        return {"commits": len(commits), "events": len(acks),
                "commit_p50_ms": _ms(_pct(commits, 50)), "commit_p99_ms": _ms(_pct(commits, 99)),
                "commit_max_ms": _ms(commits[-1] if commits else None),
                "ack_p99_ms": _ms(_pct(acks, 99))}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with store_url(args.store) as url:
        store = Store.open(url)
        print(f"filling {args.old:,} old posts into {store.dialect}…", flush=True)
        filled = fill(store, args.old)
        print(f"  done in {filled:.0f} s", flush=True)
        plugins = build_plugins(load_entry_points=False)
        config = parse_config(f"store: '{url}'\nflood: null\nteams: {{ops: {{sinks: [chat]}}}}\n"
                              "default_team: ops\nsinks:\n"
                              "  - {name: chat, type: webhook, url: 'http://127.0.0.1:9/x'}\n",
                              plugins)
        pipeline = Pipeline(Processor(config, plugins, states=store), store,
                            config.settings.pipeline, plugins)
        stream = Stream(pipeline, args.rate)
        pipeline.start()
        stream.thread.start()
        time.sleep(2)  # warm up: connections, first batches
        t0 = time.monotonic()
        time.sleep(args.seconds)
        t1 = time.monotonic()
        settings = RetentionSettings(posts="90d", delivered="30d", failed=None,
                                     quarantine=None, detector_state=None, erp_changes=None,
                                     batch=args.batch, pause=args.pause, hold=args.hold)
        started = time.perf_counter()
        report = prune(store, settings, progress=None, writer=pipeline.lock)  # as the daemon
        prune_s = time.perf_counter() - started
        t2 = time.monotonic()
        time.sleep(args.seconds)
        t3 = time.monotonic()
        stream.stop.set()
        stream.thread.join()
        pipeline.stop()
        with store.engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(schema.posts)).scalar_one()
        store.close()
    base, during, after = stream.window(t0, t1), stream.window(t1, t2), stream.window(t2, t3)

    def ratio_to(reference: dict[str, Any]) -> float | None:
        if not reference["commit_p99_ms"] or not during["commit_p99_ms"]:
            return None
        return round(during["commit_p99_ms"] / reference["commit_p99_ms"], 2)
    return {
        "store": args.store, "old_posts": args.old, "rate": args.rate,
        "prune": {"seconds": round(prune_s, 1), "deleted": report.counts,
                  "posts_per_s": round(report.counts.get("posts", 0) / prune_s),
                  "batch": args.batch, "pause_s": args.pause, "hold_s": args.hold},
        "baseline": base, "pruning": during, "after": after,
        # a loaded machine moves p99 a lot between two quiet windows: both are references
        "p99_ratio": ratio_to(base), "p99_ratio_to_after": ratio_to(after),
        "posts_left": left, "live_posts": stream.sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="postgres")
    parser.add_argument("--old", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--hold", type=float, default=None,
                        help="retention.hold (default: auto)")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    b, d = result["baseline"], result["pruning"]
    print(f"\ncommit p99: {b['commit_p99_ms']} ms without pruning, {d['commit_p99_ms']} ms "
          f"while pruning ({result['p99_ratio']}x; {result['p99_ratio_to_after']}x of the "
          f"{result['after']['commit_p99_ms']} ms after it; the bar: at most 2x); ack p99 "
          f"{b['ack_p99_ms']} → {d['ack_p99_ms']} ms; "
          f"{result['prune']['deleted'].get('posts', 0):,} "
          f"posts pruned in {result['prune']['seconds']} s")


if __name__ == "__main__":
    main()
