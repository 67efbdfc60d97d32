"""Across a restart: the births' aliases, an open backfill burst and the hosts' STATE come
back from the checkpoint (committed with the messages that changed them), so nothing is posted
twice and nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from support import wait_for

from .conftest import T0, Session

pytestmark = pytest.mark.mqtt

HOUR = 3_600_000


def test_aliases_and_an_open_backfill_survive_a_restart(
        sparkplug: Callable[..., Session], topic_prefix: str) -> None:
    scada = f"scada-{topic_prefix.replace('/', '-')}"
    sp = sparkplug("reorder_timeout: 5, backfill_quiet: 30, host_state: post",
                   topics=[f"spBv1.0/{topic_prefix.replace('/', '-')}/#",
                           f"spBv1.0/STATE/{scada}"])
    node = sp.node("Gw")
    now = T0 + 3 * HOUR
    sp.publisher.publish_all([
        (f"spBv1.0/STATE/{scada}", json.dumps({"online": False, "timestamp": now}).encode()),
        node.nbirth(now), node.dbirth("Press07", {"State": "RUNNING", "Temperature": 70.0}, now),
        *[node.ddata("Press07", {"Temperature": 80.0 + i}, historical=True,
                     at=T0 + i * 60_000) for i in range(3)]])
    wait_for(lambda: sp.summaries() == ["host application " + scada + " offline"], 10,
             "the offline post")
    sp.restart()  # the burst of 3 is open: it is in the checkpoint, not yet a post
    sp.publisher.publish_all([
        (f"spBv1.0/STATE/{scada}", json.dumps({"online": False, "timestamp": now}).encode()),
        node.ddata("Press07", {"State": "STOPPED"}, at=now + 1000)])
    sp.sentinel()
    assert sp.summaries() == [
        f"host application {scada} offline",  # the retained-style repeat posted nothing
        "Press07: backfilled 3 values 08:00–08:02 UTC (max Temperature 82)",
        "Press07 stopped (was running)",  # the alias resolved from the saved birth
    ]
    assert not sp.store.quarantined(source="sp")
