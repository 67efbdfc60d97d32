"""QoS 1 acks written in one go by the network thread, on the real local Mosquitto.

What must hold: every recorded ack reaches the broker (a persistent session gets nothing again
after a reconnect), acks recorded before a reconnect are dropped (the broker redelivers those
messages instead of us acking a stranger), and a burst of acks leaves as one write.
"""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt.connection import Acker, Client
from mqtt_support import Publisher, wait_for

pytestmark = pytest.mark.mqtt

COUNT = 15  # below Mosquitto's default in-flight window (20) for 3.1.1 clients


class Subscriber:
    """A persistent-session subscriber with manual acks that keeps what it received."""

    def __init__(self, host: str, port: int, client_id: str, topic: str) -> None:
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False, protocol=mqtt.MQTTv311)
        self.client.manual_ack_set(True)
        self.acker = Acker(self.client)
        self.received: list[tuple[bytes, int]] = []
        self.subscribed = threading.Event()

        def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
            self.acker.new_connection()
            client.subscribe(topic, qos=1)

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            self.received.append((bytes(msg.payload), msg.mid))

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = on_message
        self.client.connect(host, port)

    def pump(self, seconds: float) -> None:
        """Run paho's loop in this thread (deterministic: no network thread racing us)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.client.loop(0.02)

    def close(self) -> None:
        self.client.disconnect()


def _publish(mqtt_broker: tuple[str, int], topic: str, tag: str) -> None:
    publisher = Publisher(*mqtt_broker)
    try:
        publisher.publish_all([(topic, f"{tag}-{i}") for i in range(COUNT)], qos=1)
    finally:
        publisher.close()


def test_burst_of_acks_is_one_write_and_nothing_comes_again(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    topic, client_id = f"{topic_prefix}/acks", f"fs-acks-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*mqtt_broker, client_id, topic)
    sub.pump(0.3)
    wait_for(sub.subscribed.is_set)
    _publish(mqtt_broker, topic, "a")
    deadline = time.monotonic() + 10
    while len(sub.received) < COUNT and time.monotonic() < deadline:
        sub.pump(0.05)
    assert sorted(p for p, _ in sub.received) == sorted(f"a-{i}".encode() for i in range(COUNT))
    for _, mid in sub.received:
        sub.acker.callback(mid, 1)()
    assert len(sub.client.pending_acks) == COUNT
    sub.client.flush_acks()
    assert not sub.client.pending_acks
    puback_packets = [p for p in sub.client._out_packet if p["command"] == mqtt.PUBACK]
    assert len(puback_packets) == 1  # one entry in paho's queue: one send()
    assert puback_packets[0]["packet"] == b"".join(
        bytes([0x40, 2]) + mid.to_bytes(2, "big") for _, mid in sub.received)
    sub.pump(0.3)
    sub.close()

    again = Subscriber(*mqtt_broker, client_id, topic)
    try:
        again.pump(1.0)
        assert again.received == []  # the broker had every ack
    finally:
        again.close()


def test_acks_from_before_a_reconnect_are_dropped_and_redelivered(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    topic, client_id = f"{topic_prefix}/stale", f"fs-stale-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*mqtt_broker, client_id, topic)
    sub.pump(0.3)
    wait_for(sub.subscribed.is_set)
    _publish(mqtt_broker, topic, "b")
    deadline = time.monotonic() + 10
    while len(sub.received) < COUNT and time.monotonic() < deadline:
        sub.pump(0.05)
    acks = [sub.acker.callback(mid, 1) for _, mid in sub.received]
    sub.client.reconnect()  # a new connection: the old packet ids mean nothing on it
    first_half = acks[: COUNT // 2]
    for ack in first_half:
        ack()
    sub.received.clear()
    sub.pump(1.0)
    # nothing of the old connection was acked: the broker sends all of it again
    assert sorted(p for p, _ in sub.received) == sorted(f"b-{i}".encode() for i in range(COUNT))
    for _, mid in sub.received:
        sub.acker.callback(mid, 1)()
    sub.pump(0.3)
    sub.close()
    again = Subscriber(*mqtt_broker, client_id, topic)
    try:
        again.pump(1.0)
        assert again.received == []
    finally:
        again.close()


def test_threaded_client_sends_acks_recorded_from_another_thread(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    """As in the daemon: paho's thread receives, the pipeline thread records the acks."""
    topic, client_id = f"{topic_prefix}/threaded", f"fs-thr-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*mqtt_broker, client_id, topic)
    sub.client.loop_start()
    try:
        wait_for(sub.subscribed.is_set)
        _publish(mqtt_broker, topic, "c")
        wait_for(lambda: len(sub.received) >= COUNT)
        worker = threading.Thread(
            target=lambda: [sub.acker.callback(mid, 1)() for _, mid in list(sub.received)])
        worker.start()
        worker.join()
        wait_for(lambda: not sub.client.pending_acks and not sub.client._out_packet)
    finally:
        sub.client.disconnect()
        sub.client.loop_stop()
    again = Subscriber(*mqtt_broker, client_id, topic)
    try:
        again.pump(1.0)
        assert again.received == []
    finally:
        again.close()
