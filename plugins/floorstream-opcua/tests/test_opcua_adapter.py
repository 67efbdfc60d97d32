"""The ``opcua`` adapter against a real OPC UA server (asyncua's, in a process of its own):
the conformance kit, values as fields, browse paths, deadbands, refused items, alarms and
their resumption, encrypted sessions and the trust list."""

from __future__ import annotations

import datetime as dt
import queue
import time
from typing import Any, ClassVar

import pytest
from asyncua import ua
from floorstream_opcua import OpcuaAdapter
from floorstream_opcua.session import OpcuaSession
from opcua_support import COUNT, STATE, TEMP, Following, OpcuaServer, Plc, free_port
from pydantic import ValidationError

from floorstream.plugin import AdapterContext, Event
from floorstream.plugins import build_plugins
from floorstream.testing import AdapterConformance
from support import sentinel, wait_for

OPCUA_PORT = free_port()  # the module's server (conftest ``server``)


class TestOpcuaConformance(AdapterConformance):
    adapter = OpcuaAdapter
    config: ClassVar[dict[str, Any]] = {
        "name": "line1", "adapter": "opcua", "url": f"opc.tcp://127.0.0.1:{OPCUA_PORT}/floorstream/",
        "subject": "press-07", "publishing_interval": 0.05, "sampling_interval": 0.02,
        "items": [{"node": STATE, "field": "state"}, {"node": TEMP, "field": "temp"},
                  {"path": "Objects/2:Line1/2:Press07/2:Count", "field": "count"}]}
    min_changes = 3
    timeout = 15.0
    # OPC UA has no replay: a new subscription delivers every item's current value again,
    # at the same position (its source timestamp) and with the same content
    exact_resume = False

    @pytest.fixture(autouse=True)
    def _server(self, server: OpcuaServer) -> None:
        """The module's server, which the config above names."""


def _count_sentinel(plc: Plc, run: Following) -> None:
    """Write the next count behind the input under test and wait until it came through."""
    wait_for(lambda: run.values("count"), 20, "the first count")
    target = run.values("count")[-1] + 1
    sentinel(lambda: plc.write(COUNT, target), lambda: target in run.values("count"))


def test_values_become_fields_by_node_and_by_browse_path(server: OpcuaServer) -> None:
    plc = Plc(server.url)
    items = [{"node": STATE, "field": "state"},
             {"path": "Objects/2:Line1/2:Press07/2:SpindleTemp", "field": "spindle_temp"},
             {"node": COUNT, "field": "count"}]
    with Following({"url": server.url, "subject": "press-07", "items": items,
                    "attrs": {"line": "1"}}) as run:
        wait_for(lambda: run.values("state") and run.values("spindle_temp"), 20, "values")
        plc.write(STATE, "FAULT")
        run.wait_value("state", "FAULT")
        _count_sentinel(plc, run)
    fault = next(c for c in run.emitter.changes if c.data == {"state": "FAULT"})
    assert fault.subject == "press-07" and fault.source == "line1" and fault.kind == "telemetry"
    assert fault.attrs == {"line": "1"}
    assert fault.position.startswith("press-07@") and fault.occurred_at is not None
    # written one by one, each change carries one field (same-instant grouping: below)
    assert {tuple(c.data) for c in run.emitter.changes} == {("state",), ("spindle_temp",),
                                                           ("count",)}
    assert not run.emitter.problems and not run.emitter.quarantined


