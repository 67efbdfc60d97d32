"""The fast path's read linger (docs/performance.md, "Steady load"): a wake-up of paho's network
thread that found only a few packets waits ``read_linger`` for more before it returns to paho's
loop, so a paced stream costs a wake-up per few messages instead of one each; an ack to write
ends the wait early, and a wake-up that read nothing never waits.

Over a socket pair, as the fast path's own self-test: no broker needed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt import fastpath
from floorstream.adapters.mqtt.fastpath import BufferedSocket, FastPathMixin

pytestmark = pytest.mark.skipif(not fastpath.FAST_PATH_AVAILABLE,
                                reason=f"no fast path: {fastpath.FAST_PATH_PROBLEM}")

LONG = 20.0  # a linger no passing test waits out


def _publish(topic: bytes, payload: bytes, mid: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if mid:
        body += mid.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | (0x02 if mid else 0), len(body)]) + body


class Pair:
    """A fast-path client reading from one end of a socket pair (the broker's end is
    ``broker``), with paho's wake-up pair in place as ``loop_start`` makes it."""

    def __init__(self) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        client = FastPathMixin(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                               manual_ack=True)
        client.on_message = lambda _c, _u, message: self.received.append(message)
        ours, self.broker = socket.socketpair()
        ours.setblocking(False)
        client._sock = BufferedSocket(ours)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        client._sockpairR, client._sockpairW = wake_r, wake_w
        client.read_linger = LONG
        self.client = client
        self._sockets = (ours, wake_r, wake_w)

    def close(self) -> None:
        self.client._sock = None
        self.client._sockpairR = self.client._sockpairW = None
        for sock in (*self._sockets, self.broker):
            sock.close()


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.close()


def test_a_wake_up_with_few_packets_waits_for_more(pair: Pair) -> None:
    pair.broker.sendall(_publish(b"a", b"1"))
    later = threading.Timer(0.2, pair.broker.sendall, args=(_publish(b"b", b"2"),))
    later.start()
    pair.client.read_linger = 1.0
    started = time.monotonic()
    pair.client.loop_read()  # one wake-up: the first packet, the linger, the second
    later.join()
    assert [m.topic for m in pair.received] == ["a", "b"]
    assert time.monotonic() - started >= 0.9  # (then it read what came, and returned)


def test_an_ack_to_write_ends_the_linger(pair: Pair) -> None:
    pair.broker.sendall(_publish(b"a", b"1", mid=7))
    acked = threading.Timer(0.1, pair.client.queue_ack, args=(0, 7))
    acked.start()
    started = time.monotonic()
    pair.client.loop_read()
    acked.join()
    assert time.monotonic() - started < LONG / 2
    assert [m.mid for m in pair.received] == [7]
    pair.client.loop_write()  # paho's loop writes it next
    pair.broker.settimeout(5)
    assert pair.broker.recv(64) == b"\x40\x02\x00\x07"


def test_a_wake_up_that_read_nothing_does_not_wait(pair: Pair) -> None:
    started = time.monotonic()
    pair.client.loop_read()
    assert time.monotonic() - started < LONG / 2 and pair.received == []


def test_a_full_wake_up_does_not_wait(pair: Pair) -> None:
    pair.broker.sendall(b"".join(_publish(b"t", str(n).encode())
                                 for n in range(pair.client.linger_below)))
    started = time.monotonic()
    deadline = started + 5
    while len(pair.received) < pair.client.linger_below and time.monotonic() < deadline:
        pair.client.loop_read()
    assert len(pair.received) == pair.client.linger_below
    assert time.monotonic() - started < LONG / 2
