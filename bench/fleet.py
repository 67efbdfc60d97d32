"""A fleet of daemons on one store: total throughput with one, two and three daemons, and
takeover times after kill -9 of a holder.

- **throughput**: ``--sources`` MQTT sources (one namespace split by topic filter, QoS 1, a
  private Mosquitto that queues without limit) on a fresh PostgreSQL or MariaDB database;
  N ``floorstream run`` processes are started and left to settle (each holding its share),
  then ``--messages`` readings are published as fast as the publisher goes, every one a
  state flip, so every one is a post. Reported: posts per second from the first post
  committed to the last, and the wall time to all of them.
- **takeover**: three daemons with the same sources and a publisher running; ``--kills``
  times the daemon holding the most sources is killed with SIGKILL and started again. The
  lease rows and the store's lock table are sampled every 50 ms (tests/fleet/support.py):
  takeover = kill → a new holder in the lease row, per source the victim held. Also checked:
  every flip posted exactly once, and no sample with two live holders of a source.

The numbers come from a 2-core machine shared with other jobs: compare runs of the same
moment, not across days. Run: ``python bench/fleet.py [--engines postgresql mariadb]
[--daemons 1 2 3] [--messages 20000] [--kills 10] [--commits 2000]``; one JSON object per
engine on stdout.

- **fence**: what the commit fence adds to one commit (``--commits`` commits of 20 posts,
  alternately with and without it, medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fleet.support import LeaseSampler, MqttFeed, daemon_ids, run_for  # noqa: E402
from floorstream.store import schema  # noqa: E402
from floorstream.store.store import Store  # noqa: E402
from support import DaemonRunner, wait_for  # noqa: E402
from support.mqtt import PrivateBroker, Publisher  # noqa: E402

ADMIN = {"postgresql": os.environ.get("FLOORSTREAM_TEST_PG",
                                      "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
         "mariadb": os.environ.get("FLOORSTREAM_TEST_MYSQL",
                                   "mysql+pymysql://root@127.0.0.1:3306/")}


def _database(engine: str) -> tuple[str, Any]:
    """A fresh database; returns its URL and a function that drops it."""
    name = f"fs_bench_{uuid.uuid4().hex[:10]}"
    if engine == "postgresql":
        admin = create_engine(ADMIN[engine], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(ADMIN[engine]).set(database=name).render_as_string(False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        admin = create_engine(ADMIN[engine])
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        url = make_url(ADMIN[engine]).set(database=name, query={"charset": "utf8mb4"}
                                          ).render_as_string(False)

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            admin.dispose()
    return url, drop


def _config(store: str, port: int, prefix: str, sources: int, takeover: float) -> str:
    mqtt = "".join(f"""
  - name: line{k}
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    qos: 1
    reconnect_min: 0.2
    reconnect_max: 1
    topics: ["{prefix}/line{k}/+/telemetry"]
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
""" for k in range(sources))
    return f"""