def test_values_of_one_machine_and_instant_are_one_change() -> None:
    """A publish response as the server sends it: the values a PLC stamped with one time
    become one change per machine; a field that comes twice for one instant (a queue that
    kept A→B) starts another; the same response again gives the same positions."""
    config = OpcuaAdapter.config_model.model_validate({
        "name": "line1", "adapter": "opcua", "url": "opc.tcp://unused:4840",
        "items": [{"node": STATE, "field": "state", "subject": "press-07"},
                  {"node": TEMP, "field": "temp", "subject": "press-07"},
                  {"node": COUNT, "field": "count", "subject": "press-08"}]})
    t1, t2 = (dt.datetime(2026, 12, 1, 8, 0, s, tzinfo=dt.UTC) for s in (1, 2))

    def value(v: Any, kind: ua.VariantType, when: dt.datetime) -> ua.DataValue:
        return ua.DataValue(ua.Variant(v, kind), SourceTimestamp=when, ServerTimestamp=when)

    change = ua.DataChangeNotification()
    change.MonitoredItems = [
        ua.MonitoredItemNotification(1, value("FAULT", ua.VariantType.String, t1)),
        ua.MonitoredItemNotification(2, value(91.5, ua.VariantType.Double, t1)),
        ua.MonitoredItemNotification(3, value(7, ua.VariantType.Int32, t1)),
        ua.MonitoredItemNotification(1, value("RUNNING", ua.VariantType.String, t1)),
        ua.MonitoredItemNotification(2, value(92.0, ua.VariantType.Double, t2))]

    def convert() -> list[Any]:
        session = OpcuaSession(config, AdapterContext(
            "line1", None, build_plugins(load_entry_points=False).decoders), queue.Queue())
        records: list[Any] = []
        session._data(change, records)
        return [payload for kind, payload in records if kind == "change"]

    first = convert()
    assert [(c.subject, c.data, c.occurred_at) for c in first] == [
        ("press-07", {"state": "FAULT", "temp": 91.5}, t1), ("press-08", {"count": 7}, t1),
        ("press-07", {"state": "RUNNING"}, t1), ("press-07", {"temp": 92.0}, t2)]
    assert len({c.position for c in first}) == 4
    assert [c.position for c in convert()] == [c.position for c in first]

    # a server that sends no timestamps: a value that recurs is not the earlier reading
    change.MonitoredItems = [ua.MonitoredItemNotification(1, ua.DataValue(
        ua.Variant("FAULT", ua.VariantType.String)))]
    (untimed,), (again,) = convert(), convert()
    assert untimed.occurred_at is None and untimed.position != again.position


def test_a_value_that_comes_back_within_one_instant_is_a_change_of_its_own() -> None:
    """A coarse PLC clock stamps FAULT → RUNNING → FAULT with one time, over two publish
    responses: three changes with three positions (the second FAULT is not the first one
    again, which its id would say and the store would drop), and the last response
    delivered again (a re-read after a reconnect) keeps its position."""
    config = OpcuaAdapter.config_model.model_validate({
        "name": "line1", "adapter": "opcua", "url": "opc.tcp://unused:4840",
        "items": [{"node": STATE, "field": "state", "subject": "press-07"}]})
    when = dt.datetime(2026, 12, 1, 8, 0, 1, tzinfo=dt.UTC)
    session = OpcuaSession(config, AdapterContext(
        "line1", None, build_plugins(load_entry_points=False).decoders), queue.Queue())

    def response(*states: str) -> list[Any]:
        change = ua.DataChangeNotification()
        change.MonitoredItems = [ua.MonitoredItemNotification(1, ua.DataValue(
            ua.Variant(state, ua.VariantType.String), SourceTimestamp=when,
            ServerTimestamp=when)) for state in states]
        records: list[Any] = []
        session._data(change, records)
        return [payload for kind, payload in records if kind == "change"]

    changes = response("FAULT", "RUNNING") + response("FAULT")
    assert [c.data["state"] for c in changes] == ["FAULT", "RUNNING", "FAULT"]
    assert len({c.position for c in changes}) == 3
    (again,) = response("FAULT")
    assert again.position == changes[-1].position


def test_absolute_and_percent_deadbands(server: OpcuaServer) -> None:
    plc = Plc(server.url)
    plc.write(TEMP, 100.0)
    for deadband, small, large in (({"absolute": 2.0}, 101.5, 104.0),
                                   ({"percent": 5}, 108.0, 115.0)):  # 5 % of 0–200 = 10
        items = [{"node": TEMP, "field": "temp", "deadband": deadband},
                 {"node": COUNT, "field": "count"}]
        with Following({"url": server.url, "subject": "press-07", "items": items}) as run:
            wait_for(lambda run=run: run.values("temp"), 20, "the first temperature")
            start = run.values("temp")[0]
            plc.write(TEMP, small)
            plc.write(TEMP, large)
            run.wait_value("temp", large)
            _count_sentinel(plc, run)
        assert run.values("temp") == [start, large], deadband  # the small move filtered
        assert not run.emitter.problems


