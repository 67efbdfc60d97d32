"""Delivery throughput: 10,000 posts through the outbox to a local webhook server.

Posts are committed in batches of 100 (as the pipeline would) while the delivery service runs;
the server records when each post arrives. Prints deliveries/s and the commit → delivery time
(p50, p99, max). ``--store`` picks the database (SQLite file by default), ``--teams`` how many
lanes run in parallel, ``--workers`` threads per sink.

    .venv/bin/python bench/delivery.py [--posts 10000] [--teams 4] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from floorstream.config import parse_config
from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import Post, Severity, event_id, utcnow
from floorstream.plugins import build_plugins
from floorstream.store.store import CommitBatch, Store

ARRIVED: dict[str, float] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        post_id = json.loads(body)["id"].rsplit(":", 1)[1]
        with LOCK:
            ARRIVED[post_id] = time.perf_counter()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="posts per commit")
    parser.add_argument("--store", default=None)
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    store_url = args.store or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    teams = [f"team{n}" for n in range(args.teams)]
    team_yaml = ", ".join(f"{t}: {{sinks: [hook]}}" for t in teams)
    text = (f"store: {store_url}\nteams: {{{team_yaml}}}\nsinks:\n"
            f"  - {{name: hook, type: webhook, url: '{url}', workers: {args.workers}}}\n")
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(text, plugins)
    store = Store.open(store_url)
    service = DeliveryService(config, plugins, store, poll=0.05, batch=200)
    service.start()

    committed: dict[str, float] = {}
    start = time.perf_counter()
    now = utcnow()
    for first in range(0, args.posts, args.batch):
        batch = CommitBatch()
        for n in range(first, min(first + args.batch, args.posts)):
            team = teams[n % len(teams)]
            post = Post(id=event_id("bench", f"m{n % 50}", str(n), "x"), type="bench",
                        source="bench", subject=f"m{n % 50}", summary=f"bench post {n}",
                        severity=Severity.WARNING, teams=(team,), occurred_at=now)
            batch.posts.append(post)
            batch.deliveries.append((post.id, team, "hook"))
        store.commit(batch)
        t = time.perf_counter()
        for post in batch.posts:
            committed[post.id] = t
        service.wake()
    commit_done = time.perf_counter()
    deadline = time.monotonic() + 600
    while len(ARRIVED) < args.posts and time.monotonic() < deadline:
        time.sleep(0.01)
    end = max(ARRIVED.values())
    service.stop()
    outbox = Outbox(store.engine)
    counts = outbox.counts()
    store.close()
    server.shutdown()

    latencies = sorted(ARRIVED[i] - committed[i] for i in committed if i in ARRIVED)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"store: {store.engine.url.get_backend_name()}, teams: {args.teams}, "
          f"workers: {args.workers}, posts: {args.posts}")
    print(f"committed {args.posts} posts in {commit_done - start:.2f} s")
    print(f"delivered {len(ARRIVED)} in {end - start:.2f} s: "
          f"{len(ARRIVED) / (end - start):,.0f} deliveries/s")
    print(f"commit → delivery: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"outbox: {counts}")


if __name__ == "__main__":
    main()
