"""Flood control: the first N posts per subject and window pass, the rest become one digest,
then a "calm again" post once a window passes without suppression."""

from __future__ import annotations

import json
from datetime import timedelta

from floorstream.flood import FloodControl, FloodOptions
from floorstream.model import Event, Severity
from floorstream.plugin.detector import DetectorState
from floorstream.testing.detectors import T0, phrase


def _event(at: float, n: int, type: str = "machine.state_changed",
           severity: Severity = Severity.NOTICE, subject: str = "press-07") -> Event:
    return Event.create(type=type, source="presses", subject=subject, position=f"p{n}",
                        occurred_at=T0 + timedelta(seconds=at), severity=severity,
                        attrs={"area": "pressing"})


class Flood:
    def __init__(self, max_posts: int = 3, window: float = 60) -> None:
        self.control = FloodControl(FloodOptions(max_posts=max_posts, window=window), "presses")
        self.state = DetectorState()
        self.out: list[Event] = []

    def admit(self, event: Event, wall: float | None = None) -> list[Event]:
        """``wall``: the wall clock in seconds after T0 (default: real time, no lag)."""
        now = event.occurred_at if wall is None else T0 + timedelta(seconds=wall)
        found = self.control.admit(event, self.state, now=now)
        self.state = DetectorState(json.loads(json.dumps(self.state.data)))
        self.out.extend(found)
        return found

    def tick(self, at: float) -> list[Event]:
        found = self.control.tick(T0 + timedelta(seconds=at), "press-07", self.state)
        self.out.extend(found)
        return found


def test_under_the_limit_everything_passes() -> None:
    flood = Flood(max_posts=3)
    for n in range(3):
        assert flood.admit(_event(n, n)) == [_event(n, n)]
    assert flood.admit(_event(100, 9)) == [_event(100, 9)]
    assert [e.type for e in flood.out if e.type.startswith("flood")] == []


def test_the_rest_of_a_window_becomes_one_digest_then_calm() -> None:
    flood = Flood(max_posts=3, window=60)
    passed = [e for n in range(10) for e in flood.admit(
        _event(n, n, severity=Severity.CRITICAL if n == 7 else Severity.NOTICE,
               type="metric.limit_exceeded" if n % 2 else "machine.state_changed"))]
    assert [e.position for e in passed] == ["p0", "p1", "p2"]
    # the next window's first event closes the flooded one: digest first, then the event
    digest, event = flood.admit(_event(65, 10))
    assert event.position == "p10"
    assert digest.type == "flood.digest" and digest.severity is Severity.CRITICAL
    assert digest.fields["suppressed"] == 7
    assert digest.fields["by_type"] == {"machine.state_changed": 3, "metric.limit_exceeded": 4}
    assert digest.occurred_at == T0 + timedelta(seconds=60)
    assert digest.attrs == {"area": "pressing"}
    assert phrase(digest) == ("press-07: 7 more posts in 1 min not shown "
                                       "(4 limit exceeded, 3 state changed)")
    # a whole quiet window later: calm again, then the event
    calm, later = flood.admit(_event(200, 11))
    assert calm.type == "flood.calm" and calm.severity is Severity.INFO
    assert later.position == "p11"
    assert phrase(calm) == "press-07: calm again, every post shown from now on"
    assert flood.admit(_event(300, 12)) == [_event(300, 12)]  # calm said once


def test_a_tick_closes_a_window_when_the_subject_goes_quiet() -> None:
    flood = Flood(max_posts=1, window=60)
    for n in range(4):
        flood.admit(_event(n, n))
    assert flood.tick(30) == []  # window still open
    (digest,) = flood.tick(61)
    assert digest.type == "flood.digest" and digest.fields["suppressed"] == 3
    assert flood.tick(62) == []
    (calm,) = flood.tick(121)
    assert calm.type == "flood.calm"
    assert flood.tick(500) == []


def test_digest_ids_are_the_same_on_a_replay() -> None:
    def play() -> list[str]:
        flood = Flood(max_posts=2)
        for n in range(8):
            flood.admit(_event(n * 5, n))
        flood.admit(_event(70, 99))
        flood.admit(_event(500, 100))
        return [e.id for e in flood.out]

    first = play()
    assert len(first) == 2 + 1 + 1 + 1 + 1 and first == play()


def test_history_replayed_with_ticks_in_between_loses_nothing() -> None:
    """Events from the past (a backfill, the simulator's clock) arrive while the wall-clock tick
    runs: every event must be either posted or counted in a digest."""
    flood = Flood(max_posts=3, window=600)
    wall = 10 * 86400  # the wall clock is days ahead of the events' own time
    for n in range(20):
        flood.admit(_event(n * 10, n), wall=wall + n)
        flood.tick(wall + n + 0.5)
    flood.admit(_event(1000, 20), wall=wall + 30)
    flood.tick(wall + 31)
    flood.tick(wall + 2000)  # quiet for long after: the last window closes too
    shown = [e for e in flood.out if not e.type.startswith("flood.")]
    digested = sum(e.fields["suppressed"] for e in flood.out if e.type == "flood.digest")
    assert len(shown) + digested == 21, [e.type for e in flood.out]
    assert len([e for e in shown if e.occurred_at < T0 + timedelta(seconds=600)]) == 3
    assert [e.type for e in flood.out if e.type.startswith("flood.")] == [
        "flood.digest", "flood.calm"]


def test_a_late_event_is_counted_in_the_window_after_the_one_the_tick_closed() -> None:
    """Windows only move forward: an event older than a closed window goes into the next one
    (its own digest, its own id), never back into the closed one and never lost."""
    flood = Flood(max_posts=2, window=60)
    flood.admit(_event(0, 0))
    assert flood.tick(61) == []  # closed, nothing suppressed
    for n in range(1, 5):  # the source resumes with older readings
        flood.admit(_event(10 + n, n), wall=200)
    (digest,) = [e for e in flood.tick(400) if e.type == "flood.digest"]
    assert digest.fields["suppressed"] == 2
    # the window after the closed one
    assert digest.position == f"flood:{(T0 + timedelta(seconds=60)).timestamp():.3f}"
    shown = [e for e in flood.out if not e.type.startswith("flood.")]
    assert len(shown) + digest.fields["suppressed"] == 5


def test_a_window_closes_in_event_time_when_the_watermark_passes_it() -> None:
    """A replay faster than real time: the source's event time (from other subjects) passes
    the window's end long before its length in wall time went by."""
    flood = Flood(max_posts=1, window=60)
    for n in range(3):
        flood.admit(_event(n, n), wall=0)
    assert flood.control.tick(T0 + timedelta(seconds=1), "press-07", flood.state,
                              event_now=(T0 + timedelta(seconds=59)).timestamp()) == []
    (digest,) = flood.control.tick(T0 + timedelta(seconds=1), "press-07", flood.state,
                                   event_now=(T0 + timedelta(seconds=60)).timestamp())
    assert digest.fields["suppressed"] == 2


def test_a_window_open_at_a_stop_is_flushed_after_the_restart() -> None:
    """The window is in the persisted state; the restarted daemon knows no watermark yet,
    and the wall clock closes it within its length."""
    flood = Flood(max_posts=1, window=60)
    for n in range(3):
        flood.admit(_event(n, n), wall=0)
    restarted = Flood(max_posts=1, window=60)
    restarted.state = DetectorState(json.loads(json.dumps(flood.state.data)))
    assert restarted.tick(30) == []
    (digest,) = restarted.tick(61)
    assert digest.fields["suppressed"] == 2
