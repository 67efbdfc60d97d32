"""The plugin conformance suite (``floorstream.testing.AdapterConformance``) on the ``mqtt``
adapter, against the local Mosquitto.

The source is a persistent session (a fixed client id, QoS 1, MQTT 5 and 3.1.1): the first
:meth:`prepare_source` creates the session by subscribing once with the adapter's client id,
then every fill publishes the same readings (same payloads, so the same positions: the payload's
``ts``) into it, and the adapter receives them when it connects. A run cut after half of them
leaves the rest unacked; the broker sends those again to the next run, which is how the mqtt
source resumes (its position lives in the broker session, not in the checkpoint). A message whose
ack had not reached the broker yet comes again too, identical: ``exact_resume = False``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from floorstream.adapters.mqtt.adapter import MqttAdapter
from floorstream.testing import AdapterConformance
from support import wait_for
from support.mqtt import Publisher

pytestmark = pytest.mark.mqtt

T0 = 1_764_057_600_000
READINGS = 8


def _session(host: str, port: int, client_id: str, protocol: str, *,
             subscribe: str | None = None) -> None:
    """Connect as ``client_id``: subscribe at QoS 1 into a persistent session, or (without
    ``subscribe``) end the session (clean start)."""
    v5 = protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                         **({} if v5 else {"clean_session": subscribe is None}))
    subscribed: list[bool] = []
    client.on_subscribe = lambda *args: subscribed.append(True)
    options: dict[str, Any] = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if subscribe is None else 600
        options = {"clean_start": subscribe is None, "properties": props}
    client.connect(host, port, **options)
    client.loop_start()
    try:
        wait_for(client.is_connected, what="the session's connection")
        if subscribe is not None:
            client.subscribe(subscribe, qos=1)
            wait_for(lambda: subscribed, what="the SUBACK")
    finally:
        client.disconnect()
        client.loop_stop()


class _MqttConformance(AdapterConformance):
    adapter = MqttAdapter
    config: dict[str, Any] = {}
    min_changes = READINGS
    exact_resume = False
    protocol = "5"
    broker: tuple[str, int] = ("127.0.0.1", 1883)
    session = False

    @pytest.fixture(autouse=True)
    def _source(self, mqtt_broker: tuple[str, int], topic_prefix: str) -> Iterator[None]:
        host, port = mqtt_broker
        cls = type(self)
        cls.broker, cls.session = mqtt_broker, False
        cls.config = {"name": "plant", "adapter": "mqtt", "url": f"mqtt://{host}:{port}",
                      "protocol": self.protocol, "qos": 1,
                      "client_id": f"fs-conf-{uuid.uuid4().hex[:10]}",
                      "topics": [f"{topic_prefix}/+/+/telemetry"], "position_field": "ts",
                      "time_field": "ts"}
        yield
        if cls.session:  # leave no session behind on the shared broker
            _session(host, port, cls.config["client_id"], self.protocol)

    def prepare_source(self) -> None:
        cls = type(self)
        host, port = self.broker
        if not cls.session:
            _session(host, port, self.config["client_id"], self.protocol,
                     subscribe=self.config["topics"][0])
            cls.session = True
        prefix = self.config["topics"][0].split("/+")[0]
        publisher = Publisher(host, port)
        try:
            publisher.publish_all([
                (f"{prefix}/press/m{n % 3}/telemetry",
                 json.dumps({"ts": T0 + n, "state": "RUNNING", "temp": 70.0 + n}))
                for n in range(READINGS)])
        finally:
            publisher.close()


class TestMqtt5Conformance(_MqttConformance):
    protocol = "5"


class TestMqtt311Conformance(_MqttConformance):
    protocol = "3.1.1"
