"""Flood control: per subject and window, N posts at least as severe as each post pass, the
rest become one digest, then a "calm again" post once a window passes without suppression.
Routine chatter never folds a fault; a clear follows its alarm (posted or folded)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import floorstream
from floorstream.detectors.threshold import Threshold
from floorstream.flood import FloodControl
from floorstream.model import Event, Severity
from floorstream.plugin import FloodOptions
from floorstream.plugin.detector import DetectorState
from floorstream.testing.detectors import T0, Runner, change, make, phrase


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
    # the critical is more severe than anything before it in the window: it goes out
    assert [e.position for e in passed] == ["p0", "p1", "p2", "p7"]
    # the next window's first event closes the flooded one: digest first, then the event
    digest, event = flood.admit(_event(65, 10))
    assert event.position == "p10"
    assert digest.type == "flood.digest" and digest.severity is Severity.NOTICE
    assert digest.fields["suppressed"] == 6
    assert digest.fields["by_type"] == {"metric.limit_exceeded": 3, "machine.state_changed": 3}
    assert digest.fields["by_severity"] == {"notice": 6}
    assert digest.occurred_at == T0 + timedelta(seconds=60)
    assert digest.attrs == {"area": "pressing"}
    assert phrase(digest) == ("press-07: 6 more posts in 1 min not shown "
                              "(3 limit exceeded, 3 state changed)")
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


# -- severity: routine chatter never folds a fault --------------------------------------------

def _cycle(at: float, n: int) -> Event:
    """A busy machine's routine post (MTConnect's "cycle complete, part N")."""
    return _event(at, n, type="mtconnect.cycle_complete", severity=Severity.INFO)


def _accounted(flood: Flood, admitted: int) -> None:
    """Every admitted post went out or is counted in a digest (close the windows first)."""
    shown = [e for e in flood.out if not e.type.startswith("flood.")]
    folded = sum(e.fields["suppressed"] for e in flood.out if e.type == "flood.digest")
    assert len(shown) + folded == admitted, [e.type for e in flood.out]


def _thermometer() -> Runner:
    return Runner(make(Threshold, field="temp", above=85, clear_below=80, unit="°C",
                       levels={"critical": 90}))


def test_fifty_routine_posts_do_not_fold_the_fault_after_them() -> None:
    flood = Flood(max_posts=10, window=300)
    for n in range(50):
        flood.admit(_cycle(n, n))
    (fault,) = flood.admit(_event(55, 50, type="mtconnect.condition",
                                  severity=Severity.CRITICAL))
    assert fault.position == "p50"
    # more routine posts stay folded; the window's digest counts them at their severity
    assert flood.admit(_cycle(56, 51)) == []
    (digest,) = flood.tick(301)
    assert digest.severity is Severity.INFO
    assert digest.fields["suppressed"] == 41
    assert digest.fields["by_type"] == {"mtconnect.cycle_complete": 41}
    assert digest.fields["by_severity"] == {"info": 41}
    _accounted(flood, 52)


def test_each_severity_has_its_budget_and_posts_that_went_out_spend_lower_ones() -> None:
    """Folded only when max_posts posts at least as severe went out in the window: warnings
    spend the info budget too, so a window shows at most max_posts posts per level."""
    flood = Flood(max_posts=2, window=60)
    shown = [e.position for n in range(3) for e in flood.admit(
        _event(n, n, severity=Severity.WARNING))]
    assert shown == ["p0", "p1"]
    assert flood.admit(_cycle(4, 3)) == []  # two warnings went out: no room for info
    assert flood.admit(_event(5, 4, severity=Severity.NOTICE)) == []
    assert [e.position for e in flood.admit(_event(6, 5, severity=Severity.CRITICAL))] == ["p5"]
    assert [e.position for e in flood.admit(_event(7, 6, severity=Severity.CRITICAL))] == ["p6"]
    assert flood.admit(_event(8, 7, severity=Severity.CRITICAL)) == []
    (digest,) = flood.tick(61)
    assert digest.severity is Severity.CRITICAL
    assert digest.fields["by_severity"] == {"warning": 1, "info": 1, "notice": 1, "critical": 1}
    assert phrase(digest) == ("press-07: 4 more posts in 1 min not shown (3 state changed, "
                              "1 cycle complete; 1 critical, 1 warning)")
    _accounted(flood, 8)


def test_a_clear_goes_out_when_its_alarm_did_even_after_the_budget_is_spent() -> None:
    flood, temp = Flood(max_posts=3, window=300), _thermometer()
    (raised,) = temp.feed({"temp": 87}, at=0)
    assert flood.admit(raised) == [raised]
    for n in range(10):  # the info budget is spent on routine posts
        flood.admit(_cycle(1 + n, n))
    (cleared,) = temp.feed({"temp": 70}, at=20)
    assert cleared.relation == "resolution" and cleared.severity is Severity.INFO
    assert flood.admit(cleared) == [cleared]
    # the clear went out outside the budget: the next warning still has its own
    (again,) = temp.feed({"temp": 88}, at=30)
    assert flood.admit(again) == [again]
    flood.tick(301)
    _accounted(flood, 13)


def test_a_clear_whose_alarm_was_folded_is_folded_with_it_even_windows_later() -> None:
    flood, temp = Flood(max_posts=1, window=60), _thermometer()
    assert len(flood.admit(_event(0, 0, severity=Severity.WARNING))) == 1  # spends the warning
    (raised,) = temp.feed({"temp": 87}, at=1)
    assert flood.admit(raised) == []  # folded
    for n in range(200):  # routine folds never push the folded alarm out of memory
        flood.admit(_cycle(2 + n * 0.1, 100 + n))
    (digest,) = flood.tick(61)
    assert digest.fields["by_type"] == {"metric.limit_exceeded": 1,
                                        "mtconnect.cycle_complete": 200}
    (cleared,) = temp.feed({"temp": 70}, at=130)  # in a later window, after a restart
    restarted = Flood(max_posts=1, window=60)
    restarted.state = DetectorState(json.loads(json.dumps(flood.state.data)))
    # the window before it was calm; the clear itself is folded
    assert [e.type for e in restarted.admit(cleared)] == ["flood.calm"]
    (digest,) = [e for e in restarted.tick(200) if e.type == "flood.digest"]
    assert digest.fields["by_type"] == {"metric.limit_cleared": 1}
    assert flood.out[-1].id != digest.id  # each window its own digest


def test_an_update_that_goes_out_stands_in_for_its_folded_alarm() -> None:
    """The warning raise was folded, its escalation to critical is more severe than anything
    posted: it goes out, and the clear answers it instead of the post nobody saw."""
    flood, temp = Flood(max_posts=1, window=300), _thermometer()
    flood.admit(_event(0, 0, severity=Severity.WARNING))
    (raised,) = temp.feed({"temp": 87}, at=1)
    assert flood.admit(raised) == []
    (escalated,) = temp.feed({"temp": 92}, at=2)
    assert escalated.relation == "update" and escalated.refers_to == raised.id
    assert flood.admit(escalated) == [escalated]
    (cleared,) = temp.feed({"temp": 70}, at=3)
    assert cleared.refers_to == raised.id
    (out,) = flood.admit(cleared)
    assert out.id == cleared.id and out.refers_to == escalated.id
    assert out.relation == "resolution"
    flood.tick(301)
    _accounted(flood, 4)


def test_a_retraction_follows_its_post() -> None:
    flood = Flood(max_posts=1, window=60)
    shown = _event(0, 0)
    folded = _event(1, 1)
    assert flood.admit(shown) == [shown] and flood.admit(folded) == []

    def retract(post: Event, n: int) -> Event:
        return Event.create(type="record.retracted", source="presses", subject="press-07",
                            position=f"r{n}", occurred_at=T0 + timedelta(seconds=2 + n),
                            relation="retraction", refers_to=post.id)

    assert flood.admit(retract(shown, 0)) == [retract(shown, 0)]
    assert flood.admit(retract(folded, 1)) == []
    (digest,) = flood.tick(61)
    assert digest.fields["by_type"] == {"machine.state_changed": 1, "record.retracted": 1}


def test_a_window_opened_before_the_upgrade_keeps_its_count_as_info() -> None:
    """A state persisted by the severity-blind flood control (``count``): its posts spend
    the info budget, a warning still goes out."""
    flood = Flood(max_posts=3, window=60)
    flood.state = DetectorState({"start": T0.timestamp(), "count": 3, "suppressed": {},
                                 "weights": {}, "severity": 0, "flooding": False,
                                 "opened": T0.timestamp(), "open": True, "attrs": {}})
    assert flood.admit(_cycle(5, 1)) == []
    warning = _event(6, 2, severity=Severity.WARNING)
    assert flood.admit(warning) == [warning]
    (digest,) = flood.tick(61)
    assert digest.fields["suppressed"] == 1


def test_through_the_pipeline_the_clear_answers_the_escalation_and_is_not_counted(
        tmp_path: Path) -> None:
    """The library API on a real SQLite store: the posts as committed, and the metric of what
    flood control held back (a re-pointed clear is a copy of the event, yet it went out)."""
    config = {
        "store": f"sqlite:///{tmp_path}/fs.db", "flood": {"max_posts": 1, "window": "5m"},
        "sources": [{"name": "presses", "adapter": "simulator", "detect": [
            {"threshold": {"field": "load", "above": 50}},
            {"threshold": {"field": "temp", "above": 85, "clear_below": 80,
                           "levels": {"critical": 90}}}]}]}
    with floorstream.open(config) as stream:
        readings = [{"load": 60, "temp": 70}, {"load": 60, "temp": 87},
                    {"load": 60, "temp": 92}, {"load": 60, "temp": 70}]
        for n, data in enumerate(readings):
            stream.publish_change(change(data, at=n, position=n))
        posts = sorted(stream.feed("general"), key=lambda p: p.occurred_at)
        assert [(p.type, p.severity.label) for p in posts] == [
            ("metric.limit_exceeded", "warning"),       # load: spends the warning budget
            ("metric.limit_escalated", "critical"),     # temp's raise (warning) was folded
            ("metric.limit_cleared", "info")]
        assert posts[2].relation == "resolution" and posts[2].refers_to == posts[1].id
        assert stream.pipeline.processor.sources["presses"].flood_suppressed == 1
