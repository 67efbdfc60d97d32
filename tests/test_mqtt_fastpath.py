"""The buffered PUBLISH parser against paho's own decoder, and end to end on Mosquitto.

The parser must agree with paho on every packet it takes, and refuse (leave to paho) every
packet it cannot take whole: another type, QoS 2, incomplete, malformed. The reference is
paho's own reader (``fastpath.read_with_paho``: no paho internals imported here), so these
tests hold on every paho the fast path supports; ``make test-paho-floor`` runs them on the
oldest one.
"""

from __future__ import annotations

import struct
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from floorstream.adapters.mqtt import fastpath
from floorstream.adapters.mqtt.connection import Client, FastClient
from floorstream.adapters.mqtt.fastpath import message_fields, parse_publish, read_with_paho
from support import sentinel, wait_for

# the capability test (tests/test_mqtt_paho_capability.py) fails when a paho of the tested
# range lacks the fast path; on any other paho there is nothing here to test
pytestmark = pytest.mark.skipif(not fastpath.FAST_PATH_AVAILABLE,
                                reason=f"no fast path: {fastpath.FAST_PATH_PROBLEM}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, *, qos: int = 0, mid: int = 0,
                   retain: bool = False, dup: bool = False, v5: bool = False,
                   props: bytes | None = None) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += props if props is not None else b"\x00"
    body += payload
    header = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    return bytes([header]) + _varint(len(body)) + body


def _paho(packet: bytes, v5: bool) -> tuple[object, ...]:
    """What paho's own reader makes of the packet."""
    messages = read_with_paho(packet, mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    assert len(messages) == 1
    return message_fields(messages[0])


@settings(max_examples=300, deadline=None)
@given(topic=st.binary(min_size=1, max_size=300), payload=st.binary(max_size=20_000),
       qos=st.integers(0, 1), mid=st.integers(1, 65535), retain=st.booleans(),
       dup=st.booleans(), v5=st.booleans(), prefix=st.binary(max_size=5))
def test_agrees_with_paho(topic: bytes, payload: bytes, qos: int, mid: int, retain: bool,
                          dup: bool, v5: bool, prefix: bytes) -> None:
    packet = publish_packet(topic, payload, qos=qos, mid=mid, retain=retain, dup=dup, v5=v5)
    follower = publish_packet(b"next", b"x")
    data = prefix + packet + follower
    parsed = parse_publish(data, len(prefix), v5)
    assert parsed is not None
    end, message = parsed
    assert end == len(prefix) + len(packet)  # the next packet starts where this one ended
    assert message_fields(message) == _paho(packet, v5)
    assert message.mid == (mid if qos else 0)
    assert (message.properties is not None) == v5


def test_v5_properties_are_decoded_like_paho() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("line", "3")]
    packed = props.pack()
    packet = publish_packet(b"plant/a", b"{}", qos=1, mid=7, v5=True, props=packed)
    parsed = parse_publish(packet, 0, True)
    assert parsed is not None
    message = parsed[1]
    assert message.properties is not None
    assert message.properties.ContentType == "application/json"
    assert message.properties.UserProperty == [("line", "3")]
    assert message.payload == b"{}"


@pytest.mark.parametrize("packet", [
    publish_packet(b"t", b"p", qos=2, mid=1),        # QoS 2: paho's state machine
    bytes([0x40, 0x02, 0x00, 0x01]),                 # a PUBACK
    bytes([0xD0, 0x00]),                             # a PINGRESP
    publish_packet(b"", b"p"),                       # an empty topic is malformed in 3.1.1
    publish_packet(b"topic", b"payload")[:-1],       # incomplete: the rest is still unread
    publish_packet(b"topic", b"x" * 200)[:2],        # incomplete remaining length
    bytes([0x30, 0x05, 0x00, 0x09, 0x61, 0x62, 0x63]),  # topic longer than the packet
    bytes([0x32, 0x04, 0x00, 0x01, 0x61, 0x00]),     # QoS 1 without a whole packet id
    bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),     # a fifth remaining-length byte
], ids=["qos2", "puback", "pingresp", "empty-topic", "short", "short-length", "topic-overrun",
        "no-mid", "length-overflow"])
def test_leaves_to_paho_what_it_cannot_take_whole(packet: bytes) -> None:
    assert parse_publish(packet, 0, False) is None


def test_v5_without_property_length_is_left_to_paho() -> None:
    body = struct.pack("!H", 1) + b"t"  # no property length byte at all
    assert parse_publish(bytes([0x30, len(body)]) + body, 0, True) is None


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_burst_through_mosquitto_arrives_whole_and_in_order(
        mqtt_broker: tuple[str, int], topic_prefix: str, protocol: int) -> None:
    """Thousands of messages in few reads (most parsed from the buffer, the ones split across
    reads by paho), with a large payload in between: every one arrives once, in order."""
    topic = f"{topic_prefix}/burst"
    received: list[tuple[str, bytes, int]] = []
    subscribed = threading.Event()
    sub = Client(CallbackAPIVersion.VERSION2, client_id=f"fs-fp-{uuid.uuid4().hex[:8]}",
                 protocol=protocol)
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_message = lambda c, u, m: received.append((m.topic, bytes(m.payload), m.qos))

    def wrap(client: mqtt.Client, userdata: object, flags: object, reason: object,
             properties: object) -> None:
        assert isinstance(client, FastClient)
        client.buffer_socket()
        client.subscribe(topic, qos=1)
    sub.on_connect = wrap
    sub.connect(*mqtt_broker)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect(*mqtt_broker)
    pub.loop_start()
    try:
        wait_for(subscribed.is_set)
        expected = []
        infos = []
        for i in range(3000):
            payload = (b"L" * 100_000) if i == 1500 else f'{{"n":{i}}}'.encode()
            qos = i % 2
            infos.append(pub.publish(topic, payload, qos=qos))
            expected.append((topic, payload, qos))
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: len(received) >= len(expected), timeout=20)
        # a QoS 1 sentinel behind the burst: a message parsed twice would be in before it
        marker = (topic, b"sentinel", 1)
        sentinel(lambda: pub.publish(topic, marker[1], qos=1).wait_for_publish(10),
                 lambda: marker in received)
        assert received[-1] == marker
        del received[-1]
        # the broker may let QoS 0 overtake QoS 1 messages waiting for its in-flight window;
        # within each QoS the order is kept
        for qos in (0, 1):
            assert [r for r in received if r[2] == qos] == [e for e in expected if e[2] == qos]
        assert len(received) == len(expected)
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.disconnect()
        sub.loop_stop()


@pytest.mark.mqtt
def test_connects_by_name_and_address_without_the_idna_codec(
        mqtt_broker: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """An ASCII host goes to getaddrinfo as bytes (no encodings.idna import, ~0.3 MB RSS); a
    name the IDNA codec refuses still fails as it did, with the codec's error."""
    import socket

    hosts: list[object] = []
    real = socket.getaddrinfo

    def recorded(host: object, *args: object, **kwargs: object) -> object:
        hosts.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", recorded)
    port = mqtt_broker[1]
    for host in (mqtt_broker[0], "localhost"):
        client = Client(CallbackAPIVersion.VERSION2, client_id=f"fs-fp-{uuid.uuid4().hex[:8]}")
        assert isinstance(client, FastClient)
        try:
            assert client.connect(host, port) == mqtt.MQTT_ERR_SUCCESS
        finally:
            client.disconnect()
        assert hosts[-1] == host.encode("ascii")
    with pytest.raises(UnicodeError):
        Client(CallbackAPIVersion.VERSION2).connect("broker..example", port)
