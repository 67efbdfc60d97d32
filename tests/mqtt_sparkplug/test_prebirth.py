"""Item 2 of issue 12: data whose aliases no birth defined waits for the birth (reported once
per node and session), is replayed through the detectors ahead of the birth's values; what
overflows the bound is quarantined once, with a count."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support import wait_for

from .conftest import Node, Session

pytestmark = pytest.mark.mqtt


def _learn_aliases(node: Node) -> None:
    """The aliases the node's DBIRTH will define (State 1, Temperature 2)."""
    node.aliases.update({"State": 1, "Temperature": 2})


def test_data_before_the_birth_waits_and_is_replayed_when_the_birth_comes(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5")
    node = sp.node("Gw")
    _learn_aliases(node)
    node.seq = 40  # floorstream started in the middle of the session
    early = [node.ddata("Press07", {"State": "STOPPED"}),
             node.ddata("Press07", {"State": "RUNNING"}),
             node.ddata("Press07", {"State": "FAULT"})]
    sp.publisher.publish_all(early)
    wait_for(lambda: sp.summaries(), 10, "the report")
    # the node is asked for a rebirth by its Primary Host (not us): births, then data
    node.bdseq += 1
    sp.publisher.publish_all([node.nbirth(),
                              node.dbirth("Press07", {"State": "FAULT", "Temperature": 70.0}),
                              node.ddata("Press07", {"State": "RUNNING"})])
    sp.sentinel()
    posts = [p for p in sp.posts() if not p.subject.startswith("Sentinel")]
    assert [p.summary for p in posts] == [
        "unresolved aliases from Press07, waiting for a birth",
        "Press07 running (was stopped)",  # replayed: the first value was the baseline
        "Press07 fault (was running)",
        "Press07 running (was fault)",  # after the birth (whose FAULT changed nothing)
    ]
    assert posts[0].type == "sparkplug.awaiting_birth" and posts[0].thread == "Gw"
    assert not sp.store.quarantined(source="sp")


def test_what_overflows_the_wait_is_quarantined_once_with_a_count(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5, birth_buffer: 2")
    node = sp.node("Gw")
    _learn_aliases(node)
    node.seq = 10
    states = ["STOPPED", "RUNNING", "FAULT", "STOPPED", "RUNNING", "FAULT"]
    sp.publisher.publish_all([node.ddata("Press07", {"State": s}) for s in states])
    wait_for(lambda: sp.summaries(), 10, "the report")
    sp.publisher.publish_all([node.nbirth(),
                              node.dbirth("Press07", {"State": "RUNNING", "Temperature": 70.0})])
    sp.sentinel()
    assert sp.summaries() == ["unresolved aliases from Press07, waiting for a birth",
                              "Press07 running (was stopped)"]  # the two that were held
    rows = sp.store.quarantined(source="sp")
    assert len(rows) == 1, [r.error for r in rows]
    assert rows[0].error.startswith("4 messages from node ")
    assert rows[0].context["count"] == 4
    assert "unknown alias 1" in rows[0].error
    assert rows[0].raw == node_payload(states, 2)


def node_payload(states: list[str], index: int) -> bytes:
    """The bytes of the ``index``-th message of the overflow test (the first given up)."""
    node = Node("x", "Gw")
    _learn_aliases(node)
    node.seq = 10
    payloads = [node.ddata("Press07", {"State": s})[1] for s in states]
    return payloads[index]


def test_a_wait_that_outlasts_birth_wait_is_quarantined_and_acked(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5, birth_wait: 0.3")
    node = sp.node("Gw")
    _learn_aliases(node)
    node.seq = 3
    sp.publisher.publish_all([node.ddata("Press07", {"State": "STOPPED"}),
                              node.ddata("Press07", {"State": "RUNNING"})])
    rows = wait_for(lambda: sp.store.quarantined(source="sp"), 10, "the quarantine entry")
    assert len(rows) == 1 and rows[0].error.startswith("2 messages from node ")
    assert sp.summaries() == ["unresolved aliases from Press07, waiting for a birth"]


def test_held_messages_never_fill_the_brokers_in_flight_window(
        sparkplug: Callable[..., Session]) -> None:
    """MQTT 3.1.1: Mosquitto lets 20 unacked QoS 1 messages be in flight. Held messages keep
    their acks, so at most 10 are held; the rest are given up at once (acked, counted), and
    the source goes on (the sentinel node behind them posts long before birth_wait)."""
    sp = sparkplug("reorder_timeout: 5, birth_wait: 60s", protocol="3.1.1")
    node = sp.node("Gw")
    _learn_aliases(node)
    node.seq = 100
    states = ["STOPPED" if i % 2 == 0 else "RUNNING" for i in range(30)]
    sp.publisher.publish_all([node.ddata("Press07", {"State": s}) for s in states])
    sp.sentinel()  # would wait for birth_wait (60 s) if the window were full
    sp.publisher.publish_all([node.nbirth(),
                              node.dbirth("Press07", {"State": "RUNNING", "Temperature": 70.0})])
    sp.sentinel()
    summaries = sp.summaries()
    assert summaries[0] == "unresolved aliases from Press07, waiting for a birth"
    assert summaries[1:] == ["Press07 running (was stopped)",
                             "Press07 stopped (was running)"] * 4 + [
                                 "Press07 running (was stopped)"]  # the 10 held, replayed
    rows = sp.store.quarantined(source="sp")
    assert len(rows) == 1 and rows[0].context["count"] == 20
