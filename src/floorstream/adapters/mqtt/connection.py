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

from floorstream.adapters.mqtt.config import MqttConfig

__all__ = ["Acker", "make_client", "start"]


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


def make_client(config: MqttConfig) -> mqtt.Client:
    """A configured, not yet connected client."""
    client_id = config.client_id or f"floorstream-{config.name}"
    if config.protocol == "5":
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
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
