"""Item 3 of issue 12: host applications' STATE messages — Sparkplug 3.0 JSON on
``spBv1.0/STATE/<host>`` and 2.2's plain ``ONLINE``/``OFFLINE`` on ``STATE/<host>`` — are
understood and never quarantined; with ``host_state: post`` a host going offline and coming
back are posts (a repeat, an older message or a first "online" are not)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .conftest import T0, Session

pytestmark = pytest.mark.mqtt


def _state(online: bool, at: int) -> bytes:
    return json.dumps({"online": online, "timestamp": at}).encode()


def test_host_application_state_posts(sparkplug: Callable[..., Session],
                                     topic_prefix: str) -> None:
    tag = topic_prefix.replace("/", "-")
    scada, legacy = f"scada-{tag}", f"mes-{tag}"
    sp = sparkplug("host_state: post", topics=[f"spBv1.0/{tag}/#", f"spBv1.0/STATE/{scada}",
                                               f"STATE/{legacy}"])
    publish = sp.publisher.publish_all
    publish([(f"spBv1.0/STATE/{scada}", _state(True, T0)),  # first seen online: baseline
             (f"spBv1.0/STATE/{scada}", _state(False, T0 + 60_000)),
             (f"spBv1.0/STATE/{scada}", _state(False, T0 + 61_000)),  # a repeat
             (f"spBv1.0/STATE/{scada}", _state(True, T0 + 30_000)),  # older than the death
             (f"spBv1.0/STATE/{scada}", _state(True, T0 + 180_000)),
             (f"spBv1.0/STATE/{scada}", b"\xff not json"),  # unreadable: logged, skipped
             (f"STATE/{legacy}", b"OFFLINE"),  # 2.2, first seen offline: a post
             (f"STATE/{legacy}", b"OFFLINE"),
             (f"STATE/{legacy}", b"ONLINE")])
    sp.sentinel()
    posts = [p for p in sp.posts() if not p.subject.startswith("Sentinel")]
    assert [p.summary for p in posts] == [
        f"host application {scada} offline",
        f"host application {scada} back online after 2 min",
        f"host application {legacy} offline",
        f"host application {legacy} back online after 0 s",
    ]
    assert [p.type for p in posts] == ["host.offline", "host.online"] * 2
    assert posts[1].clears == posts[0].id and posts[3].clears == posts[2].id
    assert [p.fields["state"] for p in posts] == ["offline", "online"] * 2
    assert posts[0].thread == scada
    assert not sp.store.quarantined(source="sp")