store: {store}
flood: null
default_team: everyone
logging: {{level: info}}
pipeline: {{batch_wait_ms: 2}}
retention: {{interval: 1h}}
fleet: {{takeover: {takeover}}}
sources:{mqtt}"""


def _connected(daemons: list[DaemonRunner]) -> set[str]:
    found = set()
    for daemon in daemons:
        for line in daemon.log().splitlines():
            if '"mqtt_connected"' in line:
                found.add(json.loads(line).get("source"))
    return found


def _settled(url: str, daemons: int, sources: int) -> bool:
    """Every source held, by ``daemons`` distinct daemons, none above its share."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            holders = [h for (h,) in conn.execute(select(schema.source_leases.c.holder))]
    except Exception:
        return False
    finally:
        engine.dispose()
    if len(holders) != sources or None in holders:
        return False
    share = -(-sources // daemons)
    return len(set(holders)) == daemons and all(holders.count(h) <= share for h in holders)


def _post_times(store: Store) -> tuple[int, Any, Any]:
    p = schema.posts
    with store.engine.connect() as conn:
        return conn.execute(select(func.count(), func.min(p.c.created_at),
                                   func.max(p.c.created_at))).one()


def throughput(engine: str, daemons: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    url, drop = _database(engine)
    broker = PrivateBroker(work / f"broker-{engine}-{daemons}")
    broker.start()
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    config = _config(url, broker.port, prefix, args.sources, 10.0)
    runners = [DaemonRunner(config, process=True, workdir=work, name=f"{engine}-t{daemons}-{i}")
               for i in range(daemons)]
    try:
        Store.open(url).close()
        for runner in runners:
            runner.start()
        wait_for(lambda: _settled(url, daemons, args.sources), timeout=90, what="settled")
        wait_for(lambda: _connected(runners) >= {f"line{k}" for k in range(args.sources)},
                 timeout=60, what="connected")
        time.sleep(0.5)  # the last SUBSCRIBE went out with its CONNACK callback
        publisher = Publisher("127.0.0.1", broker.port)
        machines = 5
        per = args.messages // (args.sources * machines)
        store = Store.open(url)
        started = time.monotonic()
        infos = []
        for i in range(per):
            state = "STOPPED" if i % 2 else "RUNNING"
            for k in range(args.sources):
                for m in range(machines):
                    payload = json.dumps({"ts": 1_764_057_600_000 + i * 1000 + m,
                                          "state": state})
                    infos.append(publisher.publish(f"{prefix}/line{k}/k{k}m{m}/telemetry",
                                                   payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        published = time.monotonic() - started
        expected = args.sources * machines * (per - 1)  # the first reading is no flip
        wait_for(lambda: _post_times(store)[0] >= expected, timeout=600, interval=0.5,
                 what=f"{expected} posts")
        wall = time.monotonic() - started
        count, first, last = _post_times(store)
        span = (last - first).total_seconds()
        publisher.close()
        store.close()
        return {"daemons": daemons, "posts": count, "publish_seconds": round(published, 2),
                "wall_seconds": round(wall, 2),
                "posts_per_second": round(count / span, 1) if span > 0 else None}
    finally:
        for runner in runners:
            runner.close()
        broker.stop()
        drop()


def takeovers(engine: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    url, drop = _database(engine)
    broker = PrivateBroker(work / f"broker-{engine}-kill")
    broker.start()
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    sources = [f"line{k}" for k in range(args.sources)]
    config = _config(url, broker.port, prefix, args.sources, args.takeover)
    Store.open(url).close()
    sampler = LeaseSampler(url, sources)
    sampler.start()
    runners = [DaemonRunner(config, process=True, workdir=work, name=f"{engine}-k{i}")
               for i in range(3)]
    stop = threading.Event()
    feed = None
    try:
        for runner in runners:
            runner.start()
        wait_for(lambda: _settled(url, 3, args.sources), timeout=90, what="settled")
        wait_for(lambda: _connected(runners) >= set(sources), timeout=60, what="connected")
        time.sleep(0.5)
        feed = MqttFeed(broker.port, prefix, args.sources)
        pump = run_for(3600, feed.step, 0.05, stop)
        for _ in range(args.kills):
            victim = max(runners, key=lambda r: sum(
                1 for h in sampler.latest.values() if h in daemon_ids(r)))
            ids = daemon_ids(victim)
            at = time.time()
            victim.kill()
            takeover = sampler.kill_recorded(ids[-1], at)
            victim.start()
            wait_for(lambda t=takeover: len(t.taken) == len(t.sources), timeout=60,
                     what="the takeover")
            before = len(ids)
            wait_for(lambda v=victim, n=before: len(daemon_ids(v)) > n, timeout=60,
                     what="the restart")
            wait_for(lambda: _settled(url, 3, args.sources), timeout=60, what="settled")
        stop.set()
        pump.join(10)
        store = Store.open(url)
        for _ in range(feed.flip):  # the sentinel flip behind everything
            feed.step()
        expected = feed.expected()
        p = schema.posts

        def posted() -> list[tuple[str, int]]:
            with store.engine.connect() as conn:
                rows = conn.execute(select(p.c.subject, p.c.occurred_at))
                return [(s, round(o.timestamp() * 1000)) for s, o in rows]
        wait_for(lambda: set(posted()) >= expected, timeout=120, what="every flip")
        found = posted()
        store.close()
        times = sorted(t for k in sampler.takeovers for t in k.seconds())
        return {
            "kills": args.kills, "takeovers": len(times),
            "p50_seconds": round(statistics.median(times), 3),
            "p99_seconds": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
            "max_seconds": round(times[-1], 3), "takeover_setting": args.takeover,
            "flips_expected": len(expected), "posts": len(found),
            "duplicates": len(found) - len(set(found)),
            "lost": len(expected - set(found)), "extra": len(set(found) - expected),
            "lease_samples": sampler.samples, "two_holder_samples": len(sampler.violations)}
    finally:
        stop.set()
        if feed is not None:
            feed.publisher.close()
        for runner in runners:
            runner.close()
        sampler.stop()
        broker.stop()
        drop()


def fence_cost(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """What the commit fence adds to a commit: ``--commits`` batches of 20 posts of one
    source, committed alternately with and without the fence (the same store, interleaved,
    so the machine's load hits both alike); median and p90 milliseconds per commit."""
    from datetime import UTC, datetime, timedelta

    from floorstream.fleet import leases
    from floorstream.fleet.fence import Fence
    from floorstream.model import Post, event_id
    from floorstream.store.store import CommitBatch

    url, drop = _database(engine)
    store = Store.open(url)
    try:
        with store.engine.begin() as conn:
            epoch = leases.take(conn, "line0", "bench")
        fence = Fence("bench", ["line0"], lambda: {"line0": epoch}, lambda lost: None)
        t0 = datetime(2026, 12, 1, tzinfo=UTC)
        took: dict[str, list[float]] = {"with": [], "without": []}
        for n in range(args.commits):
            posts = [Post(id=event_id("line0", f"m{i}", f"{n}-{i}", "machine.state_changed"),
                          type="machine.state_changed", source="line0", subject=f"m{i}",
                          summary=f"m{i} {n}", teams=("everyone",), occurred_at=t0,
                          created_at=t0 + timedelta(seconds=n),
                          routing=({"team": "everyone", "rule": "default"},))
                     for i in range(20)]
            kind = "with" if n % 2 else "without"
            store.fence = fence if kind == "with" else None
            started = time.perf_counter()
            store.commit(CommitBatch(posts=posts, checkpoints={"line0": str(n)}))
            took[kind].append((time.perf_counter() - started) * 1000)
        result: dict[str, Any] = {"commits": args.commits, "posts_per_commit": 20}
        for kind, times in took.items():
            times.sort()
            result[f"{kind}_fence_ms_p50"] = round(statistics.median(times), 3)
            result[f"{kind}_fence_ms_p90"] = round(times[int(len(times) * 0.9)], 3)
        return result
    finally:
        store.close()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=["postgresql", "mariadb"],
                        choices=["postgresql", "mariadb"])
    parser.add_argument("--daemons", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--sources", type=int, default=6)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--takeover", type=float, default=10.0,
                        help="fleet.takeover of the kill runs (the default's)")
    parser.add_argument("--commits", type=int, default=2000,
                        help="commits of the fence-cost run (0: skip it)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fs-bench-fleet-"))
    for engine in args.engines:
        result: dict[str, Any] = {"engine": engine, "cores": os.cpu_count(),
                                  "load_average": os.getloadavg(),
                                  "sources": args.sources, "messages": args.messages}
        if args.commits:
            result["fence"] = fence_cost(engine, args)
        result["throughput"] = [throughput(engine, n, args, work) for n in args.daemons]
        if args.kills:
            result["takeover"] = takeovers(engine, args, work)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
