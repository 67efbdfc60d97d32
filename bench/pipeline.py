"""Pipeline benchmark: synthetic telemetry through detect → render → route → commit on SQLite.

Three phases, each printed as numbers a reviewer can compare between commits:

1. ``detect``: 200,000 changes from 200 machines (1 % interesting) through the Processor alone
   (Change construction included, no database): changes/s.
2. ``end-to-end``: the same stream submitted to the real Pipeline thread (bounded queue, group
   commits, acks) on a SQLite file: changes/s, posts/s, commit-batch latency.
3. ``post storm``: 50,000 changes that are all interesting (every reading flips the state), so
   posts/s committed is what is measured.

Peak RSS is the process's high-water mark (ru_maxrss) after all phases.

    python bench/pipeline.py [--changes 200000] [--machines 200]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from floorstream.config import parse_config
from floorstream.model import Change
from floorstream.pipeline import Pipeline
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store

CONFIG = """
store: {store}
teams: {{maintenance: {{}}, production: {{}}}}
flood: null
pipeline: {{batch_max: 2000, batch_wait_ms: 5, queue_size: 10000}}
sources:
  - name: plant
    adapter: simulator
    enabled: false
    detect:
      - state_change: {{field: state, normal: [RUNNING], severity: {{STOPPED: warning}}}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 82, unit: "°C"}}
routes:
  - match: {{severity: ">=warning"}}
    teams: [maintenance]
  - match: {{attrs: {{area: press}}}}
    teams: [production]
"""

AREAS = ("press", "weld", "paint", "pack")
START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def telemetry(count: int, machines: int, seed: int = 20240501,
              storm: bool = False) -> Iterator[Change]:
    """Random-walk temperatures and rare state flips; about 1 % of readings are interesting."""
    rng = random.Random(seed)
    temps = [70.0 + rng.random() * 5 for _ in range(machines)]
    states = ["RUNNING"] * machines
    names = [f"{AREAS[m % 4]}-{m:03d}" for m in range(machines)]
    attrs = [{"area": AREAS[m % 4]} for m in range(machines)]
    heat = [0] * machines  # readings left in a heat burst
    for i in range(count):
        m = i % machines
        if storm:
            states[m] = "STOPPED" if states[m] == "RUNNING" else "RUNNING"
        else:
            if rng.random() < 0.0065:
                states[m] = "STOPPED" if states[m] == "RUNNING" else "RUNNING"
            if heat[m] == 0 and rng.random() < 0.0016:
                heat[m] = 40
            if heat[m]:
                heat[m] -= 1
                temps[m] += 1.0 if heat[m] > 20 else -1.0
            else:
                temps[m] += rng.uniform(-0.8, 0.8) + (0.2 if temps[m] < 74 else -0.2)
        yield Change(source="plant", subject=names[m], kind="telemetry", position=str(i),
                     occurred_at=START + timedelta(milliseconds=i * 5),
                     data={"state": states[m], "spindle_temp": round(temps[m], 1),
                           "count": i}, attrs=attrs[m])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_detect(config_text: str, count: int, machines: int) -> tuple[float, int]:
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(config_text, plugins)
    processor = Processor(config, plugins)
    posts = 0
    batch: list[Envelope] = []
    elapsed = 0.0  # time inside the processor only: building the changes is the adapter's cost
    for change in telemetry(count, machines):
        batch.append(Envelope("plant", change=change))
        if len(batch) == 1000 or change.position == str(count - 1):
            started = time.perf_counter()
            posts += len(processor.process(batch).posts)
            elapsed += time.perf_counter() - started
            batch = []
    return elapsed, posts


def phase_pipeline(config_text: str, count: int, machines: int,
                   storm: bool = False) -> tuple[float, int, list[float]]:
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(config_text, plugins)
    store = Store.open(config.settings.store)
    processor = Processor(config, plugins, states=store)
    pipeline = Pipeline(processor, store, config.settings.pipeline, plugins)
    done = threading.Event()
    acked = 0
    commit_times: list[float] = []
    original = store.commit

    def timed_commit(batch):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = original(batch)
        commit_times.append(time.perf_counter() - t0)
        return result

    store.commit = timed_commit  # type: ignore[method-assign]

    def ack() -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    pipeline.start()
    started = time.perf_counter()
    emit = pipeline.submit
    for change in telemetry(count, machines, storm=storm):
        emit(Envelope("plant", change=change, ack=ack))
    done.wait()
    elapsed = time.perf_counter() - started
    pipeline.stop()
    posts = store.count_posts()
    store.close()
    return elapsed, posts, commit_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--storm", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config_a = CONFIG.format(store=f"sqlite:///{Path(tmp) / 'a.db'}")
        config_b = CONFIG.format(store=f"sqlite:///{Path(tmp) / 'b.db'}")
        config_c = CONFIG.format(store=f"sqlite:///{Path(tmp) / 'c.db'}")

        elapsed, posts = phase_detect(config_a, args.changes, args.machines)
        print(f"detect      {args.changes:>8,} changes  {elapsed:6.2f} s  "
              f"{args.changes / elapsed:>10,.0f} changes/s  ({posts:,} posts, "
              f"{100 * posts / args.changes:.2f} % interesting)")

        elapsed, posts, commits = phase_pipeline(config_b, args.changes, args.machines)
        p50 = statistics.median(commits) * 1000
        p99 = statistics.quantiles(commits, n=100)[98] * 1000 if len(commits) > 1 else p50
        print(f"end-to-end  {args.changes:>8,} changes  {elapsed:6.2f} s  "
              f"{args.changes / elapsed:>10,.0f} changes/s  {posts / elapsed:>8,.0f} posts/s  "
              f"({posts:,} posts, {len(commits):,} commits, commit p50 {p50:.2f} ms "
              f"p99 {p99:.2f} ms)")

        elapsed, posts, commits = phase_pipeline(config_c, args.storm, args.machines, storm=True)
        print(f"post storm  {args.storm:>8,} changes  {elapsed:6.2f} s  "
              f"{args.storm / elapsed:>10,.0f} changes/s  {posts / elapsed:>8,.0f} posts/s "
              f"committed  ({posts:,} posts)")
    print(f"peak RSS    {peak_rss_mb():.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
