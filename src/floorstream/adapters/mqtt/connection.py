"""The paho-mqtt client as floorstream needs it: persistent session, manual acks, backoff.

Why each setting:

- A fixed client id and ``clean_start=False`` (MQTT 5, with a session expiry) or
  ``clean_session=False`` (3.1.1) make the broker keep the subscription and every unacked
  QoS ≥ 1 message while the daemon is down, and send them again when it comes back.
- ``manual_ack_set(True)``: paho must not PUBACK a message when it is handed to us, only when
  the pipeline committed what it produced (the ack callback, see :class:`Acker`).
- MQTT 5's Receive Maximum tells the broker how many unacked messages it may have in flight to
  us. Mosquitto's default for 3.1.1 clients is 20, which with acks only after a commit bounds
  throughput by commit latency; with MQTT 5 the client decides.
- paho reads one packet per ``select`` and each packet with three or four ``recv`` calls. Every
  one of those syscalls releases the GIL, and getting it back from the busy pipeline thread can
  take a whole switch interval, so at tens of thousands of messages a second the hand-offs, not
  the work, set the pace. :class:`BufferedSocket` reads 64 KiB at a time and :class:`Client`
  handles up to 500 packets per wake-up.
- paho reconnects by itself in its network thread with ``reconnect_delay_set`` (exponential
  backoff between ``reconnect_min`` and ``reconnect_max``).
- QoS 1 acks: paho's ``ack()`` queues one PUBACK per message and writes to a socketpair to wake
  its network thread, a syscall each plus one ``send`` per PUBACK, all on the pipeline thread
  that holds the GIL. :class:`Acker` only records the packet id; the network thread turns
  everything recorded since its last wake-up into one write of back-to-back PUBACKs (see
  :meth:`Client.flush_acks`), with at most one wake-up per committed batch. QoS 2 keeps paho's
  own state machine (PUBREC/PUBREL/PUBCOMP).
"""

from __future__ import annotations

import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.fastpath import parse_publish

__all__ = ["Acker", "BufferedSocket", "Client", "make_client", "start"]

_READ_SIZE = 65536
_PACKETS_PER_WAKEUP = 500


class BufferedSocket:
    """A socket whose ``recv`` serves small reads from one large read.

    ``pending()`` reports the buffered bytes, which paho's loop already honours for TLS
    sockets (it does not wait in ``select`` while bytes are pending). Everything else is passed
    through to the wrapped socket.
    """

    __slots__ = ("_data", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        data, pos = self._data, self._pos
        if pos >= len(data):
            data = self._sock.recv(max(size, _READ_SIZE))  # BlockingIOError: nothing to read
            if not data:
                return b""
            self._data, pos = data, 0
        end = pos + size
        self._pos = end
        if pos == 0 and end >= len(data):
            return data
        return data[pos:end]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._data) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_PUBACK = struct.Struct("!BBH")


class Client(mqtt.Client):
    """paho's client reading a batch of packets per wake-up from a buffered socket, and
    writing the PUBACKs of committed QoS 1 messages in one go (see :class:`Acker`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (connection generation, packet id) of committed QoS 1 messages not yet PUBACKed
        self.pending_acks: deque[tuple[int, int]] = deque()
        self.ack_generation = 0
        self._ack_wake = False  # a wake-up byte is on its way to the network thread

    def queue_ack(self, generation: int, mid: int) -> None:
        """Record a PUBACK to send (any thread); wakes the network thread once per burst."""
        self.pending_acks.append((generation, mid))
        if not self._ack_wake:
            self._ack_wake = True
            wake = self._sockpairW
            if wake is not None:
                with suppress(BlockingIOError):  # full of wake-ups already
                    wake.send(b"0")

    def flush_acks(self) -> None:
        """Turn the recorded acks into one packet of back-to-back PUBACKs (network thread).

        Acks of an earlier connection are dropped: their packet ids mean nothing on this one,
        and the broker redelivers those messages anyway (see :class:`Acker`).
        """
        self._ack_wake = False  # before draining: an ack recorded after this wakes us again
        pending = self.pending_acks
        if not pending:
            return
        generation = self.ack_generation
        pack = _PUBACK.pack
        parts = []
        pop = pending.popleft
        while pending:
            gen, mid = pop()
            if gen == generation:
                parts.append(pack(PUBACK, 2, mid))
        if parts:
            # one MQTT packet each on the wire; one entry in paho's queue, so one send()
            packet = b"".join(parts)
            self._out_packet.append({"command": PUBACK, "mid": 0, "qos": 1, "pos": 0,
                                     "to_process": len(packet), "packet": packet,
                                     "info": None})

    def want_write(self) -> bool:
        return bool(self._out_packet) or bool(self.pending_acks)

    def loop_write(self) -> MQTTErrorCode:
        self.flush_acks()
        return super().loop_write()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho 2.x's ``loop_read`` ignores ``max_packets`` and reads about one packet per
        call; this is the same loop with a useful bound (private helpers of paho 2.x), and
        QoS 0/1 PUBLISH packets already in the buffer go through :mod:`.fastpath`."""
        budget = _PACKETS_PER_WAKEUP  # then back to paho's loop: acks, keepalive
        while budget > 0:
            sock = self._sock
            if sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if (type(sock) is BufferedSocket and sock._pos < len(sock._data)
                    and not self._in_packet["command"]):
                budget -= self._read_buffered(sock, budget)
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                if budget <= 0:
                    break
            rc = self._packet_read()
            budget -= 1
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _read_buffered(self, sock: BufferedSocket, limit: int) -> int:
        """Hand up to ``limit`` complete QoS 0/1 PUBLISH packets in the buffer to on_message;
        stop at the first packet paho must read itself (between packets: paho finds the
        buffer where it left off). Returns how many were handled. Debug logging through paho
        (``enable_logger``/``on_log``) keeps paho's path."""
        if self._logger is not None or self.on_log is not None:
            return 0
        v5 = self._protocol == mqtt.MQTTv5
        handle = self._handle_on_message
        auto_ack = not self._manual_ack
        data = sock._data
        handled = 0
        while handled < limit and sock._data is data and sock._pos < len(data):
            parsed = parse_publish(data, sock._pos, v5)
            if parsed is None:
                break
            sock._pos, message = parsed  # consumed before the callback: never handled twice
            handled += 1
            handle(message)
            if auto_ack and message.qos == 1:
                self._send_puback(message.mid)
        if handled:
            with self._msgtime_mutex:
                self._last_bytes_received = time.monotonic()
        return handled

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        """paho's, minus the walk of the topic trie of ``message_callback_add`` filters when
        there are none (a fifth of paho's time per message)."""
        if self._on_message_filtered._root._children:
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def buffer_socket(self) -> None:
        """Wrap the fresh connection's socket; called from on_connect (nothing buffered yet)."""
        sock = self._sock
        if sock is not None and not isinstance(sock, BufferedSocket):
            self._sock = BufferedSocket(sock)


