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
- paho reconnects by itself in its network thread with ``reconnect_delay_set`` (exponential
  backoff between ``reconnect_min`` and ``reconnect_max``).
- The fast path (:mod:`.fastpath`, the only module that touches paho's internals): QoS 0/1
  PUBLISH packets parsed from a 64 KiB read buffer, up to 500 packets per wake-up, and the
  PUBACKs of a committed batch written in one go. ``Client(...)`` is a :class:`FastClient`
  when the installed paho passed the fast path's capability check and ``fast_path`` is not
  turned off (the source's ``fast_path: false``); otherwise it is stock paho (``on_message``
  and paho's own manual ``ack()``: correct, slower), and a paho that failed the check is
  logged once (``mqtt_fast_path_unavailable``). QoS 2 always keeps paho's own state machine
  (PUBREC/PUBREL/PUBCOMP).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from floorstream.adapters.mqtt import fastpath
from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.plugin.log import get_logger

__all__ = ["Acker", "Client", "FastClient", "make_client", "start", "uses_fast_path"]

log = get_logger("floorstream.adapter.mqtt")

_warned = False
_warned_lock = threading.Lock()


def uses_fast_path(requested: bool = True) -> bool:
    """Whether a client asked for with ``fast_path=requested`` gets the fast path; the first
    time the installed paho keeps a requested fast path off, says so in one warning line."""
    global _warned
    if not requested:
        return False
    if fastpath.FAST_PATH_AVAILABLE:
        return True
    with _warned_lock:
        if not _warned:
            _warned = True
            log.warning("mqtt_fast_path_unavailable",
                        reason=fastpath.FAST_PATH_PROBLEM or "capability check failed",
                        paho=fastpath.PAHO_VERSION, tested=fastpath.TESTED_PAHO,
                        fallback="stock paho: correct, slower")
    return False


class Client(mqtt.Client):
    """floorstream's paho client: :class:`FastClient` when the fast path is on (see the module
    docstring), else stock paho with no-op fast-path hooks.

    ``fast_path=False`` asks for stock paho; the default takes the fast path when the
    installed paho passed the capability check. Otherwise the arguments are paho's.
    """

    def __new__(cls, *args: Any, fast_path: bool = True, **kwargs: Any) -> Client:
        target = FastClient if cls is Client and uses_fast_path(fast_path) else cls
        return super().__new__(target)

    def __init__(self, *args: Any, fast_path: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def buffer_socket(self) -> None:
        """Called from on_connect: the fast path wraps the fresh socket; stock paho does not."""


class FastClient(fastpath.FastPathMixin, Client):
    """paho's client with the fast path (:class:`.fastpath.FastPathMixin`). Made by
    ``Client(...)`` when the fast path is on; built directly, it skips the check."""


class Acker:
    """Hands out ack callbacks that PUBACK a message on the connection it arrived on.

    A packet id is only meaningful within one network connection's session state. After a
    reconnect the broker resends what was not acked (same message, possibly the same id), and
    when the session was lost (broker restarted without persistence) it may reuse the id for a
    different message. So an ack created before a reconnect is dropped instead of sent: the
    message comes again and is deduplicated, which is safe; acking a stranger is not.

    With a :class:`FastClient`, a QoS 1 ack only records the packet id for the network thread
    to send with the others of its batch; QoS 2 (and stock paho) goes through paho's
    ``client.ack``.
    """

    __slots__ = ("_client", "_lock", "_queue", "generation")

    def __init__(self, client: mqtt.Client | None) -> None:
        self._client = client
        self._queue = client.queue_ack if isinstance(client, FastClient) else None
        self.generation = 0
        self._lock = threading.Lock()

    def new_connection(self) -> None:
        """Called from on_connect, on the network thread, before any message of the new
        connection: recorded acks of the old one are dropped at the next flush."""
        with self._lock:
            self.generation += 1
            if isinstance(self._client, FastClient):
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
    """A configured, not yet connected client (with the fast path when ``config.fast_path``
    and the installed paho allow it)."""
    client_id = config.client_id or f"floorstream-{config.name}"
    if config.protocol == "5":
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5, fast_path=config.fast_path)
    else:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=config.clean_start, protocol=mqtt.MQTTv311,
                        fast_path=config.fast_path)
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