def test_items_the_server_refuses_are_problems_and_the_rest_goes_on(
        server: OpcuaServer) -> None:
    items = [{"node": "ns=2;s=Press07.Nope", "field": "x"},
             {"path": "Objects/2:Line1/2:Press99/2:State", "field": "y"},
             {"node": STATE, "field": "state"}]
    with Following({"url": server.url, "subject": "press-07", "items": items}) as run:
        wait_for(lambda: len(run.emitter.problems) == 2 and run.values("state"), 20,
                 "two problems and the state")
    browse, monitor = sorted(message for _, message in run.emitter.problems)
    assert browse.startswith("browse path Objects/2:Line1/2:Press99/2:State not found")
    assert "BadNodeIdUnknown" in monitor and "Press07.Nope" in monitor
    # ``floorstream check`` names them before the daemon runs
    assert OpcuaAdapter.check(run.config) == [
        "items[0]: ns=2;s=Press07.Nope: BadNodeIdUnknown",
        "items[1]: browse path Objects/2:Line1/2:Press99/2:State not found (BadNoMatch)"]
    assert run.config.check_warnings() == []
    risky = run.config.model_copy(update={"password": "s3cret"})
    assert risky.check_warnings() == ["security.policy is None: the password travels in "
                                      "clear text"]


def test_unreadable_values_are_quarantined_and_bad_ones_are_not_readings(
        server: OpcuaServer) -> None:
    plc = Plc(server.url)
    plc.write(STATE, "RUNNING")
    items = [{"node": "ns=2;s=Press07.Recipe", "field": "recipe"},
             {"node": "ns=2;s=Press07.Mode", "field": "mode"},
             {"node": STATE, "field": "state"}, {"node": COUNT, "field": "count"}]
    with Following({"url": server.url, "subject": "press-07", "items": items}) as run:
        wait_for(lambda: run.emitter.quarantined and run.values("mode"), 20,
                 "the recipe quarantined and the mode")
        wait_for(lambda: run.values("state"), 20, "the state")
        plc.write_status(STATE, ua.StatusCodes.BadCommunicationError)  # the PLC lost its I/O
        _count_sentinel(plc, run)
        plc.write(STATE, "FAULT")  # and got it back
        run.wait_value("state", "FAULT")
    (recipe,) = run.emitter.quarantined
    assert "ns=2;s=Press07.Recipe" in recipe.error and "no plain value" in recipe.error
    assert b"recipe-7" in recipe.raw  # the DataValue as it came, binary encoded
    assert run.values("mode") == ["Automatic"]  # a LocalizedText is its text
    assert run.values("state") == ["RUNNING", "FAULT"]  # the bad value was not a reading


def _events(run: Following, type: str) -> list[Event]:
    return [e for e in run.emitter.events if e.type == type]


def test_alarms_raise_acknowledge_clear_and_survive_a_restart(server: OpcuaServer) -> None:
    plc = Plc(server.url)
    config = {"url": server.url, "alarms": {"acknowledgements": True}}
    with Following(config) as first:
        wait_for(lambda: first.context.health.is_connected, 20, "the subscription")
        plc.alarm(active=True, severity=900)
        (raised,) = wait_for(lambda: _events(first, "alarm.raised"), 20, "the alarm")
        plc.alarm(active=True, acked=True, severity=900)
        (acked,) = wait_for(lambda: _events(first, "alarm.acknowledged"), 20, "the ack")
    assert raised.subject == "press-07" and raised.severity.label == "critical"
    assert raised.thread == "ns=2;s=Press07.Overheat" and raised.relation == "new"
    assert raised.fields["message"] == "Spindle overheated"
    assert raised.fields["opc_severity"] == 900 and raised.fields["acked"] is False
    assert acked.relation == "update" and acked.refers_to == raised.id
    assert acked.thread == raised.thread

    # a restart while the alarm is still active: the refresh reports it, nothing is posted
    # again, and its clear refers to the post made before the restart
    with Following(config, checkpoint=first.emitter.last_checkpoint) as second:
        wait_for(lambda: second.context.health.is_connected, 20, "the subscription")
        plc.alarm(active=False, acked=True, severity=900)
        (cleared,) = wait_for(lambda: _events(second, "alarm.cleared"), 20, "the clear")
    assert second.emitter.events == [cleared]
    assert cleared.relation == "resolution" and cleared.refers_to == raised.id
    assert cleared.thread == raised.thread and "reason" not in cleared.fields

    # raised, then ended while floorstream was away: cleared at the end of the refresh
    with Following(config, checkpoint=second.emitter.last_checkpoint) as third:
        wait_for(lambda: third.context.health.is_connected, 20, "the subscription")
        plc.alarm(active=True, severity=300, message="Door open")
        (again,) = wait_for(lambda: _events(third, "alarm.raised"), 20, "the second alarm")
    assert again.severity.label == "notice" and again.id != raised.id
    plc.alarm(active=False, acked=True, severity=300, message="Door open")
    with Following(config, checkpoint=third.emitter.last_checkpoint) as fourth:
        (gone,) = wait_for(lambda: _events(fourth, "alarm.cleared"), 20, "the late clear")
    assert gone.refers_to == again.id and gone.fields["reason"]
    assert fourth.emitter.last_checkpoint == '{"alarms":{},"v":1}'

    # an alarm's SourceName mapped to the subject the items use
    mapped = {"url": server.url, "alarms": {"subjects": {"press-07": "Press 07 (line 1)"}}}
    with Following(mapped, checkpoint=fourth.emitter.last_checkpoint) as fifth:
        wait_for(lambda: fifth.context.health.is_connected, 20, "the subscription")
        plc.alarm(active=True, severity=600, message="Oil low")
        (oil,) = wait_for(lambda: _events(fifth, "alarm.raised"), 20, "the mapped alarm")
        plc.alarm(active=False, acked=True, severity=600, message="Oil low")
        wait_for(lambda: _events(fifth, "alarm.cleared"), 20, "its clear")
    assert oil.subject == "Press 07 (line 1)" and oil.severity.label == "warning"


