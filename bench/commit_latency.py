"""Commit latency on a SQLite store: WAL checkpoints inside commits vs on their own thread.

A QoS 1 stream at a steady rate makes a small commit every few milliseconds (the source's
checkpoint, a few detector state rows, a post now and then). This commits such batches with
a pause between them, as the pipeline would, and prints the commit time percentiles twice,
rounds interleaved: with SQLite checkpointing the WAL inside whichever commit crosses 1,000
pages (``inline``), and with :class:`floorstream.store.walcheckpoint.WalCheckpointer` doing it
on its own thread (``background``, what the daemon's pipeline does).

    python bench/commit_latency.py [--commits 4000] [--rounds 2] [--pause-ms 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime

from floorstream.model import Post, event_id
from floorstream.store.store import CommitBatch, Store


def batch(n: int) -> CommitBatch:
    """What a QoS 1 batch of a sensor stream commits: its position, a state row, a post in
    ten batches."""
    subject = f"press-{n % 200}"
    found = CommitBatch()
    found.checkpoints["storm"] = f"pos-{n}"
    found.states[("storm", subject, "state_change:state")] = {
        "state": "RUNNING", "since": "2026-12-01T08:00:00+00:00", "n": n}
    if n % 10 == 0:
        found.posts.append(Post(
            id=event_id("storm", subject, str(n), "machine.state_changed"),
            type="machine.state_changed", source="storm", subject=subject,
            summary=f"{subject} RUNNING->STOPPED", teams=("maintenance",),
            occurred_at=datetime.now(UTC)))
    return found


def run(mode: str, commits: int, pause: float) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/fs.db")
        if mode == "background":
            store.checkpoint_in_background()
        took: list[float] = []
        for n in range(commits):
            started = time.perf_counter()
            store.commit(batch(n))
            took.append((time.perf_counter() - started) * 1000)
            time.sleep(pause)
        wal = store.wal.report() if store.wal is not None else {}
        store.close()
    took.sort()

    def at(q: float) -> float:
        return round(took[int(q * (len(took) - 1))], 2)
    return {"mode": mode, "commits": commits, "p50_ms": at(0.5), "p90_ms": at(0.9),
            "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": round(took[-1], 2),
            "over_3ms": sum(1 for t in took if t > 3), **{f"wal_{k}": v for k, v in wal.items()
                                                          if k in ("checkpoints", "longest_s")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pause-ms", type=float, default=2.0)
    a = ap.parse_args()
    for _ in range(a.rounds):
        for mode in ("inline", "background"):
            print(json.dumps(run(mode, a.commits, a.pause_ms / 1000)), flush=True)


if __name__ == "__main__":
    main()
