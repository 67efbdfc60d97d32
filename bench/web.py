"""The web feed under load: page times with a million posts, live latency with many clients.

Two parts, on SQLite and/or PostgreSQL (``--store``):

- **the store**: ``--posts`` (1,000,000) posts, bulk-loaded once (executemany on SQLite, COPY
  on PostgreSQL: ~1 minute each) and kept for the next runs: ``--dir``/webbench_1m.db
  (default /tmp/webbench) and the database ``fs_webbench_1m`` on the local PostgreSQL (the
  name follows ``--posts``; ``--fresh`` reloads). ``--teams`` teams, a post in one or two of
  them, ``--threads`` subjects (one thread each). Opening a store upgrades its schema.
- **pages**: a ``floorstream web`` process serves the store; the bench asks it, one request at
  a time over HTTP, for the team feed's first page and deep pages (a cursor at a random
  depth), the everything feed, the JSON feed, thread pages, a severity filter and text
  searches. ``server`` is the server's own ``Server-Timing`` (request start to last body byte;
  ``server_cpu``: the web process's CPU meanwhile), ``client`` the wall clock here.
- **live**: a ``floorstream web`` process serves the same store; ``--clients`` (500)
  event-stream clients follow one team, in ``--client-processes`` (4) processes of
  ``bench/web_clients.py`` (raw asyncio sockets, a regular expression per batch of bytes:
  cheap, so the bench measures the server); a publisher process commits ``--rate`` posts/s
  through the pipeline for ``--seconds`` (what is due, every 10 ms, in one pipeline batch, as
  the daemon commits); each post carries the time it was made, each client notes when it reads
  it: publish → seen per (post, client); and whether every client saw every post exactly
  once. The web process's CPU per post is the load-robust figure.

Numbers are taken on whatever machine runs this; the development machine has 2 cores shared
with other work, so the JSON says the load average too.

    .venv/bin/python bench/web.py [--store sqlite,postgres] [--posts 1000000] [--clients 500]
        [--client-processes 2] [--rate 100] [--seconds 10] [--skip-pages] [--skip-live]
        [--requests 300] [--search-requests 30] [--fresh]
    .venv/bin/python bench/web.py --pipeline-ab 1,200 [--ab-posts 5000] [--ab-rounds 3]

``--pipeline-ab`` measures only the daemon's flat-out pipeline next to its own web feed with
0, 1 and 200 event streams open (see ``pipeline_ab``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, func, select, text

from floorstream.config import parse_mapping
from floorstream.model import utcnow
from floorstream.plugins import build_plugins
from floorstream.store import schema
from floorstream.store.store import Store

PG_ADMIN = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1/test")
TOKEN = "bench-token-0123456789abcdef"
#: seconds the clients keep reading after the publisher is done
DRAIN = float(os.environ.get("BENCH_DRAIN", "5"))


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(statistics.median(values), 2),
            "p99": round(p99(values), 2), "max": round(max(values), 2)}


def store_name(posts: int) -> str:
    """The kept store's name for a post count (``webbench_1m``): a small trial run does not
    replace the million-post store."""
    if posts % 1_000_000 == 0:
        return f"webbench_{posts // 1_000_000}m"
    if posts % 1000 == 0:
        return f"webbench_{posts // 1000}k"
    return f"webbench_{posts}"


def store_url(kind: str, directory: Path, posts: int) -> str:
    """The SQLite file in ``directory`` / the PostgreSQL database ``fs_<name>`` (created when
    missing) holding the bench's ``posts`` posts."""
    if kind == "sqlite":
        return f"sqlite:///{directory}/{store_name(posts)}.db"
    database = f"fs_{store_name(posts)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": database}).scalar():
            conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + database


def mapping(url: str, teams: list[str]) -> dict[str, Any]:
    return {"store": url, "default_team": teams[0], "teams": {t: {} for t in teams},
            "routes": [{"match": {"source": "bench"}, "teams": [teams[0]]}],
            "flood": None,
            "web": {"people": {"bench": {"name": "Bench"}},
                    "tokens": [{"person": "bench", "token": TOKEN}]}}