def test_encrypted_sessions_with_user_and_trust_list(
        server: OpcuaServer, certificates: dict[str, Any]) -> None:
    server_cert, _ = certificates["server"]
    client_cert, client_key = certificates["client"]
    plc = Plc(server.url)

    def follow(security: dict[str, Any], password: str = "s3cret") -> Following:
        return Following({"url": server.url, "subject": "press-07", "security": security,
                          "username": "plant", "password": password,
                          "items": [{"node": STATE, "field": "state"}]})

    for policy, mode in (("Basic256Sha256", "SignAndEncrypt"),
                         ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
                         ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
                         ("Basic256Sha256", "Sign")):
        security = {"policy": policy, "mode": mode, "certificate": str(client_cert),
                    "private_key": str(client_key), "trust": [str(server_cert)]}
        with follow(security) as run:
            wait_for(lambda run=run: run.values("state"), 20, f"a value over {policy}")
            value = f"RUN-{policy}-{mode}"
            plc.write(STATE, value)
            run.wait_value("state", value)
        assert run.context.health.failures == 0
    # a server whose certificate is not in the trust list is not talked to
    with follow({**security, "trust": [str(certificates["stranger"][0])]}) as refused:
        health = refused.context.health
        wait_for(lambda: health.failures >= 2, 20, "two refused attempts")
    assert health.is_connected is False and not refused.emitter.changes
    assert "not in security.trust" in (health.last_error or "")
    # and a wrong password is a connection error people can read
    with follow(security, password="wrong") as denied:
        wait_for(lambda: denied.context.health.failures >= 1, 20, "a refused login")
    assert not denied.emitter.changes
    assert "BadUserAccessDenied" in (denied.context.health.last_error or "")


def test_an_unreachable_server_is_reported_and_the_source_still_stops_at_once() -> None:
    with Following({"url": f"opc.tcp://127.0.0.1:{free_port()}/", "subject": "press-07",
                    "items": [{"node": STATE, "field": "state"}]}) as run:
        health = run.context.health
        wait_for(lambda: health.failures >= 2, 20, "two failed attempts")
        started = time.monotonic()
        run.stop()
        assert time.monotonic() - started < 5
    assert health.is_connected is False and "ConnectionRefusedError" in (health.last_error or "")
    assert not run.emitter.emitted


def test_config_errors_are_found_at_start() -> None:
    base = {"name": "l", "adapter": "opcua", "url": "opc.tcp://plc:4840", "subject": "p"}
    validate = OpcuaAdapter.config_model.model_validate
    for bad, says in (
        ({"items": [{"node": "i=1", "path": "Objects/2:X", "field": "f"}]}, "node or path"),
        ({"items": [{"node": "i=1", "field": "f", "deadband": {"percent": 120}}]}, "100"),
        ({"items": [{"node": "i=1", "field": "f", "deadband": {}}]}, "absolute or percent"),
        ({"items": [{"node": "i=1", "field": "f"}], "security": {"policy": "Basic256Sha256",
                                                               "mode": "Sign"}}, "certificate"),
        ({"items": [{"node": "i=1", "field": "f"}], "security": {"policy": "Basic256Sha256"}},
         "together"),
        ({}, "items, alarms"),
        ({"items": [{"node": "i=1", "field": "f"}, {"node": "i=1", "field": "g"}]}, "twice"),
        ({"items": [{"node": "ns=x;q=1", "field": "f"}]}, "NodeId"),
    ):
        with pytest.raises(ValidationError, match=says):
            validate({**base, **bad})
