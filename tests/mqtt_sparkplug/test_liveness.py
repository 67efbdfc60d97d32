"""``silence`` on a Sparkplug source measures liveness, not only data: a node whose metrics
are all its devices' is alive while its devices talk, and a node or device whose death the
adapter posted (NDEATH, DDEATH) is never posted offline a second time by ``silence``, nor
online a second time after its birth."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from support import wait_for

from .conftest import Session

pytestmark = pytest.mark.mqtt

DETECT = """      - state_change: {field: State}
      - silence: {after: 3s}"""


def test_a_node_lives_while_its_devices_talk_and_a_death_is_posted_once(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 0.3", detect=DETECT)
    gw, probe = sp.node("Gw"), sp.node("Probe")
    sp.publisher.publish_all([gw.nbirth(), gw.dbirth("Press07", {"State": "RUNNING"}),
                              gw.dbirth("Press08", {"State": "RUNNING"})])
    for _ in range(12):  # 4.2 s of device data, nothing from the node itself: the pace of
        time.sleep(0.35)  # a real edge node, longer than `after` (3 s)
        sp.publisher.publish_all([gw.ddata("Press07", {"State": "RUNNING"})])
    # Press08 said nothing since its birth: silent by data, as before
    wait_for(lambda: any(s.startswith("Press08 offline") for s in sp.summaries()), 10,
             "Press08's silence")
    sp.publisher.publish_all([gw.ndeath(), probe.nbirth()])
    # the probe is born after the death and says nothing more: once silence has posted it,
    # it has looked at Gw and its devices well past `after` since the death
    wait_for(lambda: any(s.startswith("Probe offline") for s in sp.summaries()), 10,
             "the probe's silence")
    gw.bdseq += 1
    sp.publisher.publish_all([gw.nbirth(), gw.dbirth("Press07", {"State": "RUNNING"})])
    sp.sentinel()
    summaries = sp.summaries()
    assert [s.split(":")[0] for s in summaries] == [
        "Press08 offline", "Gw offline — 2 machines silent", "Probe offline",
        "Gw back online after 1 s"], summaries
    assert not sp.store.quarantined(source="sp")


def test_the_adapter_and_silence_agree_on_the_kind_of_a_told_death() -> None:
    from floorstream.adapters.mqtt import sparkplug
    from floorstream.detectors import silence
    assert sparkplug.OFFLINE_TOLD == silence.OFFLINE_TOLD == "presence.offline"
