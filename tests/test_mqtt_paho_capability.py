"""The fast path's capability check (``adapters/mqtt/fastpath.py``) and the stock-paho fallback.

The installed paho must pass the check whenever it lies in the tested range (the pin in
pyproject.toml); a paho that lacks a private name, changed a slot, ignores the socket wrapper's
``pending()`` or lies outside the range must fail it with a reason, and then every client is
stock paho, announced in one warning line. ``make test-paho-floor`` runs this file (and the
parser tests) on the oldest paho of the range.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from structlog.testing import capture_logs

from floorstream.adapters.mqtt import connection, fastpath
from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.connection import Acker, Client, FastClient, make_client

ROOT = Path(__file__).resolve().parent.parent


def test_installed_paho_in_the_tested_range_passes_the_check() -> None:
    expected = os.environ.get("FLOORSTREAM_EXPECT_PAHO")  # set by the floor test's venv
    if expected is not None:
        assert expected == fastpath.PAHO_VERSION
    assert fastpath._check_version(fastpath.PAHO_VERSION) is None, (
        f"paho-mqtt {fastpath.PAHO_VERSION} is installed, outside the pin "
        f"{fastpath.TESTED_PAHO}")
    assert fastpath.FAST_PATH_PROBLEM is None
    assert fastpath.FAST_PATH_AVAILABLE
    assert fastpath.check() is None  # and again: the check leaves nothing behind


def test_pyproject_pins_paho_to_the_tested_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("paho-mqtt")]
    assert pins == [fastpath.TESTED_PAHO]
    assert fastpath.TESTED_PAHO == "paho-mqtt>=2.1,<2.3"


@pytest.mark.parametrize(("version", "ok"), [
    ("2.1.0", True), ("2.2.0", True), ("2.2.9", True), ("2.0.0", False), ("2.3.0", False),
    ("2.3.0rc1", False), ("3.0.0", False), ("1.6.1", False), ("unknown", False)])
def test_version_outside_the_tested_range_is_a_problem(version: str, ok: bool) -> None:
    problem = fastpath._check_version(version)
    assert (problem is None) == ok
    if not ok:
        assert problem == (f"paho-mqtt {version} is not in the tested range "
                           f"{fastpath.TESTED_PAHO}")


_MISSING = object()


class _Module:
    """``paho.mqtt.client`` with some names replaced (or, with ``_MISSING``, gone)."""

    def __init__(self, **replaced: Any) -> None:
        self.__dict__.update({name: getattr(mqtt, name) for name in fastpath._MODULE_NAMES})
        self.__dict__.update(replaced)
        for name, value in replaced.items():
            if value is _MISSING:
                del self.__dict__[name]


class _NoPacketRead(mqtt.Client):
    _packet_read = None


class _NoSockpair(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self._sockpairW

    def __del__(self) -> None:  # paho's closes the socket pair
        pass


class _NoKeepaliveStamp(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in fastpath._LAST_RECEIVED_NAMES:
            if hasattr(self, name):
                delattr(self, name)


class _OwnFlush(mqtt.Client):
    def flush_acks(self) -> None:
        pass


class _MoreSlots:
    __slots__ = (*fastpath._MESSAGE_SLOTS, "expiry")


@pytest.mark.parametrize(("module", "problem"), [
    (_Module(mqtt_ms_invalid=_MISSING), "paho.mqtt.client has no mqtt_ms_invalid"),
    (_Module(Client=_NoPacketRead), "paho's Client has no method _packet_read"),
    (_Module(Client=_NoSockpair), "paho's Client has no attribute _sockpairW"),
    (_Module(Client=_NoKeepaliveStamp),
     "paho's Client has none of _last_bytes_received, _last_msg_in"),
    (_Module(Client=_OwnFlush), "paho's Client has its own flush_acks, a name the fast path adds"),
    (_Module(MQTTMessage=_MoreSlots), "paho's MQTTMessage slots changed"),
], ids=["module-name", "method", "attribute", "keepalive-stamp", "name-clash", "message-slots"])
def test_a_missing_or_changed_private_name_is_a_problem(module: Any, problem: str) -> None:
    found = fastpath._check_names(module)
    assert found is not None and found.startswith(problem)


def test_a_loop_that_ignores_pending_bytes_fails_the_self_test(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stall the check exists for: bytes already read into the buffer would wait for the
    next packet on the network (or keepalive) if paho's loop did not ask ``pending()``."""
    assert fastpath._self_test(mqtt.MQTTv311) is None
    assert fastpath._self_test(mqtt.MQTTv5) is None
    monkeypatch.setattr(fastpath.BufferedSocket, "pending", lambda self: 0)
    problem = fastpath._self_test(mqtt.MQTTv311)
    assert problem is not None and "pending" in problem


