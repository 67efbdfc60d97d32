"""``mqtt``: republish posts to a topic (andon boards, MES, other systems), QoS 1 by default.

The client connects on the first delivery, not at start, so a broker that is down delays only
this sink's deliveries. A publish counts as delivered once the broker acknowledged it (PUBACK
for QoS 1); until then the worker retries, and the payload carries the idempotency key so a
consumer can drop the copy a retry may produce.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any, ClassVar, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import Field, SecretStr

from floorstream.model import Post
from floorstream.plugin import DeliveryError, Duration, Outgoing, Sink, SinkConfig
from floorstream.sinks import payloads

__all__ = ["MqttSink", "MqttSinkConfig"]

_UNSAFE = re.compile(r"[+#/\x00]")


class MqttSinkConfig(SinkConfig):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="use ${ENV}")
    tls: bool = False
    ca_file: str | None = None
    topic: str = Field(default="floorstream/{team}/{severity}",
                       description="fields: team, severity, source, subject, type")
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    client_id: str | None = None
    timeout: Duration = Field(default=10.0, description="connect and publish acknowledgement")


class MqttSink(Sink[MqttSinkConfig]):
    name: ClassVar[str] = "mqtt"

    def __init__(self, config: MqttSinkConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self._client: Any = None
        self._connected = threading.Event()

    def topic(self, post: Post, outgoing: Outgoing) -> str:
        def safe(value: str) -> str:
            return _UNSAFE.sub("_", value) or "_"

        return self.cfg.topic.format(team=safe(outgoing.team), severity=post.severity.label,
                                     source=safe(post.source), subject=safe(post.subject),
                                     type=safe(post.type))

    def _connect(self) -> Any:
        if self._client is not None and self._connected.is_set():
            return self._client
        self.close()
        cfg = self.cfg
        client_id = cfg.client_id or f"floorstream-{cfg.name}-{uuid.uuid4().hex[:8]}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else None
            client.username_pw_set(cfg.username, password)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file)
        connected = self._connected
        connected.clear()

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                connected.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
            connected.clear()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        try:
            client.connect(cfg.host, cfg.port, keepalive=30)
        except OSError as exc:
            raise DeliveryError(f"MQTT connect to {cfg.host}:{cfg.port} failed: "
                                f"{type(exc).__name__}: {exc.strerror or exc}") from None
        client.loop_start()
        self._client = client
        if not connected.wait(cfg.timeout):
            self.close()
            raise DeliveryError(f"MQTT broker {cfg.host}:{cfg.port} did not accept the "
                                f"connection within {cfg.timeout:g} s")
        return client

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        client = self._connect()
        body = payloads.activity(post, outgoing)
        body["floorstream:idempotencyKey"] = outgoing.idempotency_key
        info = client.publish(self.topic(post, outgoing),
                              json.dumps(body, ensure_ascii=False).encode(),
                              qos=self.cfg.qos, retain=self.cfg.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.close()
            raise DeliveryError(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(self.cfg.timeout)
        except (RuntimeError, ValueError) as exc:
            self.close()
            raise DeliveryError(f"MQTT publish failed: {exc}") from None
        if not info.is_published():
            self.close()
            raise DeliveryError(f"MQTT broker did not acknowledge within {self.cfg.timeout:g} s")
        return None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
