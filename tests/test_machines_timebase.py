"""One time model (issue 12, item 8): an 8-hour shift of a 50-machine plant gives the same
posts live, replayed 100× faster than real time, and with the plant's clock months off, and
every raw state change is a post or is counted in one (a digest, a folded post, a blip, a
flap summary).

Reproduced first: before, silence stamped its offline posts with the wall clock; in a replay
(or with a clock months off) such a post opened a flood window far ahead of the machine's own
time that then swallowed its later posts: 505 of 904 state changes were posted instead of 898.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floorstream.config import parse_config
from floorstream.model import Change, Post
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import CommitBatch, Store
from floorstream.timebase import LAG_SLACK, LAGS_KEPT, Watermark
from machines_sim import CONFIG, Plant, account, make_shift

SHIFT = make_shift(machines=50, hours=8.0)
TIGHT = "{max_posts: 3, window: 5m}"

MODES = {
    "live": {"speed": 1.0, "tick": 10.0},
    "replayed 100x faster": {"speed": 100.0, "tick": 1.0},
    "clock 90 days behind": {"speed": 1.0, "tick": 10.0, "skew": 90 * 86400.0},
    "clock 60 days ahead": {"speed": 1.0, "tick": 10.0, "skew": -60 * 86400.0},
    # the daemon stops in the middle of the shift and a new one goes on from what was
    # committed, after 30 s of downtime (machines_sim: Plant.replay's restart_at)
    "live, restarted mid-shift": {"speed": 1.0, "tick": 10.0, "restart": True},
}
STATES = "states: {settle: 45s, flap: {changes: 3, within: 2m, stable: 5m}}"
#: settled runs already made in this process, by mode (the restart test compares with them)
SETTLED: dict[str, list[Post]] = {}


def _replay(plant: Plant, mode: str, store: Path) -> list[Post]:
    options = dict(MODES[mode])
    if options.pop("restart", False):
        posts = plant.replay(SHIFT, **options,  # type: ignore[arg-type]
                             restart_at=len(SHIFT.readings) // 2,
                             store=f"sqlite:///{store}/restart.db")
        assert plant.restarts == 1
        return posts
    return plant.replay(SHIFT, **options)  # type: ignore[arg-type]


#: runs with the tight flood limit already made in this process, by mode
TIGHT_RUNS: dict[str, list[Post]] = {}


def _tight(mode: str, store: Path) -> list[Post]:
    if mode not in TIGHT_RUNS:
        TIGHT_RUNS[mode] = _replay(Plant(flood=TIGHT), mode, store)
    return TIGHT_RUNS[mode]


@pytest.fixture
def live(tmp_path: Path) -> list[str]:
    return sorted(p.id for p in _tight("live", tmp_path) if p.type == "machine.state_changed")


@pytest.mark.parametrize("mode", list(MODES))
def test_every_state_change_is_a_post_or_counted(mode: str, live: list[str],
                                                 tmp_path: Path) -> None:
    posts = _tight(mode, tmp_path)
    tally = account(posts)
    assert tally["total"] == SHIFT.transitions, tally
    assert len({p.id for p in posts}) == len(posts), "two posts with one id: one is lost"
    # the flood windows decide on event time: the same changes shown at any speed or skew
    shown = sorted(p.id for p in posts if p.type == "machine.state_changed")
    assert shown == live
    assert tally["posted"] > 0.95 * SHIFT.transitions, tally  # the offline posts swallow none


def test_silence_posts_carry_the_event_time_gap() -> None:
    started = datetime.now(UTC)  # the shift ended an hour before the replay starts
    posts = _tight("replayed 100x faster", Path())
    offline = [p for p in posts if p.type == "machine.offline"]
    assert offline, "each machine pauses two hours: silence must notice"
    for post in offline:
        # stamped with the machine's last reading (hours ago), not the replay's wall clock
        assert post.occurred_at < started - timedelta(minutes=30)
        assert post.summary.startswith(f"{post.subject} offline: nothing received for ")


def _settled(mode: str, store: Path) -> list[Post]:
    if mode not in SETTLED:
        SETTLED[mode] = _replay(Plant(flood=TIGHT, settle=STATES), mode, store)
    return SETTLED[mode]


@pytest.mark.parametrize("mode", ["live", "replayed 100x faster", "live, restarted mid-shift"])
def test_with_settling_and_flap_detection_nothing_is_lost(mode: str, tmp_path: Path) -> None:
    """With settle, flap and flood windows open at the restart too: the held states, the
    flapping runs and the digests are committed state, so nothing is lost or posted twice."""
    posts = _settled(mode, tmp_path)
    tally = account(posts)
    assert tally["total"] == SHIFT.transitions, tally
    assert tally.get("flapping", 0) > 0, "the bursts of three changes in a minute flap"
    assert len({p.id for p in posts}) == len(posts), "a post made twice"
    if "restarted" in mode:  # the same state changes shown as without the restart
        shown = sorted(p.id for p in posts if p.type == "machine.state_changed")
        assert shown == sorted(p.id for p in _settled("live", tmp_path)
                               if p.type == "machine.state_changed")


def test_windows_open_at_a_stop_close_on_event_time_after_the_restart(tmp_path: Path) -> None:
    """The watermark is persisted with the source's state: windows whose end the source's
    event time had passed when the daemon stopped (before a tick could close them) close on
    the first tick after the restart, not only after their length in wall time; and a
    machine whose clock is 90 days behind keeps its own lag across the restart."""
    plugins = build_plugins()
    config = parse_config(CONFIG.format(flood="{max_posts: 1, window: 10m}",
                                        settle="states: {settle: 45s}"), plugins)
    now = datetime.now(UTC)
    base = datetime.fromtimestamp((now.timestamp() - 3 * 3600) // 600 * 600, UTC)
    skewed = base - timedelta(days=90)
    readings = [
        ("m02", base, 1, "RUNNING"), ("m01", base, 1, "RUNNING"), ("m02", base, 10, "STOPPED"),
        ("m02", base, 100, "RUNNING"), ("m02", base, 200, "STOPPED"),  # a digest's worth
        ("m02", base, 300, "STOPPED"), ("m01", base, 650, "HOLDING"),
        ("m01", base, 650.4, "HELD"), ("m01", base, 690, "HELD"), ("m02", base, 700, "STOPPED"),
        ("m09", skewed, 1, "RUNNING"), ("m09", skewed, 10, "STOPPED"),
        ("m09", skewed, 20, "STOPPED")]

    def envelope(n: int, machine: str, clock: datetime, at: float, state: str) -> Envelope:
        return Envelope("plant", change=Change(
            source="plant", subject=machine, kind="telemetry", position=str(n),
            occurred_at=clock + timedelta(seconds=at), observed_at=now, data={"state": state}))

    def commit(store: Store, processor: Processor, batch: CommitBatch) -> list[Post]:
        processor.collect_lazy(batch)  # (the pipeline writes lazily changed state with it)
        return store.commit(batch)

    store = Store.open(f"sqlite:///{tmp_path}/stop.db")
    try:
        first = Processor(config, plugins, states=store)
        before = commit(store, first, first.process(
            [envelope(n, *r) for n, r in enumerate(readings)]))
        assert [(p.subject, p.summary) for p in before] == [("m02", "m02 stopped (was running)")]
        # the daemon stops here, before its next tick; a new one starts from the store
        soon = now + timedelta(seconds=2)
        lost = Processor(config, plugins, states=store)
        lost.sources["plant"].clock = Watermark()  # as before: the wall-clock rule only
        assert lost.tick(soon).posts == [], "the control: 45 s and 10 min have not passed"
        restarted = Processor(config, plugins, states=store)
        flushed = commit(store, restarted, restarted.tick(soon))
        assert [(p.subject, p.type) for p in flushed] == [
            ("m01", "machine.state_changed"), ("m02", "flood.digest")]
        held, digest = flushed
        assert held.summary == "m01 held (via holding, was running)"
        assert digest.fields["suppressed"] == 2 and digest.fields["transitions"] == {
            "state:state": 2}
        # the machine 90 days behind: its window closes by its own clock, not at once
        assert restarted.sources["plant"].clock.lags["m09"] > 89 * 86400
        assert restarted.tick(soon + timedelta(seconds=1)).posts == []
        restarted.process([envelope(len(readings), "m03", base, 760, "RUNNING")])
        (stopped,) = restarted.tick(soon + timedelta(seconds=2)).posts
        assert (stopped.subject, stopped.summary) == ("m09", "m09 stopped (was running)")
        assert stopped.occurred_at == skewed + timedelta(seconds=10)
    finally:
        store.close()


def test_the_watermark_persists_its_high_and_the_offsets_of_the_subjects_seen_last() -> None:
    """Lags beyond a minute (a clock offset, a backlog) of the subjects seen last are
    persisted; shorter ones are a reporting interval, and a restarted subject runs on the
    source's clock."""
    clock = Watermark()
    clock.observe("now", 10_000_000.0)
    for n in range(LAGS_KEPT + 10):
        clock.observe(f"s{n}", 1000.0 + n)  # days behind
    clock.observe("s0", 500.0)  # seen again: among the last
    clock.observe("synced", 10_000_000.0 - LAG_SLACK)  # a reporting interval
    clock.observe("s200", 10_000_000.0 - 3)  # caught up: its offset is gone
    dumped = json.loads(json.dumps(clock.dump()))
    assert dumped["high"] == 10_000_000.0 and len(dumped["lags"]) == LAGS_KEPT - 1
    assert "s10" not in dumped["lags"] and "s200" not in dumped["lags"]
    assert "synced" not in dumped["lags"] and dumped["lags"]["s0"] == 10_000_000.0 - 500
    assert clock.dump() is clock.dump(), "updated in place, not copied per batch"
    restored = Watermark()
    restored.restore(dumped)
    assert restored.now("s0") == 500.0 and restored.now("synced") == dumped["high"]
    assert restored.dump()["lags"] == dumped["lags"]
    newer = Watermark()
    newer.observe("s0", 20_000_000.0)
    newer.restore(dumped)  # input already seen past it: nothing older overrides it
    assert newer.high == 20_000_000.0
    for junk in (None, {}, {"high": "x"}, {"high": None, "lags": {}}):
        empty = Watermark()
        empty.restore(junk)
        assert empty.high is None
