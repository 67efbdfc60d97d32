"""Item 4 of issue 12: a bad message affects itself only. Hypothesis throws mutated Sparkplug
payloads — cut, bit-flipped, spliced, metric names that are not UTF-8 or hold NUL, on every
message type and on STATE — at a running session, each followed by a valid node that is born
and reports; every valid node after every poison still posts (births included: one NBIRTH
with a bad name once broke every later birth, its bytes stuck in the session state)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floorstream.adapters.mqtt.sparkplug_b import encode_payload
from support import wait_for

from .conftest import T0, Session

pytestmark = pytest.mark.mqtt

PLACEHOLDER = "Q" * 8


def _base(kind: str, seq: int) -> bytes:
    metrics = [{"name": "bdSeq", "datatype": "Int64", "value": 1}] if kind in (
        "NBIRTH", "NDEATH") else []
    metrics += [{"name": PLACEHOLDER, "alias": 7, "datatype": "String", "value": "RUNNING"},
                {"alias": 8, "datatype": "Double", "value": 71.5},
                {"name": "Temperature", "datatype": "Float", "value": 99.5,
                 "is_historical": True}]
    return encode_payload(metrics, timestamp=T0 + seq, seq=None if kind == "NDEATH" else seq)


edits = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 400), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(1, 400), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 400), st.sampled_from(
        [0x00, 0xFF, 0x80, 0x0A, 0x12, 0x7F]))), max_size=3)


@st.composite
def poisons(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDEATH", "DDEATH",
                                 "STATE"]))
    node = f"Poison{draw(st.integers(0, 2))}"
    if kind == "STATE":
        return f"spBv1.0/STATE/{node}", draw(st.binary(max_size=40))
    payload = _base(kind, draw(st.integers(0, 255)))
    name = draw(st.binary(min_size=8, max_size=8))  # same length: the framing holds
    payload = payload.replace(PLACEHOLDER.encode(), name)
    data = bytearray(payload)
    for op, at, arg in draw(edits):
        at = min(at, len(data))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << arg
        elif op == "cut":
            del data[max(1, at):]
        elif op == "insert":
            data[at:at] = bytes([arg])
    device = "/Dev" if kind.startswith("D") else ""
    return f"{{ns}}/{kind}/{node}{device}", bytes(data)


def test_poison_affects_itself_only(sparkplug: Callable[..., Session]) -> None:
    sp = sparkplug("reorder_timeout: 0.2, host_state: post")
    sent: list[str] = []

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(poison=poisons())
    def one(poison: tuple[str, bytes]) -> None:
        topic, payload = poison
        node = sp.node(f"Valid{len(sent)}")
        device = f"Machine{len(sent)}"
        sent.append(device)
        sp.publisher.publish_all([
            (topic.replace("{ns}", sp.ns), payload),
            node.nbirth(), node.dbirth(device, {"State": "RUNNING", "Temperature": 70.0}),
            node.ddata(device, {"State": "STOPPED"})])
        wait_for(lambda: any(p.subject == device for p in sp.posts()), 10,
                 f"the post of {device} after {topic} {payload!r}")

    one()
    posts = [p for p in sp.posts() if p.subject.startswith("Machine")]
    assert [(p.subject, p.summary) for p in posts] == [
        (d, f"{d} stopped (was running)") for d in sent]
    rows = sp.store.quarantined(source="sp", limit=1000)
    assert len(rows) >= 10  # the poison was poison: it went to the quarantine
