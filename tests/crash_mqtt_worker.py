"""Run by test_crash_repeated.py: a QoS 1 mqtt daemon SIGKILLed again and again mid-stream.

``crash_mqtt_worker.py WORKDIR PORT PREFIX KILLS SEED``: imports once, then KILLS times forks a
child that runs the daemon and is killed (a fork starts the daemon at once; a fresh
interpreter would spend seconds importing, and twenty of them would make the test slow): every
other child SIGKILLs itself right after its 1st to 3rd commit with posts, before that batch's
acks (the broker sends those messages again), the others are SIGKILLed after a random
0.1–0.6 s. Then the daemon runs in this process until the sentinel machine's post is
committed, and stops cleanly. Prints ``store ready`` once the schema is there, ``killed N``
after each kill and ``kills done`` when the last child is dead.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

CONFIG = """
store: sqlite:///{workdir}/fs.db
flood: null
logging: {{level: error}}
pipeline: {{batch_wait_ms: 20}}  # batches of ~20 messages: two readings of a machine in one
sources:
  - name: presses
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    protocol: "5"  # receive_maximum 1000: batches are not capped at Mosquitto's 20
    client_id: fs-crash-repeated
    qos: 1
    reconnect_min: 0.5
    reconnect_max: 1
    topics: ["{prefix}/+/+/telemetry"]
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
      # hold: false: the test's posts are fixed by the readings alone, whatever pauses the
      # kills put into the stream (with hold a pause while pending counts as time held)
      - threshold: {{field: temp, above: 85, clear_below: 80, for: 2s, step: 1000,
                    hold: false}}
"""


def main(workdir: Path, port: int, prefix: str, kills: int, seed: int) -> None:
    plugins = build_plugins(load_entry_points=False)
    config = parse_config(CONFIG.format(workdir=workdir, port=port, prefix=prefix), plugins)
    Store.open(config.settings.store).close()  # the schema, once
    print("store ready", flush=True)
    rnd = random.Random(seed)
    for kill in range(kills):
        after = rnd.randint(1, 3) if kill % 2 == 0 else 0
        wait = rnd.uniform(0.1, 0.6)
        child = os.fork()
        if child == 0:  # the daemon, until killed
            try:
                daemon = Daemon(config, plugins)
                if after:
                    _die_after(daemon, after)
                daemon.start()
                time.sleep(3600)
            finally:
                os._exit(3)  # (never reached: killed first)
        if after:
            deadline = time.monotonic() + 3  # (no post to commit: killed anyway)
            while not os.waitpid(child, os.WNOHANG)[0] and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            time.sleep(wait)
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(child, 0)
        print(f"killed {kill + 1}", flush=True)
    print("kills done", flush=True)
    daemon = Daemon(config, plugins)
    daemon.start()
    store = Store.open(config.settings.store)
    deadline = time.monotonic() + 90
    while not any(p.subject == "sentinel" for p in store.feed("general", limit=5)):
        if time.monotonic() > deadline:
            sys.exit("the sentinel never came")
        time.sleep(0.05)
    daemon.stop()
    store.close()


def _die_after(daemon: Daemon, count: int) -> None:
    """SIGKILL this process right after its ``count``-th commit with posts, before the acks."""
    commits = {"n": 0}
    real_commit = daemon.store.commit

    def commit(batch: Any) -> Any:
        posts = real_commit(batch)
        if posts:
            commits["n"] += 1
        return posts

    def after_commit() -> None:
        if commits["n"] >= count:
            os.kill(os.getpid(), signal.SIGKILL)

    daemon.store.commit = commit  # type: ignore[method-assign]
    daemon.pipeline.after_commit = after_commit


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
