"""Item 1 of issue 12: a node's messages are processed in ``seq`` order; a gap the reorder
timeout gives up is one log line and makes the next values uncertain; a rebirth is asked for
only by a Primary Host."""

from __future__ import annotations

import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder
from support import wait_for

from .conftest import Session

pytestmark = pytest.mark.mqtt


def test_out_of_order_messages_are_processed_in_seq_order(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5")
    node = sp.node("Gw")
    birth = [node.nbirth(), node.dbirth("Press07", {"State": "RUNNING"})]
    s2 = node.ddata("Press07", {"State": "STOPPED"})
    s3 = node.ddata("Press07", {"State": "RUNNING"})
    s4 = node.ddata("Press07", {"State": "FAULT"})
    sp.publisher.publish_all([*birth, s2, s4, s3])  # seq 1, 2, 4, 3
    sp.sentinel()
    assert sp.summaries() == ["Press07 stopped (was running)",
                              "Press07 running (was stopped)",
                              "Press07 fault (was running)"]
    assert not sp.store.quarantined(source="sp")


def test_seq_wraps_from_255_to_0_in_order(sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5")
    node = sp.node("Gw")
    messages = [node.nbirth(), node.dbirth("Press07", {"State": "RUNNING"})]
    messages += [node.ddata("Press07", {"State": "RUNNING"}) for _ in range(252)]  # …253
    s254 = node.ddata("Press07", {"State": "STOPPED"})
    s255 = node.ddata("Press07", {"State": "RUNNING"})
    s0 = node.ddata("Press07", {"State": "FAULT"})
    s1 = node.ddata("Press07", {"State": "STOPPED"})
    assert [node.seq] == [1]
    sp.publisher.publish_all([*messages, s0, s255, s1, s254])
    sp.sentinel()
    assert sp.summaries() == ["Press07 stopped (was running)",
                              "Press07 running (was stopped)",
                              "Press07 fault (was running)",
                              "Press07 stopped (was fault)"]


class _Witness:
    """A plain subscriber to the group's NCMD topics."""

    def __init__(self, sp: Session) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *a: self.ready.set()
        host, port = sp.publisher.client._host, sp.publisher.client._port
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(f"{sp.ns}/NCMD/#", qos=1)
        assert self.ready.wait(10)

    def marked(self, sp: Session) -> list[tuple[str, bytes]]:
        """What came before our own marker on the same topic tree."""
        sp.publisher.publish_all([(f"{sp.ns}/NCMD/marker", b"marker")])
        wait_for(lambda: any(t.endswith("/marker") for t, _ in self.got), 10, "the marker")
        self.client.disconnect()
        self.client.loop_stop()
        return [(t, p) for t, p in self.got if not t.endswith("/marker")]


@pytest.mark.parametrize("primary", [False, True])
def test_a_gap_given_up_marks_the_next_values_uncertain_and_only_a_primary_host_asks_rebirth(
        sparkplug: Callable[..., Session], primary: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    sp = sparkplug(f"reorder_timeout: 0.3, primary_host: {str(primary).lower()}")
    witness = _Witness(sp)
    node = sp.node("Gw")
    birth = [node.nbirth(), node.dbirth("Press07", {"State": "RUNNING"}),
             node.dbirth("Press08", {"State": "RUNNING"})]
    s3 = node.ddata("Press07", {"State": "STOPPED"})
    lost = node.ddata("Press07", {"State": "FAULT"})  # seq 4 never arrives
    s5 = node.ddata("Press07", {"State": "RUNNING"})
    s6 = node.ddata("Press08", {"State": "STOPPED"})
    s7 = node.ddata("Press07", {"State": "STOPPED"})
    sp.publisher.publish_all([*birth, s3, s5, s6, s7])
    wait_for(lambda: len(sp.summaries()) >= 4, 10, "the posts after the gap")
    sp.publisher.publish_all([lost])  # too late now: its values are older than the posts
    sp.sentinel()
    posts = [p for p in sp.posts() if not p.subject.startswith("Sentinel")]
    assert [p.summary for p in posts] == [
        "Press07 stopped (was running)",
        "Press07 running (was stopped) — uncertain: 1 message missing before it (seq 4)",
        "Press08 stopped (was running) — uncertain: 1 message missing before it (seq 4)",
        "Press07 stopped (was running)",  # the first values after the gap were the uncertain
    ]
    assert posts[1].fields["uncertain"] == "1 message missing before it (seq 4)"
    assert "uncertain" not in posts[0].fields and "uncertain" not in posts[3].fields
    rows = sp.store.quarantined(source="sp")
    assert len(rows) == 1 and "seq 4 of node" in rows[0].error
    assert "after the reorder timeout" in rows[0].error
    assert sum("sparkplug_seq_gap" in r.getMessage() for r in caplog.records) == 1
    commands = witness.marked(sp)
    if not primary:
        assert commands == []
    else:
        assert [t for t, _ in commands] == [f"{sp.ns}/NCMD/Gw"]
        metric = SparkplugDecoder().decode(commands[0][1])["metrics"][0]
        assert (metric["name"], metric["value"]) == ("Node Control/Rebirth", True)
