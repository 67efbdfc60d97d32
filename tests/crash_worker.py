"""Run by test_crash.py in a subprocess: the daemon over the ``test.lines`` adapter, killed
with ``os._exit`` at a chosen moment (``FS_CRASH``: ``after-commit:N`` — the N-th commit is
durable but its acks never run; ``before-commit:N`` — the N-th batch never reaches the store).
Without ``FS_CRASH`` it runs until every line is acked, then stops gracefully."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import lines_adapter
from floorstream.config import parse_mapping
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from support import DaemonRunner, wait_for


def main(workdir: Path, total: int) -> None:
    plugins = build_plugins(extra=[lines_adapter], load_entry_points=False)
    config = parse_mapping({
        "store": f"sqlite:///{workdir}/fs.db", "flood": None,
        "pipeline": {"batch_max": 7, "batch_wait_ms": 1},
        "sources": [{"name": "line", "adapter": "test.lines",
                     "path": str(workdir / "lines.jsonl"), "acked": str(workdir / "acked"),
                     "resume": os.environ.get("FS_RESUME", "acked"),
                     "detect": [{"threshold": {"field": "temp", "above": 90,
                                               "clear_below": 80}}]}],
    }, plugins)
    acked = workdir / "acked"
    with DaemonRunner(config, plugins=plugins, setup=_crash_hooks) as daemon:
        daemon.start()
        wait_for(lambda: acked.exists() and acked.read_text() and
                 int(acked.read_text()) >= total, what="every line acked", interval=0.01)
        daemon.stop()


def _crash_hooks(daemon: Daemon) -> None:
    """``FS_CRASH``: die with ``os._exit(9)`` after the N-th commit or instead of it."""
    crash = os.environ.get("FS_CRASH", "")
    if not crash:
        return
    when, _, count = crash.partition(":")
    limit = int(count)
    commits = {"n": 0}
    if when == "after-commit":
        def after_commit() -> None:
            commits["n"] += 1
            if commits["n"] >= limit:
                os._exit(9)  # durable, but no ack: the source will replay it
        daemon.pipeline.after_commit = after_commit
    else:
        real_commit = daemon.store.commit

        def commit(batch: Any) -> Any:
            if batch.posts or batch.checkpoints:
                commits["n"] += 1
                if commits["n"] >= limit:
                    os._exit(9)  # the batch never reaches the store
            return real_commit(batch)
        daemon.store.commit = commit  # type: ignore[method-assign]


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
