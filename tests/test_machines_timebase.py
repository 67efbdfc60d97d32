"""One time model (issue 12, item 8): an 8-hour shift of a 50-machine plant gives the same
posts live, replayed 100× faster than real time, and with the plant's clock months off, and
every raw state change is a post or is counted in one (a digest, a folded post, a blip, a
flap summary).

Reproduced first: before, silence stamped its offline posts with the wall clock; in a replay
(or with a clock months off) such a post opened a flood window far ahead of the machine's own
time that then swallowed its later posts: 505 of 904 state changes were posted instead of 898.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from machines_sim import Plant, account, make_shift

SHIFT = make_shift(machines=50, hours=8.0)
TIGHT = "{max_posts: 3, window: 5m}"

MODES = {
    "live": {"speed": 1.0, "tick": 10.0},
    "replayed 100x faster": {"speed": 100.0, "tick": 1.0},
    "clock 90 days behind": {"speed": 1.0, "tick": 10.0, "skew": 90 * 86400.0},
    "clock 60 days ahead": {"speed": 1.0, "tick": 10.0, "skew": -60 * 86400.0},
}


@pytest.fixture(scope="module")
def live() -> list[str]:
    posts = Plant(flood=TIGHT).replay(SHIFT, **MODES["live"])  # type: ignore[arg-type]
    return sorted(p.id for p in posts if p.type == "machine.state_changed")


@pytest.mark.parametrize("mode", list(MODES))
def test_every_state_change_is_a_post_or_counted(mode: str, live: list[str]) -> None:
    posts = Plant(flood=TIGHT).replay(SHIFT, **MODES[mode])  # type: ignore[arg-type]
    tally = account(posts)
    assert tally["total"] == SHIFT.transitions, tally
    assert len({p.id for p in posts}) == len(posts), "two posts with one id: one is lost"
    # the flood windows decide on event time: the same changes shown at any speed or skew
    shown = sorted(p.id for p in posts if p.type == "machine.state_changed")
    assert shown == live
    assert tally["posted"] > 0.95 * SHIFT.transitions, tally  # the offline posts swallow none


def test_silence_posts_carry_the_event_time_gap() -> None:
    started = datetime.now(UTC)  # the shift ended an hour before the replay starts
    posts = Plant(flood=TIGHT).replay(SHIFT, **MODES["replayed 100x faster"])  # type: ignore[arg-type]
    offline = [p for p in posts if p.type == "machine.offline"]
    assert offline, "each machine pauses two hours: silence must notice"
    for post in offline:
        # stamped with the machine's last reading (hours ago), not the replay's wall clock
        assert post.occurred_at < started - timedelta(minutes=30)
        assert post.summary.startswith(f"{post.subject} offline: no data since ")


@pytest.mark.parametrize("mode", ["live", "replayed 100x faster"])
def test_with_settling_and_flap_detection_nothing_is_lost(mode: str) -> None:
    states = "states: {settle: 45s, flap: {changes: 3, within: 2m, stable: 5m}}"
    posts = Plant(flood=TIGHT, settle=states).replay(SHIFT, **MODES[mode])  # type: ignore[arg-type]
    tally = account(posts)
    assert tally["total"] == SHIFT.transitions, tally
    assert tally.get("flapping", 0) > 0, "the bursts of three changes in a minute flap"
    assert len({p.id for p in posts}) == len(posts)
