"""Item 6 of issue 12: a store-and-forward flush — ``is_historical`` values, or readings with
old timestamps — is one post per device and burst ("backfilled 60 values 08:00–09:00"), and
none of its values reaches the detectors (90 °C an hour ago raises no alarm now)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support import wait_for

from .conftest import T0, Session

pytestmark = pytest.mark.mqtt

HOUR = 3_600_000


def test_a_historical_flush_is_one_post_ended_by_live_data(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5, backfill_quiet: 30")
    node = sp.node("Gw")
    now = T0 + 3 * HOUR  # 11:00; the node was cut off from 08:00 to 09:00
    messages = [node.nbirth(now), node.dbirth("Press07", {"State": "RUNNING",
                                                          "Temperature": 70.0}, now,
                                              units={"Temperature": "°C"})]
    for i in range(60):
        value = 90.0 if i == 42 else 80.0 + i % 5
        messages.append(node.ddata("Press07", {"Temperature": value}, historical=True,
                                   at=T0 + round(i * HOUR / 59)))
    messages.append(node.ddata("Press07", {"Temperature": 71.0}, at=now + 1000))
    messages.append(node.ddata("Press07", {"State": "STOPPED"}, at=now + 2000))
    sp.publisher.publish_all(messages)
    sp.sentinel()
    posts = [p for p in sp.posts() if not p.subject.startswith("Sentinel")]
    assert [p.summary for p in posts] == [
        "Press07: backfilled 60 values 08:00–09:00 UTC (max Temperature 90 °C)",
        "Press07 stopped (was running)"]
    backfill = posts[0]
    assert backfill.type == "metric.backfilled" and backfill.severity.label == "info"
    assert backfill.fields["count"] == 60 and backfill.fields["maxima"] == {"Temperature": 90.0}
    assert (backfill.fields["first_ms"], backfill.fields["last_ms"]) == (T0, T0 + HOUR)
    assert backfill.thread == "Press07"


def test_old_timestamps_without_the_flag_are_a_backfill_ended_by_quiet(
        sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 5, backfill_quiet: 0.3, late_after: 60s")
    node = sp.node("Gw")
    now = T0 + 3 * HOUR
    messages = [node.nbirth(now), node.dbirth("Press07", {"State": "RUNNING",
                                                          "Temperature": 70.0}, now)]
    for i in range(5):  # 09:10 … 09:14, sent at 11:00: old news
        messages.append(node.ddata("Press07", {"Temperature": 91.0 + i, "State": "STOPPED"},
                                   at=T0 + HOUR + (10 + i) * 60_000))
    sp.publisher.publish_all(messages)
    posts = wait_for(lambda: [p for p in sp.posts()], 10, "the backfill post")
    assert [p.summary for p in posts] == [
        "Press07: backfilled 10 values 09:10–09:14 UTC (max Temperature 95)"]
    sp.sentinel()
    assert [p.summary for p in sp.posts() if not p.subject.startswith("Sentinel")] == [
        "Press07: backfilled 10 values 09:10–09:14 UTC (max Temperature 95)"]
