"""Delivery throughput and latency: posts through the outbox to a local webhook receiver.

Two phases per run, each on a fresh store:

- **burst**: ``--posts`` (10,000) posts committed in batches of 100 as fast as the store takes
  them while the delivery service runs; deliveries/s = posts / (first commit → last arrival).
  Commit → delivery times here include the backlog when commits outrun delivery.
- **paced**: ``--paced-rate`` posts/s (default 1,000) for ``--paced-seconds`` in batches of 10
  every 10 ms, the shape of a busy plant: the latency an unsaturated daemon adds.

The receiver runs in its **own process** (a minimal asyncio HTTP/1.1 server with keep-alive), as
a chat service would: its CPU does not compete with the daemon's threads for the GIL. It stamps
each arrival with ``CLOCK_MONOTONIC`` (``time.monotonic``, system-wide on Linux, so comparable
with the commit stamps of this process), and checks what the outbox promises: every post once
(``duplicates``) and each team's posts in commit order (``out of order``).

    .venv/bin/python bench/delivery.py [--store sqlite|postgres|mysql|URL] [--posts 10000]
        [--teams 4] [--workers 4] [--batch 100] [--paced-rate 1000] [--paced-seconds 5]
        [--separate [--poll 0.05]]

``--separate`` delivers from a ``floorstream deliver`` process (as next to
``floorstream run --no-delivery``) instead of threads of the committing process: the pipeline
keeps its GIL, delivery finds new rows by polling.

``postgres`` / ``mysql`` create a throwaway database on the local server (the test URLs) and
drop it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from floorstream.config import parse_config
from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import Post, Severity, event_id, utcnow
from floorstream.plugins import build_plugins
from floorstream.store.store import CommitBatch, Store

PG = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL = os.environ.get("FLOORSTREAM_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


# -- the receiver (``python bench/delivery.py --serve``, a separate process) -------------------

class Receiver(asyncio.Protocol):
    """Just enough HTTP/1.1: POST with Content-Length, keep-alive, GET /stats."""

    arrivals: list[tuple[str, str, float]] = []  # (team, post id, monotonic)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4:end], self.buffer[end:]
            if head.startswith("GET /stats"):
                payload = json.dumps(self.arrivals).encode()
            else:
                data_ = json.loads(body)
                self.arrivals.append((data_["floorstream:team"],
                                      data_["id"].rsplit(":", 1)[1], time.monotonic()))
                payload = b"{}"
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))


def serve() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Receiver, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def receiver() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.kill()
        proc.wait()


def stats(url: str) -> list[tuple[str, str, float]]:
    with urllib.request.urlopen(f"{url}/stats", timeout=30) as response:
        return [tuple(a) for a in json.loads(response.read())]  # type: ignore[misc]


# -- stores ------------------------------------------------------------------------------------

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


# -- one run -----------------------------------------------------------------------------------

def make_posts(count: int, teams: list[str], tag: str) -> list[Post]:
    now = utcnow()
    return [Post(id=event_id("bench", f"m{n % 50}", f"{tag}{n}", "x"), type="bench",
                 source="bench", subject=f"m{n % 50}", summary=f"bench post {n}",
                 severity=Severity.WARNING, teams=(teams[n % len(teams)],), occurred_at=now)
            for n in range(count)]


def run(kind: str, phase: str, args: argparse.Namespace) -> dict[str, Any]:
    teams = [f"team{n}" for n in range(args.teams)]
    if phase == "burst":
        posts, batch_size, pause = make_posts(args.posts, teams, "b"), args.batch, 0.0
    else:
        total = int(args.paced_rate * args.paced_seconds)
        posts, batch_size = make_posts(total, teams, "p"), 10
        pause = batch_size / args.paced_rate
    with receiver() as url, store_url(kind) as db:
        team_yaml = ", ".join(f"{t}: {{sinks: [hook]}}" for t in teams)
        config_text = (f"store: '{db}'\nteams: {{{team_yaml}}}\nsinks:\n"
                       f"  - {{name: hook, type: webhook, url: '{url}/hook', "
                       f"workers: {args.workers}}}\n")
        plugins = build_plugins(load_entry_points=False)
        config = parse_config(config_text, plugins)
        store = Store.open(db)
        service = DeliveryService(config, plugins, store)
        deliverer = None
        if args.separate:  # `floorstream deliver` in its own process, polling
            path = Path(tempfile.mkdtemp()) / "deliver.yaml"
            path.write_text(config_text, encoding="utf-8")
            deliverer = subprocess.Popen(
                [str(Path(sys.executable).parent / "floorstream"), "deliver", "-c", str(path),
                 "--poll", str(args.poll), "--log-format", "json"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            time.sleep(2.0)  # let it start before the clock does
        else:
            service.start()
        committed: dict[str, float] = {}
        start = time.monotonic()
        for first in range(0, len(posts), batch_size):
            batch = CommitBatch(posts=posts[first:first + batch_size])
            batch.deliveries = [(p.id, p.teams[0], "hook") for p in batch.posts]
            store.commit(batch)
            stamp = time.monotonic()
            committed.update((p.id, stamp) for p in batch.posts)
            service.wake(batch.posts)  # what the pipeline's post_committed hook does
            if pause:
                time.sleep(max(0.0, start + (first + batch_size) / args.paced_rate
                               - time.monotonic()))
        commit_done = time.monotonic()
        outbox = Outbox(store.engine)
        deadline = time.monotonic() + 600
        while outbox.counts().get("delivered", 0) < len(posts) and time.monotonic() < deadline:
            time.sleep(0.05)
        service.stop()
        if deliverer is not None:
            deliverer.send_signal(signal.SIGTERM)
            deliverer.wait(30)
        counts = outbox.counts()
        store.close()
        arrivals = stats(url)
    seen: dict[str, int] = {}
    for _team, post_id, _at in arrivals:
        seen[post_id] = seen.get(post_id, 0) + 1
    order = {t: [p.id for p in posts if p.teams[0] == t] for t in teams}
    got: dict[str, list[str]] = {t: [] for t in teams}
    for team, post_id, _at in arrivals:
        got[team].append(post_id)
    first_arrival = {post_id: at for _team, post_id, at in reversed(arrivals)}
    latencies = sorted(first_arrival[i] - committed[i] for i in committed if i in first_arrival)
    end = max(at for *_x, at in arrivals)
    return {
        "phase": phase, "posts": len(posts), "commit_s": commit_done - start,
        "delivered": len(first_arrival), "elapsed_s": end - start,
        "rate": len(first_arrival) / (end - start),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "duplicates": sum(n - 1 for n in seen.values()),
        "out_of_order": sum(got[t] != order[t] for t in teams),
        "outbox": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", default="sqlite",
                        help="sqlite, postgres, mysql (a throwaway local database) or a URL")
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="posts per commit (burst)")
    parser.add_argument("--paced-rate", type=float, default=1000.0)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--phase", choices=["burst", "paced", "both"], default="both")
    parser.add_argument("--separate", action="store_true",
                        help="deliver from a `floorstream deliver` process (own GIL, polling)")
    parser.add_argument("--poll", type=float, default=0.05, help="its poll interval")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    phases = ["burst", "paced"] if args.phase == "both" else [args.phase]
    where = f"separate process (poll {args.poll} s)" if args.separate else "in process"
    print(f"store: {args.store}, teams: {args.teams}, workers: {args.workers}, "
          f"cpus: {os.cpu_count()}, delivery: {where}")
    for phase in phases:
        r = run(args.store, phase, args)
        print(f"{r['phase']:>5}: {r['posts']} posts committed in {r['commit_s']:.2f} s; "
              f"delivered {r['delivered']} in {r['elapsed_s']:.2f} s = "
              f"{r['rate']:,.0f} deliveries/s; commit → delivery p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms; "
              f"duplicates {r['duplicates']}, teams out of order {r['out_of_order']}; "
              f"outbox {r['outbox']}")


if __name__ == "__main__":
    main()