def _generated(posts: int, teams: list[str], threads: int
               ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The bench's posts (and their team rows), the same ones on every store and run."""
    rng = random.Random(7)
    now = utcnow()
    for seq in range(1, posts + 1):
        subject = f"machine-{rng.randrange(threads):05d}"
        at = now - timedelta(seconds=(posts - seq) * 2)
        severity = rng.choice((10, 10, 10, 20, 30, 40))
        chosen = [teams[seq % len(teams)]]
        if seq % 7 == 0:
            chosen.append(teams[(seq + 1) % len(teams)])
        post = {"seq": seq, "id": f"{seq:032x}", "type": "machine.state_changed",
                "source": f"line-{seq % 10}", "subject": subject,
                "severity": severity, "summary": f"{subject} changed state ({seq})",
                "body": None, "tags": [], "links": {}, "fields": {},
                "routing": [{"team": t, "rule": "bench"} for t in chosen],
                "clears": None, "occurred_at": at, "created_at": at,
                "thread": subject, "relation": "new", "refers_to": None}
        yield post, [{"team": t, "post_id": post["id"], "post_seq": seq,
                      "severity": severity, "created_at": at} for t in chosen]


def _bound(table: Any, dialect: Any) -> list[Callable[[Any], Any]]:
    """Each column's SQLAlchemy bind processor (JSON → text, UTC stamps → the store's
    layout): the rows go to the driver as SQLAlchemy would send them, without its per-row
    overhead."""
    found: list[Callable[[Any], Any]] = []
    for column in table.columns:
        processor = column.type.bind_processor(dialect)
        found.append(processor if processor is not None else _same)
    return found


def _same(value: Any) -> Any:
    return value


def _bulk_insert(store: Store, posts: int, teams: list[str], threads: int) -> None:
    """SQLite: the driver's executemany in one transaction; PostgreSQL: COPY. (SQLAlchemy
    inserts of dicts took 636 s / 1,034 s for a million posts.)"""
    dialect = store.engine.dialect
    tables = (schema.posts, schema.post_teams)
    convert = {table.name: _bound(table, dialect) for table in tables}
    names = {table.name: [c.name for c in table.columns] for table in tables}

    def row(table: Any, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(f(values[n]) for f, n in zip(convert[table.name], names[table.name],
                                                  strict=True))

    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if store.dialect == "postgresql":
            copies = {t.name: f"COPY {t.name} ({', '.join(names[t.name])}) FROM STDIN"
                      for t in tables}
            made = _generated(posts, teams, threads)
            done = 0
            while done < posts:  # a COPY per table and 100,000 posts
                chunk = list(itertools.islice(made, 100_000))
                with cursor.copy(copies["fs_posts"]) as copy:
                    for post, _ in chunk:
                        copy.write_row(row(schema.posts, post))
                with cursor.copy(copies["fs_post_teams"]) as copy:
                    for _, team_rows in chunk:
                        for team_row in team_rows:
                            copy.write_row(row(schema.post_teams, team_row))
                raw.commit()
                done += len(chunk)
                print(f"  loaded {done:,} posts", file=sys.stderr, flush=True)
        else:
            marks = {t.name: f"INSERT INTO {t.name} ({', '.join(names[t.name])}) VALUES "
                             f"({', '.join('?' * len(names[t.name]))})" for t in tables}
            made = _generated(posts, teams, threads)
            done = 0
            while done < posts:
                chunk = list(itertools.islice(made, 100_000))
                cursor.executemany(marks["fs_posts"],
                                   [row(schema.posts, post) for post, _ in chunk])
                cursor.executemany(marks["fs_post_teams"],
                                   [row(schema.post_teams, t) for _, ts in chunk for t in ts])
                raw.commit()
                done += len(chunk)
                print(f"  loaded {done:,} posts", file=sys.stderr, flush=True)
        cursor.close()
    finally:
        raw.close()


def load(url: str, posts: int, teams: list[str], threads: int, fresh: bool) -> dict[str, Any]:
    """Bulk-load ``posts`` posts (not the pipeline: a million pipeline commits would take the
    bench's whole budget); a store that has them already is kept (``--fresh`` reloads)."""
    store = Store.open(url)
    have = store.count_posts()
    if have >= posts and not fresh:
        store.close()
        return {"loaded": 0, "present": have}
    with store.engine.begin() as conn:
        for table in (schema.post_teams, schema.posts):
            conn.execute(table.delete())
    started = time.perf_counter()
    _bulk_insert(store, posts, teams, threads)
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('fs_posts', 'seq'), "
                              "(SELECT max(seq) FROM fs_posts))"))
            conn.execute(text("ANALYZE fs_posts"))
            conn.execute(text("ANALYZE fs_post_teams"))
        else:
            # the posts went in around Store.commit, which keeps the text index (docs/web.md)
            if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'fs_posts_fts'"))\
                    .scalar():
                conn.execute(text("INSERT INTO fs_posts_fts(fs_posts_fts) VALUES ('rebuild')"))
            conn.execute(text("ANALYZE"))
    took = time.perf_counter() - started
    store.close()
    return {"loaded": posts, "load_seconds": round(took, 1)}