def test_an_exception_inside_the_check_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(protocol: object) -> None:
        raise KeyError("to_process")
    monkeypatch.setattr(fastpath, "_self_test", broken)
    assert fastpath.check() == "the fast path's self-test failed: KeyError('to_process')"


# -- the fallback ----------------------------------------------------------------------------

@pytest.fixture
def check_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The capability check's result forced to a failure (and the one warning not yet given)."""
    monkeypatch.setattr(fastpath, "FAST_PATH_AVAILABLE", False)
    monkeypatch.setattr(fastpath, "FAST_PATH_PROBLEM", "paho's Client has no method _loop")
    monkeypatch.setattr(connection, "_warned", False)


def _config(**keys: Any) -> MqttConfig:
    return MqttConfig(name="plant", adapter="mqtt", topics=["plant/#"], **keys)


def test_client_is_the_fast_one_by_default() -> None:
    if not fastpath.FAST_PATH_AVAILABLE:
        pytest.skip(f"no fast path: {fastpath.FAST_PATH_PROBLEM}")
    with capture_logs() as logs:
        client = Client(CallbackAPIVersion.VERSION2)
        made = make_client(_config())
    assert type(client) is FastClient and type(made) is FastClient
    assert logs == []


def test_stock_client_overrides_nothing_of_paho() -> None:
    """Stock mode is paho's own reading, writing and acking: floorstream's ``Client`` adds a
    constructor switch and a no-op hook, nothing else."""
    own = {name for name, value in vars(Client).items() if callable(value)
           or isinstance(value, staticmethod | classmethod)}
    assert own == {"__new__", "__init__", "buffer_socket"}


def test_fast_path_false_gives_stock_paho_without_a_warning() -> None:
    assert _config().fast_path is True
    assert MqttConfig.model_fields["fast_path"].description
    with capture_logs() as logs:
        client = make_client(_config(fast_path=False))
        direct = Client(CallbackAPIVersion.VERSION2, fast_path=False)
    assert type(client) is Client and type(direct) is Client
    assert client._manual_ack  # paho's own manual acks
    assert logs == []


@pytest.mark.usefixtures("check_failed")
def test_failed_check_gives_stock_paho_and_one_warning_line() -> None:
    with capture_logs() as logs:
        clients = [make_client(_config()), make_client(_config(protocol="3.1.1")),
                   Client(CallbackAPIVersion.VERSION2)]
    assert [type(c) for c in clients] == [Client, Client, Client]
    assert logs == [{"event": "mqtt_fast_path_unavailable", "log_level": "warning",
                     "reason": "paho's Client has no method _loop",
                     "paho": fastpath.PAHO_VERSION, "tested": fastpath.TESTED_PAHO,
                     "fallback": "stock paho: correct, slower"}]


@pytest.mark.usefixtures("check_failed")
def test_stock_acks_go_through_paho_ack_on_their_own_connection_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(_config())
    acked: list[tuple[int, int]] = []
    monkeypatch.setattr(client, "ack", lambda mid, qos: acked.append((mid, qos)))
    acker = Acker(client)
    acker.new_connection()
    old = [acker.callback(7, 1), acker.callback(8, 2)]
    acker.new_connection()  # a reconnect: acks of the old connection are dropped
    for ack in old:
        ack()
    assert acked == []
    acker.callback(9, 1)()
    acker.callback(10, 2)()
    assert acked == [(9, 1), (10, 2)]
