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
from support import sentinel, wait_for
from support.mqtt import Publisher

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


def _publish(mqtt_broker: tuple[str, int], topic: str, tag: str, count: int = COUNT) -> None:
    publisher = Publisher(*mqtt_broker)
    try:
        publisher.publish_all([(topic, f"{tag}-{i}") for i in range(count)], qos=1)
    finally:
        publisher.close()


def _nothing_comes_again(mqtt_broker: tuple[str, int], client_id: str, topic: str) -> None:
    """Reconnect to the persistent session: an unacked message would be sent again at once,
    before a sentinel published after the reconnect; so once the sentinel is in, nothing
    else may be."""
    again = Subscriber(*mqtt_broker, client_id, topic)
    try:
        wait_for(lambda: again.pump(0.05) or again.subscribed.is_set(), what="the SUBACK")
        sentinel(lambda: _publish(mqtt_broker, topic, "sentinel", count=1),
                 lambda: again.pump(0.05) or b"sentinel-0" in [p for p, _ in again.received],
                 what="the sentinel")
        assert [p for p, _ in again.received if p != b"sentinel-0"] == []
    finally:
        again.close()


def test_burst_of_acks_is_one_write_and_nothing_comes_again(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    topic, client_id = f"{topic_prefix}/acks", f"fs-acks-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*mqtt_broker, client_id, topic)
    wait_for(lambda: sub.pump(0.05) or sub.subscribed.is_set(), what="the SUBACK")
    _publish(mqtt_broker, topic, "a")
    wait_for(lambda: sub.pump(0.05) or len(sub.received) >= COUNT, what="the messages")
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
    wait_for(lambda: sub.pump(0.02) or not sub.client._out_packet, what="the acks sent")
    sub.close()
    _nothing_comes_again(mqtt_broker, client_id, topic)  # the broker had every ack


def test_acks_from_before_a_reconnect_are_dropped_and_redelivered(
        mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    topic, client_id = f"{topic_prefix}/stale", f"fs-stale-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(*mqtt_broker, client_id, topic)
    wait_for(lambda: sub.pump(0.05) or sub.subscribed.is_set(), what="the SUBACK")
    _publish(mqtt_broker, topic, "b")
    wait_for(lambda: sub.pump(0.05) or len(sub.received) >= COUNT, what="the messages")
    acks = [sub.acker.callback(mid, 1) for _, mid in sub.received]
    sub.client.reconnect()  # a new connection: the old packet ids mean nothing on it
    first_half = acks[: COUNT // 2]
    for ack in first_half:
        ack()
    sub.received.clear()
    wait_for(lambda: sub.pump(0.05) or len(sub.received) >= COUNT, what="the redelivery")
    # nothing of the old connection was acked: the broker sends all of it again
    assert sorted(p for p, _ in sub.received) == sorted(f"b-{i}".encode() for i in range(COUNT))
    for _, mid in sub.received:
        sub.acker.callback(mid, 1)()
    wait_for(lambda: sub.pump(0.02) or not sub.client._out_packet, what="the acks sent")
    sub.close()
    _nothing_comes_again(mqtt_broker, client_id, topic)


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
        # a QoS 0 probe round trip: the network thread has finished its flush. (Both queues
        # also look empty while it holds the drained acks before queueing their packet; a
        # disconnect from this thread right then puts the DISCONNECT ahead of them and the
        # broker sends the messages again: a race in FastClient.flush_acks, reported.)
        probe = Publisher(*mqtt_broker)
        probe.publish_all([(topic, "probe")], qos=0)
        probe.close()
        wait_for(lambda: any(p == b"probe" for p, _ in sub.received), what="the probe")
    finally:
        sub.client.disconnect()
        sub.client.loop_stop()
    _nothing_comes_again(mqtt_broker, client_id, topic)