def pages(url: str, teams: list[str], requests: int, directory: Path,
          search_requests: int = 30) -> dict[str, Any]:
    """Each page ``requests`` times (after 10 to warm up; a search ``search_requests`` times,
    after 2), one request at a time, from a
    ``floorstream web`` process over HTTP: ``server`` is its ``Server-Timing`` (request start
    to last body byte, in the server; ``cpu``: the process's CPU meanwhile), ``client`` the
    wall clock here (adds the client's and the machine's queueing)."""
    import http.client

    store = Store.open(url)
    with store.engine.connect() as conn:
        top = int(conn.execute(select(func.max(schema.posts.c.seq))).scalar() or 0)
        picks = random.Random(5).sample(range(1, top + 1), min(top, 500))
        existing = list(conn.execute(select(schema.posts.c.thread).distinct()
                                     .where(schema.posts.c.seq.in_(picks))).scalars())
    store.close()
    config_path = directory / "web-bench-pages.yaml"
    config_path.write_text(json.dumps(mapping(url, teams)), encoding="utf-8")
    rng = random.Random(11)
    cases = {
        "team_feed_first_page": lambda: f"/teams/{rng.choice(teams)}",
        "team_feed_deep_page": lambda: f"/teams/{rng.choice(teams)}?before="
                                       f"{rng.randrange(top // 10, top)}",
        "everything_first_page": lambda: "/",
        "thread_page": lambda: f"/threads/{quote(rng.choice(existing), safe='')}",
        "json_feed_page": lambda: f"/api/feed?team={rng.choice(teams)}&before="
                                  f"{rng.randrange(top // 10, top)}",
        "team_feed_severity_filter": lambda: f"/teams/{rng.choice(teams)}?severity=critical",
        # text search (fewer requests, ``--search-requests``: a slow one must not stall the
        # bench): a word of one subject's ~50 posts among the million (the search must not
        # scan the team), the same typed as the subject (its first word is in every post),
        # and a word in no post
        "search_rare_word": lambda: f"/teams/{rng.choice(teams)}?q={rng.randrange(20_000):05d}",
        "search_subject": lambda: f"/teams/{rng.choice(teams)}?q=machine-"
                                  f"{rng.randrange(20_000):05d}",
        "search_no_match": lambda: f"/teams/{rng.choice(teams)}?q=nothing{rng.randrange(99)}",
    }
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"}
    results: dict[str, Any] = {}
    server, port = serve(config_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for name, make in cases.items():
            server_ms: list[float] = []
            cpu_ms: list[float] = []
            client_ms: list[float] = []
            count, warm = (search_requests, 2) if name.startswith("search_") else (requests, 10)
            for n in range(count + warm):  # the first ones warm up: caches, templates
                path = make()
                started = time.perf_counter()
                conn.request("GET", path, headers=headers)
                answer = conn.getresponse()
                answer.read()
                took = (time.perf_counter() - started) * 1000
                assert answer.status == 200, (name, path, answer.status)
                if n < warm:
                    continue
                timing = dict(part.strip().split(";dur=")
                              for part in answer.headers["server-timing"].split(","))
                server_ms.append(float(timing["app"]))
                cpu_ms.append(float(timing["cpu"]))
                client_ms.append(took)
            results[name] = {"server": summary(server_ms), "server_cpu": summary(cpu_ms),
                             "client": summary(client_ms)}
        conn.close()
    finally:
        server.terminate()
        server.wait(20)
    return results


PUBLISHER = """
import sys, time, json, floorstream
from floorstream.config import parse_mapping
from floorstream.model import Event, utcnow
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope
mapping, rate, seconds = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
stream = floorstream.open(parse_mapping(mapping, build_plugins()))
count, started = 0, time.monotonic()
run = f"{time.time():.6f}"  # keys unique per run: a rerun on the kept store posts anew
while time.monotonic() - started < seconds:
    due = int((time.monotonic() - started) * rate) + 1 - count
    if due <= 0:
        time.sleep(min(0.01, 1 / rate))
        continue
    # what is due now, in one commit (a pipeline batch), each stamped just before it
    batch = []
    for _ in range(due):
        batch.append(Envelope("bench", event=Event.create(
            type="bench.tick", source="bench", subject=f"live-{count % 50}",
            position=f"{run}-{count}", occurred_at=utcnow(),
            fields={"summary": f"bench {time.monotonic():.6f} {count}"})))
        count += 1
    stream.pipeline.run_now(batch)
print(count, flush=True)
stream.close()
"""


CLIENT_SCRIPT = Path(__file__).with_name("web_clients.py")


def serve(config_path: Path) -> tuple[subprocess.Popen[str], int]:
    """``floorstream web`` on ``config_path`` in a process of its own; returns it and its
    port once it serves."""
    floorstream = str(Path(sys.executable).parent / "floorstream")
    port = 18000 + random.randrange(2000)
    server = subprocess.Popen([floorstream, "web", "-c", str(config_path), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    for line in server.stdout:  # log lines first, then the URL
        if "floorstream web: serving" in line:
            return server, port
    server.wait(20)
    raise RuntimeError("floorstream web did not start")


def start_clients(port: int, clients: int, processes: int, path: str
                  ) -> list[subprocess.Popen[str]]:
    """``clients`` event streams in ``processes`` processes of ``web_clients.py``; returns
    when every stream is open."""
    started = []
    for n in range(processes):
        share = clients // processes + (1 if n < clients % processes else 0)
        if share:
            started.append(subprocess.Popen(
                [sys.executable, str(CLIENT_SCRIPT), str(port), str(share), TOKEN, path],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True))
    for process in started:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != "ready":
            stop_clients(started)
            raise RuntimeError(f"event-stream clients: {line!r}")
    return started


def stop_clients(started: list[subprocess.Popen[str]]) -> dict[str, Any]:
    """SIGTERM each client process (by its pid) and merge what they report."""
    reports = []
    for process in started:
        process.terminate()
    for process in started:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip():
            reports.append(json.loads(line))
        process.wait(20)
    latency: dict[int, int] = {}
    for report in reports:
        for ms, count in report["latency_ms"].items():
            latency[int(ms)] = latency.get(int(ms), 0) + count
    return {"latency_ms": latency,
            **{key: sum(r[key] for r in reports)
               for key in ("opened", "failed", "posts_seen", "post_events", "repeats", "more",
                           "closed_early", "bytes", "cpu_s")},
            "distinct_per_client_min": min(r["distinct_per_client_min"] for r in reports),
            "distinct_per_client_max": max(r["distinct_per_client_max"] for r in reports),
            "lowest_last_id": min(r["lowest_last_id"] for r in reports)}


def histogram_summary(counts: dict[int, int]) -> dict[str, float]:
    """p50 / p99 / max of a histogram of whole milliseconds."""
    total = sum(counts.values())
    if not total:
        return {"n": 0}
    found: dict[str, float] = {"n": total, "max": max(counts)}
    running = 0
    for ms in sorted(counts):
        running += counts[ms]
        if "p50" not in found and running >= total * 0.5:
            found["p50"] = ms
        if running >= total * 0.99:
            found["p99"] = ms
            break
    return found


def live(url: str, teams: list[str], clients: int, rate: float, seconds: float,
         directory: Path, processes: int) -> dict[str, Any]:
    """``clients`` event streams (in ``processes`` client processes) on a ``floorstream web``
    process while a publisher process commits ``rate`` posts/s for ``seconds``."""
    import psutil

    config_path = directory / "web-bench.yaml"
    data = mapping(url, teams)
    config_path.write_text(json.dumps(data), encoding="utf-8")
    server, port = serve(config_path)
    try:
        started = start_clients(port, clients, processes,
                                f"/events?scope=team&team={teams[0]}")
        watched = psutil.Process(server.pid)
        cpu_before = sum(watched.cpu_times()[:2])
        wall_before = time.monotonic()
        done = subprocess.run([sys.executable, "-c", PUBLISHER, json.dumps(data), str(rate),
                               str(seconds)], capture_output=True, text=True, check=True)
        published = int(done.stdout.strip().splitlines()[-1])
        time.sleep(DRAIN)  # the last posts' way to the clients
        cpu = sum(watched.cpu_times()[:2]) - cpu_before
        wall = time.monotonic() - wall_before
        got = stop_clients(started)
    finally:
        server.terminate()
        server.wait(20)
    return {"clients": clients, "client_processes": processes, "rate_per_s": rate,
            "seconds": seconds, "published": published,
            "deliveries_expected": published * clients, "deliveries_seen": got["posts_seen"],
            # every client saw every post exactly once: min = max = published, no repeats
            "distinct_per_client_min_max": [got["distinct_per_client_min"],
                                            got["distinct_per_client_max"]],
            "repeats": got["repeats"], "more_events": got["more"],
            "streams_closed_early": got["closed_early"],
            "publish_to_seen_ms": histogram_summary(got["latency_ms"]),
            # the web process's CPU (user+system) over the run: what a quiet machine would
            # need, whatever the load here
            "server_cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "server_cpu_ms_per_post": round(cpu * 1000 / max(1, published), 2),
            "clients_cpu_s": round(got["cpu_s"], 2), "mb_received": got["bytes"] // 10**6,
            "load_1m_after": round(os.getloadavg()[0], 2)}


def pipeline_ab(directory: Path, streams: list[int], posts: int, rounds: int) -> dict[str, Any]:
    """The daemon's pipeline throughput with its own web feed serving N event streams (in
    another process, each following the team every post goes to), for each N in ``streams``
    (0: none), rounds interleaved after one warm-up round of each that is not counted.

    Per round the clients report what they received (``post`` and ``more`` events, summed
    over the clients) and the lowest, over the clients, of the last event id each saw — the
    round's last post's seq when every client was told of every post (one by one or by a
    ``more``); the clients are stopped only after the watcher caught up (not timed)."""
    from floorstream.daemon import Daemon
    from floorstream.model import Event
    from floorstream.processing import Envelope

    teams = ["team-0"]
    path = directory / f"ab-{time.time():.0f}.db"  # a store of its own, removed after
    data = mapping(f"sqlite:///{path}", teams)
    data["web"]["port"] = 0
    plugins = build_plugins()
    daemon = Daemon(parse_mapping(data, plugins), plugins)
    daemon.start()
    assert daemon.web is not None
    hub = daemon.web.app.state.web.hub
    rates: dict[int, list[float]] = {n: [] for n in streams}
    #: CPU of the daemon's other threads (web server, watcher, delivery…) per 1,000 posts:
    #: what competes with the pipeline for the GIL, steadier than the rate on a busy machine
    others: dict[int, list[float]] = {n: [] for n in streams}
    received: dict[int, list[dict[str, Any]]] = {n: [] for n in streams if n}
    count = 0
    try:
        for round_no in range(rounds + 1):
            for clients in streams:
                readers = (start_clients(daemon.web.port, clients, 1,
                                         "/events?scope=team&team=team-0") if clients else [])
                started = time.perf_counter()
                process_cpu, own_cpu = time.process_time(), time.thread_time()
                for _ in range(posts // 50):
                    batch = []
                    for _ in range(50):
                        batch.append(Envelope("bench", event=Event.create(
                            type="bench.tick", source="bench", subject=f"ab-{count % 50}",
                            position=str(count), occurred_at=utcnow(),
                            fields={"summary": f"post {count}"})))
                        count += 1
                    daemon.pipeline.run_now(batch)
                rate = posts / (time.perf_counter() - started)
                other = (time.process_time() - process_cpu) - (time.thread_time() - own_cpu)
                if round_no:
                    rates[clients].append(rate)
                    others[clients].append(other * 1000 / (posts / 1000))
                if readers:
                    newest = hub.queries.head()
                    deadline = time.monotonic() + 10
                    while hub.head < newest and time.monotonic() < deadline:
                        time.sleep(0.05)
                    time.sleep(0.5)  # the last round's events on their way to the clients
                    got = stop_clients(readers)
                    if round_no:
                        received[clients].append({
                            "post": got["post_events"], "more": got["more"],
                            "lowest_last_id": got["lowest_last_id"], "last_post_seq": newest})
    finally:
        daemon.stop()
        for leftover in directory.glob(path.name + "*"):  # the file, its -wal and -shm
            leftover.unlink()
    median = {n: statistics.median(r) for n, r in rates.items()}
    return {"streams": streams, "posts_per_round": posts, "rounds": rounds,
            "posts_per_s": {str(n): [round(r) for r in found] for n, found in rates.items()},
            "median_posts_per_s": {str(n): round(m) for n, m in median.items()},
            "ratio_to_none": {str(n): round(median[n] / median[0], 3) for n in streams if n},
            "other_threads_cpu_ms_per_1000_posts": {
                str(n): round(statistics.median(found), 1) for n, found in others.items()},
            "clients_received": {str(n): r for n, r in received.items()},
            "storm_rounds": getattr(hub, "storm_rounds", None),
            "load_1m_after": round(os.getloadavg()[0], 2)}


def tables(results: dict[str, Any]) -> str:
    """The results as the Markdown tables of docs/web.md."""
    lines = ["", "| store | page | server p50 / p99 | server CPU p50 / p99 | client p50 / p99 |",
             "|---|---|---|---|---|"]
    for kind in ("sqlite", "postgres"):
        for name, found in results.get(kind, {}).get("pages_ms", {}).items():
            lines.append(f"| {kind} | {name} | " + " | ".join(
                f"{found[part]['p50']:.1f} / {found[part]['p99']:.1f}"
                for part in ("server", "server_cpu", "client")) + " |")
    lines += ["", "| store | clients | seen of expected | once each | p50 | p99 | max "
                  "| server CPU per post | load after |", "|---|---|---|---|---|---|---|---|---|"]
    for kind in ("sqlite", "postgres"):
        got = results.get(kind, {}).get("live")
        if got:
            latency = got["publish_to_seen_ms"]
            once = (got["distinct_per_client_min_max"] == [got["published"]] * 2
                    and not got["repeats"])
            lines.append(f"| {kind} | {got['clients']} | {got['deliveries_seen']:,} of "
                         f"{got['deliveries_expected']:,} | {'yes' if once else 'NO'} | "
                         f"{latency.get('p50')} | {latency.get('p99')} | {latency.get('max')} | "
                         f"{got['server_cpu_ms_per_post']} ms | {got['load_1m_after']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="sqlite,postgres")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=8)
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--search-requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--client-processes", type=int, default=4,
                        help="processes the event-stream clients run in")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "webbench")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--pipeline-ab", metavar="N,N", default="",
                        help="only: the daemon's pipeline throughput with its web feed "
                             "serving N event streams (each N, e.g. 1,200) against none")
    parser.add_argument("--ab-posts", type=int, default=5000)
    parser.add_argument("--ab-rounds", type=int, default=3)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.pipeline_ab:
        streams = [0, *(int(n) for n in args.pipeline_ab.split(",") if int(n))]
        print(json.dumps(pipeline_ab(args.dir, streams, args.ab_posts, args.ab_rounds),
                         indent=2))
        return
    teams = [f"team-{n}" for n in range(args.teams)]
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(),
                                           "load_1m": round(os.getloadavg()[0], 2)},
                               "posts": args.posts}
    for kind in args.store.split(","):
        url = store_url(kind, args.dir, args.posts)
        entry: dict[str, Any] = {"load": load(url, args.posts, teams, args.threads, args.fresh)}
        if not args.skip_pages:
            entry["pages_ms"] = pages(url, teams, args.requests, args.dir,
                                      args.search_requests)
        if not args.skip_live:
            entry["live"] = live(url, teams, args.clients, args.rate, args.seconds, args.dir,
                                 args.client_processes)
        results[kind] = entry
        print(json.dumps({kind: entry}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    print(tables(results))


if __name__ == "__main__":
    main()
