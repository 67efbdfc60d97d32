"""The pipeline at a steady rate: CPU seconds and transactions per batch size (issue 16).

The peers harness's paced runs measure the whole daemon, but on a shared machine their
latencies and even their batch sizes follow the other load. This takes the part issue 16 is
about — what a batch costs the pipeline thread — out of the network: the harness's sensor
storm (its ``stream.tsv``: 200 machines, 1.1 % interesting), the first ``--messages`` of it
made into Changes as the mqtt adapter makes them, run through ``Pipeline.run_now`` on a
SQLite store in batches of ``--batch`` (a paced 5,000 msgs/s stream arrives 1–3 messages per
wake-up), each message with an ack (QoS 1) or without (QoS 0). It prints one JSON line per
(QoS, batch) with the process's CPU seconds, µs per message, the transactions and the posts.

Runs on older revisions too (``run_now`` without ``defer``), so two revisions compare:

    PYTHONPATH=/path/to/other/src python bench/steady.py --stream .../stream.tsv
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from floorstream.config import parse_config
from floorstream.model import Change
from floorstream.pipeline import Pipeline
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store

CONFIG = """
store: sqlite:///{db}
flood: null
teams: {{maintenance: {{}}, robotics: {{}}, process-eng: {{}}, logistics: {{}}}}
sources:
  - name: storm
    adapter: simulator
    detect:
      - state_change: {{field: state}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 82{step}}}
routes:
  - {{match: {{subject: "press-*"}}, teams: [maintenance], final: true}}
  - {{match: {{subject: "weld-*"}}, teams: [robotics], final: true}}
  - {{match: {{subject: "paint-*"}}, teams: [process-eng], final: true}}
  - {{match: {{subject: "pack-*"}}, teams: [logistics], final: true}}
"""


def _changes(stream: Path, limit: int) -> list[Change]:
    """The adapter's Changes for the stream's first ``limit`` messages."""
    changes = []
    now = datetime.now(UTC)
    with stream.open("rb") as lines:
        for n, line in enumerate(lines):
            if n >= limit:
                break
            topic, payload, _ = line.split(b"\t")
            data = orjson.loads(payload)
            text = topic.decode()
            changes.append(Change.model_construct(
                source="storm", subject=text.split("/")[2], kind="telemetry",
                position=f"{text}|{data['ts']}", observed_at=now,
                occurred_at=datetime.fromtimestamp(data["ts"] / 1000, UTC), data=data,
                before=None, attrs={}))
    return changes


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def run(changes: list[Change], batch: int, qos: int, workdir: Path) -> dict[str, Any]:
    plugins = build_plugins(load_entry_points=False)
    options = {}
    if "step" in _threshold_options(plugins):
        options["step"] = ", step: 1000000"  # crossings only, as the harness's job
    config = parse_config(CONFIG.format(db=workdir / f"q{qos}-b{batch}.db",
                                        step=options.get("step", "")), plugins)
    store = Store.open(config.settings.store)
    pipeline = Pipeline(Processor(config, plugins, states=store), store,
                        config.settings.pipeline, plugins)
    if qos and hasattr(pipeline, "limit_unacked"):  # as the daemon does for an MQTT 5
        pipeline.limit_unacked("storm", 1000)  # source: its Receive Maximum (default 1000)
    defer = "defer" in inspect.signature(pipeline.run_now).parameters
    acked = [0]

    def ack() -> None:
        acked[0] += 1

    posts = 0
    started, cpu = time.perf_counter(), _cpu()
    for start in range(0, len(changes), batch):
        items = [Envelope("storm", change=c, ack=ack if qos else None)
                 for c in changes[start:start + batch]]
        found = pipeline.run_now(items, defer=True) if defer else pipeline.run_now(items)
        posts += len(found)
    if defer:
        pipeline.flush()
    used, wall = _cpu() - cpu, time.perf_counter() - started
    result = {"qos": qos, "batch": batch, "messages": len(changes), "cpu_s": round(used, 3),
              "us_per_message": round(used / len(changes) * 1e6, 1),
              "wall_s": round(wall, 3), "transactions": pipeline.committed_batches,
              "batches": -(-len(changes) // batch), "posts": posts, "acked": acked[0]}
    store.close()
    return result


def _threshold_options(plugins: Any) -> set[str]:
    entry = next(e for e in plugins.detectors if e.name == "threshold")
    return set(entry.item.options_model.model_fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", type=Path, required=True,
                        help="the peers harness's stream.tsv ($BENCH_WORK/data/stream.tsv)")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 3, 20])
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    changes = _changes(args.stream, args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        for qos in args.qos:
            for batch in args.batch:
                print(json.dumps(run(changes, batch, qos, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
