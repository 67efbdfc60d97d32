"""``silence``: offline after N seconds without data, online again on the next reading."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from floorstream.detectors.silence import OFFLINE_TOLD, Silence
from floorstream.model import Severity
from floorstream.plugin import phrasing
from floorstream.testing.detectors import T0, DetectorConformance, Runner, make, phrase


class TestSilenceConformance(DetectorConformance):
    """The detector kit's contract on the builtin: it ticks it between the readings, so the
    offline post (found on a tick) and the online one (on the next reading) both count."""

    detector = Silence
    options = {"after": "5s"}
    readings = [{"v": 1}, {"v": 2}, {"v": 3}]
    times = [0, 1, 20]

    def test_the_kit_ticks_a_ticking_detector(self) -> None:
        events = self._run()
        assert [e.type for e in events] == ["machine.offline", "machine.online"]
        assert events[0].fields["silent_s"] == 5  # on the tick 5 s after the last reading


def test_offline_after_the_silence_and_back_online() -> None:
    run = Runner(make(Silence, after="60s"))
    run.feed({"v": 1}, at=0, position="r1")
    run.feed({"v": 2}, at=10, position="r2")
    assert run.tick(30) == []
    assert run.tick(69) == []
    (offline,) = run.tick(71)
    assert offline.type == "machine.offline" and offline.severity is Severity.WARNING
    assert offline.fields["silent_s"] == 61 and offline.fields["after_s"] == 60
    assert offline.attrs == {"area": "pressing"}
    # the event-time gap, never the wall clock: it happened when the subject last spoke
    assert offline.occurred_at == T0 + timedelta(seconds=10)
    assert offline.fields["since"] == (T0 + timedelta(seconds=10)).isoformat()
    assert phrase(offline) == ("press-07 offline: nothing received for 1 min, last data from "
                               "06:00 UTC")
    with phrasing.in_zone(ZoneInfo("Europe/Berlin")):  # display.timezone: the plant's clock
        assert phrase(offline) == ("press-07 offline: nothing received for 1 min, last data "
                                   "from 07:00 CET")
    assert run.tick(100) == [] and run.tick(500) == []  # said once, not every tick
    (online,) = run.feed({"v": 3}, at=610, position="r3")
    assert online.type == "machine.online" and online.clears == offline.id
    assert online.fields["silent_s"] == 600
    assert phrase(online) == "press-07 back online after 10 min"
    assert run.tick(620) == []


def test_every_reading_keeps_it_online() -> None:
    run = Runner(make(Silence, after=30, severity="critical"))
    for at in range(0, 300, 20):
        run.feed({"v": at}, at=at)
        assert run.tick(at + 25) == []
    (offline,) = run.tick(400)
    assert offline.severity is Severity.CRITICAL


def test_no_state_no_alarm_and_offline_id_is_replay_stable() -> None:
    assert Runner(make(Silence, after=5)).tick(1000) == []

    def offline_id() -> str:
        run = Runner(make(Silence, after=5))
        run.feed({"v": 1}, at=0, position="r9")
        (event,) = run.tick(10)
        return event.id

    assert offline_id() == offline_id()


def test_state_survives_a_restart() -> None:
    run = Runner(make(Silence, after=60))
    run.feed({"v": 1}, at=0)
    restarted = Runner(make(Silence, after=60))
    restarted.state = run.state  # what the store would hand back
    assert len(restarted.tick(90)) == 1


def test_a_sparkplug_node_lives_while_its_devices_talk() -> None:
    """A device's message (attrs naming its Sparkplug group and node) is its node's too."""
    silence = make(Silence, after="10s")
    node, device = Runner(silence), Runner(silence)
    sparkplug = {"group": "G", "node": "Gw"}
    node.feed({}, at=0, subject="Gw", attrs=sparkplug)  # its NBIRTH: no metric of its own
    for at in range(2, 40, 5):
        device.feed({"T": at}, at=at, subject="Press07", attrs=sparkplug)
        assert node.tick(at + 4, subject="Gw") == []
    (offline,) = node.tick(48, subject="Gw")  # the devices fell silent too: so is the node
    assert offline.fields["silent_s"] == 11
    other = Runner(silence)  # attrs "node" without a Sparkplug group: not a device's message
    other.feed({}, at=50, subject="Gw2", attrs={"group": "G", "node": "Gw2"})
    Runner(silence).feed({"T": 1}, at=55, subject="x", attrs={"node": "Gw2"})
    assert len(other.tick(61, subject="Gw2")) == 1


def test_a_death_its_source_posted_is_not_posted_again() -> None:
    """A Change of kind ``presence.offline`` (the Sparkplug adapter's NDEATH/DDEATH): offline
    without a post of silence's own, and back without one on the birth."""
    run = Runner(make(Silence, after="10s"))
    run.feed({"T": 1}, at=0)
    assert run.feed({}, at=3, kind=OFFLINE_TOLD) == []
    assert run.tick(20) == [] and run.tick(100) == []
    assert run.feed({"T": 2}, at=120) == []  # the birth: the adapter posts "back online"
    (offline,) = run.tick(131)  # silent again by data: silence's own post, as always
    assert offline.type == "machine.offline"
