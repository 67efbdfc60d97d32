"""The stages of the Sparkplug host on their own (no broker): the reorder buffer's numbering
(wrap at 255, duplicates, late arrivals, a restart of the count, the hold limit), the birth
wait's bounds, the backfill summary and STATE parsing."""

from __future__ import annotations

from floorstream.adapters.mqtt.backfill import Backfill, summary
from floorstream.adapters.mqtt.hoststate import HostState, HostStates, parse_state
from floorstream.adapters.mqtt.prebirth import BirthWait
from floorstream.adapters.mqtt.reorder import Reorder


def _order(reorder: Reorder[str], seqs: list[int], now: float = 0.0) -> list[str]:
    out: list[str] = []
    for seq in seqs:
        offer = reorder.offer("n", seq, seq, f"m{seq}", now)
        out += [item + ("!" if gap else "") for item, gap in offer.released]
    return out


def test_reorder_wraps_at_255_and_releases_in_order() -> None:
    reorder: Reorder[str] = Reorder(timeout=2.0)
    assert _order(reorder, [253, 255, 0, 254, 2, 1]) == ["m253", "m254", "m255", "m0", "m1",
                                                          "m2"]
    assert reorder.held() == 0


def test_reorder_timeout_duplicates_late_and_jumps() -> None:
    reorder: Reorder[str] = Reorder(timeout=2.0)
    assert _order(reorder, [1, 2, 4, 5]) == ["m1", "m2"]
    assert reorder.expired(1.9) == {}
    released = reorder.expired(2.0)["n"]
    assert [(item, gap.missing if gap else None) for item, gap in released] == [
        ("m4", (3,)), ("m5", None)]
    assert reorder.offer("n", 5, 5, "again", 3.0).kind == "duplicate"  # same bytes again
    assert reorder.offer("n", 3, 3, "m3", 3.0).kind == "late"  # given up on: too late
    jump = reorder.offer("n", 100, 100, "m100", 3.0)  # the node counts from elsewhere now
    assert jump.kind == "held"
    restart = reorder.offer("n", 200, 200, "m200", 3.0)  # far behind 6 and never seen
    assert restart.kind == "released"
    assert [item for item, _ in restart.released] == ["m100", "m200"]
    assert restart.released[-1][1] is not None and restart.released[-1][1].reason == "jump"


def test_reorder_limit_gives_the_gap_up_at_once_and_zero_timeout_keeps_arrival_order() -> None:
    reorder: Reorder[str] = Reorder(timeout=60.0, limit=2)
    assert _order(reorder, [1, 3, 4]) == ["m1"]
    assert _order(reorder, [5]) == ["m3!", "m4", "m5"]  # a third held: the gap is given up
    plain: Reorder[str] = Reorder(timeout=0.0)
    assert _order(plain, [1, 3, 2, 4]) == ["m1", "m3!", "m2!", "m4!"]


def test_birth_wait_bounds_and_takes_per_device() -> None:
    wait: BirthWait[str] = BirthWait(limit=2, wait=10.0)
    assert wait.hold("n", "A", "a1", 0.0, "unknown alias 1") == (True, True)
    assert wait.hold("n", None, "n1", 1.0, "x") == (False, True)
    assert wait.hold("n", "A", "a2", 2.0, "x") == (False, False)  # over the bound
    assert wait.waiting("n", "A") and not wait.waiting("n", "B")
    assert wait.take("n", "A") == ["a1"]
    assert wait.close("n") is None  # n1 still waits
    assert wait.expired(10.9) == []
    assert wait.expired(11.0) == [("n", ["n1"])]
    episode = wait.close("n")
    assert episode is not None and (episode.given_up, episode.sample) == (2, "a2")
    assert episode.reason == "unknown alias 1"


def test_backfill_summary() -> None:
    backfill = Backfill(quiet=5.0)
    t0 = 1_764_057_600_000
    backfill.add("Press07", "G/n", "G/n|1|3|t", {}, [("Temperature", 80.0, t0),
                                                    ("State", "RUNNING", t0)], 1.0)
    backfill.add("Press07", "G/n", "G/n|1|4|t", {}, [("Temperature", 90.5, t0 + 3_600_000),
                                                    ("Speed", float("nan"), None)], 2.0)
    assert backfill.expired(6.9) == []
    [(subject, burst)] = backfill.expired(7.0)
    assert summary(subject, burst) == ("Press07: backfilled 4 values 08:00–09:00 UTC "
                                       "(max Temperature 90.5)")
    assert burst.position == "G/n|1|3|t"
    two_days = Backfill(quiet=1.0)
    two_days.add("P", "G/n", "p", {}, [("T", 1, t0), ("T", 2, t0 + 90_000_000)], 0.0)
    assert summary("P", two_days.bursts["P"]) == (
        "P: backfilled 2 values 25 Nov 08:00–26 Nov 09:00 UTC (max T 2)")


