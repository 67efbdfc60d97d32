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
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from floorstream.adapters.mqtt.config import MqttConfig

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


class Client(mqtt.Client):
    """paho's client reading a batch of packets per wake-up from a buffered socket."""

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho 2.x's ``loop_read`` ignores ``max_packets`` and reads about one packet per
        call; this is the same loop with a useful bound (private helpers of paho 2.x)."""
        for _ in range(_PACKETS_PER_WAKEUP):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

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
    """

    __slots__ = ("_client", "_lock", "generation")

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client
        self.generation = 0
        self._lock = threading.Lock()

    def new_connection(self) -> None:
        with self._lock:
            self.generation += 1

    def callback(self, mid: int, qos: int) -> Callable[[], None]:
        generation = self.generation
        client = self._client

        def ack() -> None:
            if generation == self.generation:
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
