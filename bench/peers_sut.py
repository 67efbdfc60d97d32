"""floorstream as a "system under test" of the shared peers harness (sensor storm, lines mode).

    /work/shared/peers/run_peers.sh sut floorstream \\
        'exec /work/main/.venv/bin/python /work/main/bench/peers_sut.py'

The harness starts its own Mosquitto on $BENCH_PORT, publishes the storm on
plant/<area>/<machine>/telemetry, and expects one line per interesting message in $BENCH_OUT,
exactly as in its expected.txt:

    [maintenance] press-24 RUNNING->STOPPED; spindle temp 91.2 C over limit 85 C (ts=…)

This runs the real daemon — mqtt adapter, state_change and threshold detectors with 3 °C
hysteresis, routes by area, SQLite store with posts, checkpoints and state committed together
— and writes the harness's line format from a ``post_committed`` plugin: the posts one message
produced (at most two, committed in the same batch) are joined into one line. Only the line
format is harness-specific; everything else is what a user would configure.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import TextIO

import floorstream
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.logs import configure_logging
from floorstream.model import Post
from floorstream.plugins import build_plugins

CONFIG = """
store: sqlite:///{db}
flood: null
logging: {{level: warning}}
pipeline: {{batch_wait_ms: 0, batch_max: 2000}}
teams: {{maintenance: {{}}, robotics: {{}}, process-eng: {{}}, logistics: {{}}}}
sources:
  - name: storm
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    client_id: floorstream-bench-{pid}
    clean_start: true
    qos: {qos}
    topics: ["plant/+/+/telemetry"]
    subject: "{{topic[2]}}"
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
      # the harness's job posts crossings only: no update for a standing alarm's new peak
      - threshold: {{field: spindle_temp, above: 85, clear_below: 82, step: 1000000}}
    summary:
      machine.state_changed: "{{{{ fields.before }}}}->{{{{ fields.after }}}}"
      metric.limit_exceeded: "{temp} over limit 85 C"
      metric.limit_cleared: "{temp} back under limit 85 C"
routes:
  - {{match: {{subject: "press-*"}}, teams: [maintenance], final: true}}
  - {{match: {{subject: "weld-*"}}, teams: [robotics], final: true}}
  - {{match: {{subject: "paint-*"}}, teams: [process-eng], final: true}}
  - {{match: {{subject: "pack-*"}}, teams: [logistics], final: true}}
"""


TEMP = "spindle temp {{ '%.1f' | format(fields.value) }} C"


class LineWriter:
    """Writes the harness's line per message from the posts of each committed batch."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    @floorstream.hookimpl
    def post_committed(self, posts: Sequence[Post]) -> None:
        lines: list[str] = []
        key: tuple[str, int] | None = None
        parts: list[str] = []
        team = ""
        for post in posts:
            ts = round(post.occurred_at.timestamp() * 1000)
            if (post.subject, ts) != key:
                if key is not None:
                    lines.append(f"[{team}] {key[0]} {'; '.join(parts)} (ts={key[1]})\n")
                key, parts, team = (post.subject, ts), [], post.teams[0]
            parts.append(post.summary)
        if key is not None:
            lines.append(f"[{team}] {key[0]} {'; '.join(parts)} (ts={key[1]})\n")
        self.out.write("".join(lines))
        self.out.flush()


def main() -> None:
    port = int(os.environ.get("BENCH_PORT", "18830"))
    qos = int(os.environ.get("BENCH_QOS", "0"))
    with tempfile.TemporaryDirectory() as tmp, \
            open(os.environ["BENCH_OUT"], "a", encoding="utf-8") as out:
        plugins = build_plugins(extra=[LineWriter(out)])
        text = CONFIG.format(db=f"{tmp}/fs.db", port=port, qos=qos, pid=os.getpid(), temp=TEMP)
        config = parse_config(text, plugins)
        configure_logging("warning", "json")
        daemon = Daemon(config, plugins)
        stats = os.environ.get("BENCH_STATS")
        threads: dict[str, float] = {}
        if stats:  # each thread's CPU seconds when the daemon is told to stop, before they end
            stop = daemon.stop

            def recording_stop(timeout: float = 30.0) -> None:
                threads.update(_thread_cpu())
                stop(timeout)
            daemon.stop = recording_stop  # type: ignore[method-assign]
        daemon.run_forever()
        if stats:  # how many batches paid a transaction (not part of the harness's protocol)
            pipeline = daemon.pipeline
            with open(stats, "w", encoding="utf-8") as file:
                json.dump({"committed_batches": pipeline.committed_batches,
                           "uncommitted_batches": getattr(pipeline, "uncommitted_batches", 0),
                           "posts": pipeline.committed_posts,
                           "cpu_s": round(sum(os.times()[:2]), 3), "threads_cpu_s": threads},
                          file)


def _thread_cpu() -> dict[str, float]:
    """Every live thread's CPU seconds, by name (with BENCH_STATS)."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            found[thread.name] = round(time.clock_gettime(
                time.pthread_getcpuclockid(thread.ident)), 3)
        except OSError:  # ended meanwhile
            continue
    return found


if __name__ == "__main__":
    main()
