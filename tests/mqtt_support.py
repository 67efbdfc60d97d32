"""Helpers for the MQTT adapter tests: a publisher, a private broker, waiting for the store.

The private broker (:class:`PrivateBroker`) is a ``mosquitto`` process on a free port with its
own config and persistence directory, for tests that must kill or restart the broker or need
unbounded queues; the shared local Mosquitto is never restarted.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    assert value, f"condition not met within {timeout}s (last value {value!r})"
    return value


class Publisher:
    """A plain paho client that publishes and waits until the broker has every message."""

    def __init__(self, host: str, port: int, client_id: str | None = None,
                 setup: Callable[[mqtt.Client], object] | None = None) -> None:
        """``setup`` configures the client before it connects (TLS, credentials, a will)."""
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        if setup is not None:
            setup(self.client)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info

    def publish_all(self, messages: Iterable[tuple[str, bytes | str | dict[str, Any]]],
                    qos: int = 1) -> None:
        infos = [self.publish(topic, payload, qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PrivateBroker:
    """A mosquitto of our own: start, SIGTERM (saves persistence), restart on the same port."""

    def __init__(self, directory: Path, *, persistence: bool = True,
                 lossless: bool = True, anonymous: bool = True,
                 listener: Sequence[str] = ()) -> None:
        """``listener``: lines for the listener (TLS files, ``password_file``…);
        ``anonymous=False`` makes the broker refuse clients without credentials."""
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", *listener,
                 f"allow_anonymous {'true' if anonymous else 'false'}",
                 f"persistence {'true' if persistence else 'false'}",
                 f"persistence_location {directory}/", "log_dest stderr", "log_type error"]
        if lossless:
            lines += ["max_queued_messages 0", "max_queued_bytes 0"]
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    errors = self.process.stderr.read() if self.process.stderr else b""
                    raise RuntimeError(f"mosquitto exited: {errors.decode(errors='replace')}"
                                       ) from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