def test_state_parsing_and_changes() -> None:
    assert parse_state(["spBv1.0", "STATE", "scada"], b'{"online": true, "timestamp": 5}') \
        == HostState("scada", True, 5)
    assert parse_state(["STATE", "mes"], b"OFFLINE") == HostState("mes", False, None)
    assert isinstance(parse_state(["STATE", "mes"], b"maybe"), str)
    assert isinstance(parse_state(["spBv1.0", "STATE", "s"], b'{"online": 1}'), str)
    states = HostStates()
    assert states.update(HostState("s", True, 5), 0) is None  # first seen online: baseline
    assert states.update(HostState("s", False, 4), 0) is None  # older than what we know
    found = states.update(HostState("s", False, 6), 0)
    assert found is not None and found[0] == "offline"
    assert states.update(HostState("s", False, 7), 0) is None  # a repeat


def test_a_birth_splits_what_was_held_into_old_stragglers_and_early_new_messages() -> None:
    reorder: Reorder[str] = Reorder(timeout=2.0)
    _order(reorder, [140, 142])  # 141 missing: 142 held
    reorder.offer("n", 2, 2, "new2", 0.0)  # DDATA 2 of the new session, ahead of its birth
    old, early = reorder.birth("n", 0, 0, 0.5)
    assert [(item, gap.missing if gap else None) for item, gap in old] == [
        ("m142", (141,))]  # gap in the old session: 2 of the new one is not its concern
    assert early == [(2, "new2", 2)]
    assert _order(reorder, [1]) == ["m1"]
    assert [i for i, _ in reorder.offer("n", 2, 2, "new2", 0.6).released] == ["new2"]


def test_the_compact_decoding_reads_what_the_full_one_reads() -> None:
    from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder, encode_payload
    decoder = SparkplugDecoder()
    payload = encode_payload([
        {"name": "bdSeq", "datatype": "Int64", "value": -3},
        {"name": "State", "alias": 1, "datatype": "String", "value": "RUNNING"},
        {"alias": 0, "datatype": "Double", "value": 71.5, "timestamp": 5},
        {"alias": 2, "datatype": "Float", "value": 12.1, "is_historical": True},
        {"alias": 3, "datatype": "Int8", "value": -7},
        {"alias": 4, "datatype": "UInt32", "value": 7},
        {"alias": 5, "datatype": "Boolean", "value": False},
        {"alias": 6, "datatype": "Int32", "value": None}], timestamp=9, seq=3)
    full, compact = decoder.decode(payload), decoder.decode_compact(payload)
    assert [(m["name"], m["alias"], m["timestamp"], m["is_historical"], m["value"])
            for m in full["metrics"]] == compact["metrics"]
    assert {k: v for k, v in full.items() if k != "metrics"} == {
        k: v for k, v in compact.items() if k not in ("metrics", "plain")}
    assert compact["plain"] is False  # names and a historical value
    plain = decoder.decode_compact(encode_payload([{"alias": 1, "datatype": "Double",
                                                    "value": 1.0}]))
    assert plain["plain"] is True
    bad = encode_payload([{"name": "QQ", "datatype": "Int32", "value": "x",
                           "field": "string_value"}]).replace(b"QQ", b"\xff\xfe")
    for decode in (decoder.decode, decoder.decode_compact):
        try:
            decode(bad)
        except Exception as exc:
            assert "not UTF-8" in str(exc) or "declared Int32" in str(exc)
        else:
            raise AssertionError("a name that is not UTF-8 must be refused")


def test_bookkeeping_metrics_by_alias_are_not_telemetry() -> None:
    from datetime import UTC, datetime

    from floorstream.adapters.mqtt.sparkplug import SparkplugSessions
    from floorstream.adapters.mqtt.sparkplug_b import SparkplugDecoder, encode_payload
    decoder, sessions = SparkplugDecoder(), SparkplugSessions("s", "telemetry", "feed", "warning")
    now = datetime.now(UTC)
    birth = decoder.decode_compact(encode_payload(
        [{"name": "bdSeq", "datatype": "Int64", "value": 1},
         {"name": "Node Control/Rebirth", "alias": 5, "datatype": "Boolean", "value": False},
         {"name": "Temperature", "alias": 6, "datatype": "Double", "value": 70.0}], seq=0))
    sessions.handle(["spBv1.0", "G", "NBIRTH", "n"], birth, now, {}, None)
    data = decoder.decode_compact(encode_payload(
        [{"alias": 5, "datatype": "Boolean", "value": True},
         {"alias": 6, "datatype": "Double", "value": 71.0}], seq=1))
    assert data["plain"] is True
    result = sessions.handle(["spBv1.0", "G", "NDATA", "n"], data, now, {}, None)
    assert [getattr(c, "data", None) for c in result.changes] == [{"Temperature": 71.0}]
