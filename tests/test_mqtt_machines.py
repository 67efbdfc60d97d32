"""Settling and the time model end to end on the shared local Mosquitto (issue 12, items 5
and 8): the real daemon, real JSON messages, the posts read back from the store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from machines_sim import account, make_shift
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import Publisher, subscribed_daemons

pytestmark = pytest.mark.mqtt


def _config(store: str, host: str, port: int, prefix: str, states: str, flood: str, *,
            tick_s: float = 1.0, threshold: str = "{field: temp, above: 85}") -> str:
    return f"""
store: {store}
flood: {flood}
pipeline: {{batch_wait_ms: 1, tick_s: {tick_s}}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://{host}:{port}
    client_id: fs-{prefix.replace('/', '-')}
    topics: ["{prefix}/+/state"]
    subject: "{{topic[-2]}}"
    position_field: n
    time_field: ts
    states: {states}
    detect:
      - state_change: {{field: state, reason: reason}}
      - threshold: {threshold}
"""


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], DaemonRunner]]:
    yield from subscribed_daemons(monkeypatch, "plant")


def _msg(n: int, ts_ms: int, **data: object) -> bytes:
    return json.dumps({"n": n, "ts": ts_ms, **data}).encode()


def test_holding_then_held_is_one_post(daemon: Callable[[str], DaemonRunner],
                                       mqtt_broker: tuple[str, int], tmp_path: object,
                                       topic_prefix: str) -> None:
    host, port = mqtt_broker
    prefix = topic_prefix
    runner = daemon(_config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix,
                            "{settle: 2s}", "null"))
    publisher = Publisher(host, port)
    try:
        now = int(time.time() * 1000)
        topic = f"{prefix}/filler-3/state"
        publisher.publish_all([
            (topic, _msg(1, now - 10_000, state="EXECUTE")),
            (topic, _msg(2, now - 5_000, state="HOLDING")),
            (topic, _msg(3, now - 4_600, state="HELD", reason="Jam at infeed")),
            (topic, _msg(4, now - 1_000, state="HELD", reason="Jam at infeed")),
        ])
        wait_for(lambda: [p for p in runner.posts() if p.subject == "filler-3"], 15,
                 "the settled post")
        sentinel(lambda: publisher.publish_all([(f"{prefix}/sentinel/state",
                                                 _msg(5, now, temp=99))]),
                 lambda: any(p.subject == "sentinel" for p in runner.posts()))
        posts = [p for p in runner.posts() if p.subject == "filler-3"]
        assert [p.summary for p in posts] == [
            "filler-3 held (via holding, was execute) — Jam at infeed"]
        assert posts[0].fields["transitions"] == 2
    finally:
        publisher.close()


def test_a_shift_replayed_far_faster_than_real_time_loses_no_transition(
        daemon: Callable[[str], DaemonRunner], mqtt_broker: tuple[str, int],
        tmp_path: object, topic_prefix: str) -> None:
    """Two hours of ten machines published as fast as the broker takes them (well over 100×
    real time), with settling, flap detection and a tight flood limit: every raw state change
    is a post or counted in one, and no two posts share an id."""
    host, port = mqtt_broker
    prefix = topic_prefix
    shift = make_shift(machines=10, hours=2.0, changes=12, pauses=0, seed=3)
    runner = daemon(_config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix,
                            "{settle: 45s, flap: {changes: 3, within: 2m, stable: 5m}}",
                            "{max_posts: 3, window: 5m}"))
    publisher = Publisher(host, port)
    try:
        start = int(time.time() * 1000) - 3 * 3600_000  # the shift happened hours ago
        publisher.publish_all(
            (f"{prefix}/{machine}/state", _msg(n, start + int(t * 1000), state=state))
            for n, (t, machine, state) in enumerate(shift.readings))
        # a reading of now: the source's watermark passes every window of the shift
        publisher.publish_all([(f"{prefix}/sentinel/state",
                                _msg(len(shift.readings), int(time.time() * 1000), temp=99))])

        def tally() -> dict[str, int] | None:
            found = account([p for p in runner.posts() if p.subject != "sentinel"])
            return found if found["total"] == shift.transitions else None

        found = wait_for(tally, 30, "every transition posted or counted")
        assert found is not None and found.get("flapping", 0) > 0 and found["posted"] > 0
        posts = runner.posts()
        assert len({p.id for p in posts}) == len(posts)
    finally:
        publisher.close()


def test_windows_open_at_a_stop_are_flushed_by_the_restarted_process(
        daemon: Callable[[str], DaemonRunner], mqtt_broker: tuple[str, int],
        tmp_path: Path, topic_prefix: str) -> None:
    """A daemon stops with a settled post and a flood digest held back whose end the plant's
    event time had passed (its next tick, ten minutes off, never came); a new ``floorstream
    run`` process restores the watermark and posts both on its first ticks, with the ids they
    would have had, long before their length in wall time (5 min, 10 min); the machine whose
    clock is 90 days behind keeps its window open by its own time."""
    host, port = mqtt_broker
    prefix = topic_prefix
    store = f"sqlite:///{tmp_path}/fs.db"
    states, flood = "{settle: 5m}", "{max_posts: 1, window: 10m}"
    first = daemon(_config(store, host, port, prefix, states, flood, tick_s=600))
    base = int(time.time() - 3 * 3600) // 600 * 600 * 1000  # a shift 3 hours ago, in ms
    skewed = base - 90 * 86400_000
    history = [
        ("m02", base, 1, "RUNNING"), ("m01", base, 1, "RUNNING"), ("m02", base, 10, "STOPPED"),
        ("m02", base, 400, "HELD"), ("m01", base, 650, "HOLDING"),
        ("m01", base, 650.4, "HELD"), ("m02", base, 800, "FAULT"), ("m01", base, 1100, "HELD"),
        ("m02", base, 1200, "FAULT"), ("m09", skewed, 1, "RUNNING"),
        ("m09", skewed, 10, "STOPPED"), ("m09", skewed, 20, "STOPPED")]
    publisher = Publisher(host, port)

    def mark(name: str, n: int) -> None:  # the last reading's time: the watermark stays
        # (1,215 s: past the end of m02's second flood window, 610–1,210 s — a window opens
        # with the first post, 10 s, and the next one where it ends)
        publisher.publish_all([(f"{prefix}/{name}/state", _msg(n, base + 1_215_000,
                                                               temp=99))])

    try:
        publisher.publish_all((f"{prefix}/{m}/state", _msg(n, t0 + int(at * 1000), state=st))
                              for n, (m, t0, at, st) in enumerate(history))
        sentinel(lambda: mark("sentinel", len(history)),
                 lambda: any(p.subject == "sentinel" for p in first.posts()))
        assert [p.summary for p in first.posts()] == [
            "m02 stopped (was running)", "sentinel: temp 99, above the 85 limit"]
        held = {p.id for p in first.posts()}
        first.stop()
        stopped = time.monotonic()
        second = DaemonRunner(_config(store, host, port, prefix, states, flood),
                              process=True, workdir=tmp_path, name="restarted")
        try:
            second.start()
            flushed = wait_for(lambda: [p for p in second.posts() if p.id not in held] or None,
                               40, "the windows open at the stop")
            assert time.monotonic() - stopped < 60, "closed by the wall clock, not event time"
            # the sentinel behind them (queued by the broker for the daemon's session)
            sentinel(lambda: mark("sentinel-2", len(history) + 1),
                     lambda: any(p.subject == "sentinel-2" for p in second.posts()), 30)
            flushed = [p for p in second.posts() if p.id not in held]
            assert sorted((p.subject, p.summary) for p in flushed) == [
                ("m01", "m01 held (via holding, was running)"),
                ("m02", "m02 fault (was held)"),
                ("m02", "m02: 1 more post in 10 min not shown (1 state changed)"),
                # the fault opened the next window, which the event time has passed too
                ("m02", "m02: calm again, every post shown from now on"),
                ("sentinel-2", "sentinel-2: temp 99, above the 85 limit")]
            posts = second.posts()
            assert len({p.id for p in posts}) == len(posts)
            second.stop()
        finally:
            second.close()
    finally:
        publisher.close()


def test_a_standing_alarm_of_a_quiet_machine_is_reminded_across_a_restart(
        daemon: Callable[[str], DaemonRunner], mqtt_broker: tuple[str, int],
        tmp_path: Path, topic_prefix: str) -> None:
    """An alarm raised by a machine's last reading is reminded on the wall clock (every 2 s
    here), stamped with that reading's time; a restart goes on with the next reminder, never
    repeating one, never a burst for the time it was down."""
    host, port = mqtt_broker
    prefix = topic_prefix
    text = _config(f"sqlite:///{tmp_path}/fs.db", host, port, prefix, "{settle: 0s}", "null",
                   threshold='{field: temp, above: 85, clear_below: 80, unit: "°C", '
                             'remind: 2s}')
    runner = daemon(text)
    publisher = Publisher(host, port)

    def reminders() -> list[int]:
        return [p.fields["reminder"] for p in runner.posts()
                if p.type == "metric.limit_standing"]

    try:
        last = int(time.time() * 1000) - 60_000  # the machine's own clock: a minute behind
        publisher.publish_all([(f"{prefix}/oven-2/state", _msg(1, last, temp=90))])
        wait_for(lambda: reminders(), 15, "the first reminder")
        runner.stop()
        runner.start()
        wait_for(lambda: len(reminders()) >= 2, 15, "a reminder after the restart")
        runner.stop()  # a clean stop before the sentinel, so no reminder races it
        runner.start()
        sentinel(lambda: publisher.publish_all([(f"{prefix}/sentinel/state",
                                                 _msg(2, last, temp=99))]),
                 lambda: any(p.subject == "sentinel" for p in runner.posts()))
        posts = [p for p in runner.posts() if p.subject == "oven-2"]
        raised, standing = posts[0], posts[1:]
        assert raised.type == "metric.limit_exceeded" and len(standing) >= 2
        numbers = [p.fields["reminder"] for p in standing]
        assert numbers == sorted(set(numbers)), "a reminder repeated or out of order"
        assert len({p.id for p in runner.posts()}) == len(runner.posts())
        clock = datetime.fromtimestamp(last / 1000, UTC)
        for post in standing:
            assert (post.relation, post.refers_to) == ("update", raised.id)
            assert post.occurred_at == clock  # the last reading's time, not the wall clock
            assert post.summary.startswith(
                f"oven-2: temp still above the 85 °C limit since {clock:%H:%M} UTC, ")
            assert f"(no reading since {clock:%H:%M}: last 90 °C, peak 90 °C)" in post.summary
    finally:
        publisher.close()
