"""Twenty SIGKILLs of a QoS 1 mqtt daemon mid-stream, then a clean run: every post exactly once,
with the right content (issue 16: batches that change nothing durable are acked without a
commit, the replay guard is written lazily, urgent detector state is committed before its
ack). A private Mosquitto with unbounded queues, so the broker drops nothing meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from floorstream.store.store import Store
from support import sentinel
from support.mqtt import PrivateBroker, Publisher

pytestmark = pytest.mark.mqtt

WORKER = Path(__file__).parent / "crash_mqtt_worker.py"
KILLS = int(os.environ.get("FS_CRASH_KILLS", "20"))
T0 = 1_764_057_600_000
MACHINES = 10
READINGS = 800
CYCLE = 40  # a state flip every 40 readings; readings 10–19 of each cycle run hot


def _temp(i: int) -> float:
    """Above 85 for readings 10–19 of a cycle, rising by one a reading (the peak moves: urgent
    state without a post), back to 70 at 20."""
    step = i % CYCLE
    return 90.0 + (step - 10) if 10 <= step < 20 else 70.0


def _stream(prefix: str) -> list[tuple[str, bytes]]:
    messages = []
    for i in range(READINGS):
        for m in range(MACHINES):
            state = "STOPPED" if (i // CYCLE) % 2 else "RUNNING"
            payload = {"ts": T0 + i * 1000 + m, "state": state, "temp": _temp(i)}
            messages.append((f"{prefix}/press/m{m:02d}/telemetry", json.dumps(payload).encode()))
    return messages


def _expected() -> set[tuple[str, str, int, float | None]]:
    """(machine, type, ts, peak of a clear) of every post the stream must give."""
    found: set[tuple[str, str, int, float | None]] = set()
    for m in range(MACHINES):
        for i in range(READINGS):
            ts = T0 + i * 1000 + m
            if i and i % CYCLE == 0:
                found.add((f"m{m:02d}", "machine.state_changed", ts, None))
            if i % CYCLE == 12:  # pending since reading 10, 2 s later: raised
                found.add((f"m{m:02d}", "metric.limit_exceeded", ts, None))
            if i % CYCLE == 20:
                found.add((f"m{m:02d}", "metric.limit_cleared", ts, 99.0))
    return found


def _posted(store: Store) -> list[tuple[str, str, int, float | None]]:
    return [(p.subject, p.type, round(p.occurred_at.timestamp() * 1000),
             p.fields.get("peak") if p.type == "metric.limit_cleared" else None)
            for p in store.feed("general", limit=100_000) if p.subject != "sentinel"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "broker", persistence=False)
    broker.start()
    yield broker
    broker.stop()


class Feeder(threading.Thread):
    """Publishes the stream in ``parts`` chunks at ``rate``, chunk n once the worker reported
    n kills: every kill has input around it, and input follows the last one."""

    def __init__(self, publisher: Publisher, messages: list[tuple[str, bytes]], parts: int,
                 rate: float) -> None:
        super().__init__(daemon=True)
        self.publisher, self.rate = publisher, rate
        size = -(-len(messages) // parts)
        self.chunks = [messages[n:n + size] for n in range(0, len(messages), size)]
        self.kills = 0
        self.progress = threading.Condition()

    def killed(self, count: int) -> None:
        with self.progress:
            self.kills = count
            self.progress.notify_all()

    def _reached(self, kills: int) -> bool:
        return self.kills >= kills

    def run(self) -> None:
        infos = []
        for n, chunk in enumerate(self.chunks):
            with self.progress:
                self.progress.wait_for(partial(self._reached, n), timeout=60)
            start = time.monotonic()
            for k, (topic, payload) in enumerate(chunk):
                infos.append(self.publisher.publish(topic, payload, qos=1))
                delay = start + k / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        for info in infos:
            info.wait_for_publish(30)


def _expect(worker: subprocess.Popen[str], line: str) -> None:
    """Read the worker's output up to ``line`` (log lines in between are skipped)."""
    assert worker.stdout is not None
    for got in worker.stdout:
        if got.strip() == line:
            return
    raise AssertionError(f"the worker ended before {line!r}: "
                         f"{worker.stderr.read() if worker.stderr else ''}")


def test_twenty_sigkills_lose_nothing_and_repeat_nothing(broker: PrivateBroker, tmp_path: Path,
                                                         topic_prefix: str) -> None:
    store_url = f"sqlite:///{tmp_path}/fs.db"
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp_path), str(broker.port), topic_prefix,
         str(KILLS), "20261201"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        # the daemon's persistent session must exist before publishing, or QoS 1 has nobody
        # to queue for: the first child subscribes within its 0.1–0.6 s
        _expect(worker, "store ready")
        store = Store.open(store_url)
        broker.wait_subscriptions(1)  # the first child's SUBSCRIBE, as the broker counts it
        publisher = Publisher("127.0.0.1", broker.port)
        feeder = Feeder(publisher, _stream(topic_prefix), KILLS + 1, 1000.0)
        feeder.start()
        at_kill = []
        for n in range(1, KILLS + 1):
            _expect(worker, f"killed {n}")
            at_kill.append(len(_posted(store)))
            feeder.killed(n)
        _expect(worker, "kills done")
        feeder.join(120)
        expected = _expected()
        assert 0 < at_kill[-1] < len(expected), "the kills must come mid-stream"
        flip = [(f"{topic_prefix}/press/sentinel/telemetry",
                 json.dumps({"ts": T0 + n, "state": state, "temp": 70.0}).encode())
                for n, state in enumerate(("RUNNING", "STOPPED"))]
        sentinel(lambda: publisher.publish_all(flip),
                 lambda: any(p.subject == "sentinel" for p in store.feed("general", limit=5)),
                 timeout=60)
        publisher.close()
        assert worker.wait(60) == 0
        posted = _posted(store)
        store.close()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert len(posted) == len(set(posted)), "a post came twice"
    assert set(posted) == expected