class Acker:
    """Hands out ack callbacks that PUBACK a message on the connection it arrived on.

    A packet id is only meaningful within one network connection's session state. After a
    reconnect the broker resends what was not acked (same message, possibly the same id), and
    when the session was lost (broker restarted without persistence) it may reuse the id for a
    different message. So an ack created before a reconnect is dropped instead of sent: the
    message comes again and is deduplicated, which is safe; acking a stranger is not.

    With a :class:`Client`, a QoS 1 ack only records the packet id for the network thread to
    send with the others of its batch; QoS 2 (and any other paho client) goes through
    ``client.ack``.
    """

    __slots__ = ("_client", "_lock", "_queue", "generation")

    def __init__(self, client: mqtt.Client | None) -> None:
        self._client = client
        self._queue = client.queue_ack if isinstance(client, Client) else None
        self.generation = 0
        self._lock = threading.Lock()

    def new_connection(self) -> None:
        """Called from on_connect, on the network thread, before any message of the new
        connection: recorded acks of the old one are dropped at the next flush."""
        with self._lock:
            self.generation += 1
            if isinstance(self._client, Client):
                self._client.ack_generation = self.generation

    def callback(self, mid: int, qos: int) -> Callable[[], None]:
        generation = self.generation
        queue = self._queue
        if queue is not None and qos == 1:
            def queued_ack() -> None:
                queue(generation, mid)
            return queued_ack
        client = self._client

        def ack() -> None:
            if generation == self.generation and client is not None:
                client.ack(mid, qos)
        return ack


def make_client(config: MqttConfig) -> Client:
    """A configured, not yet connected client."""
    client_id = config.client_id or f"floorstream-{config.name}"
    if config.protocol == "5":
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
    else:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=config.clean_start, protocol=mqtt.MQTTv311)
    client.manual_ack_set(True)
    client.max_inflight_messages_set(config.receive_maximum)
    client.max_queued_messages_set(0)
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    if config.use_tls:
        tls = config.tls
        client.tls_set(
            ca_certs=tls.ca_file if tls else None,
            certfile=tls.cert_file if tls else None,
            keyfile=tls.key_file if tls else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        if tls is not None and tls.insecure:
            client.tls_insecure_set(True)
    client.reconnect_delay_set(min_delay=max(1, round(config.reconnect_min)),
                               max_delay=max(1, round(config.reconnect_max)))
    return client


def connect_properties(config: MqttConfig) -> Properties | None:
    if config.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0 if config.clean_start else int(config.session_expiry)
    props.ReceiveMaximum = config.receive_maximum
    return props


def start(client: mqtt.Client, config: MqttConfig) -> None:
    """Connect in the background: paho's thread retries the first connection too, so a broker
    that is down at start delays the source instead of failing it."""
    kwargs: dict[str, Any] = {"keepalive": config.keepalive}
    if config.protocol == "5":
        kwargs["clean_start"] = config.clean_start
        kwargs["properties"] = connect_properties(config)
    client.connect_async(config.host, config.port, **kwargs)
    client.loop_start()
