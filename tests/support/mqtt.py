"""Helpers for the MQTT tests: a publisher, a private broker, waiting for a subscription.

The private broker (:class:`PrivateBroker`) is a ``mosquitto`` process on a free port with its
own config and persistence directory, for tests that must kill or restart the broker or need
unbounded queues; the shared local Mosquitto is never restarted.

:class:`Subscriptions` tells when a daemon's mqtt source really is subscribed (its SUBACK came
back), so a test publishes only once the broker routes the topic to it: messages published
before that are not queued anywhere, and a fixed sleep is either too long or too short.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from floorstream.adapters.mqtt import connection

from .waiting import wait_for

__all__ = ["PrivateBroker", "Publisher", "Subscriptions", "free_port", "wait_for"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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

    def publish_paced(self, messages: Sequence[tuple[str, bytes]], rate: float) -> None:
        """Publish at ``rate`` messages a second (QoS 1), as a steady source would; return once
        the broker has every message."""
        start = time.monotonic()
        infos = []
        for n, (topic, payload) in enumerate(messages):
            infos.append(self.publish(topic, payload, qos=1))
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for info in infos:
            info.wait_for_publish(20)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Subscriptions:
    """The SUBACKs of the mqtt sources started while installed (see :meth:`install`).

    Each client the mqtt adapter makes gets an ``on_subscribe`` callback (the adapter sets
    none) that marks its source subscribed; a new client of the same source (a restart)
    starts unmarked again.
    """

    def __init__(self) -> None:
        self.events: dict[str, threading.Event] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Subscriptions:
        real = connection.make_client

        def make_client(config: Any) -> connection.Client:
            client = real(config)
            event = self.events[config.name] = threading.Event()
            client.on_subscribe = lambda *args: event.set()
            return client

        monkeypatch.setattr(connection, "make_client", make_client)
        return self

    def wait(self, source: str, timeout: float = 20.0) -> None:
        """Until the broker acknowledged the subscriptions of ``source``'s current client."""
        wait_for(lambda: source in self.events and self.events[source].is_set(), timeout,
                 f"the SUBACK of {source}")


class PrivateBroker:
    """A mosquitto of our own: start, SIGTERM (saves persistence), restart on the same port.

    Run as root, mosquitto drops to the ``mosquitto`` user, which can neither write its
    persistence file nor read certificates under pytest's private tmp directory: the config
    keeps it root then (``user root``).
    """

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
                 f"persistence_location {directory}/", "log_dest stderr", "log_type error",
                 "sys_interval 1"]  # $SYS counts every second: wait_subscriptions reads them
        if os.geteuid() == 0:
            lines.append("user root")
        if lossless:
            lines += ["max_queued_messages 0", "max_queued_bytes 0"]
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.persistence = persistence
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
        """SIGTERM: mosquitto writes its persistence file (sessions, queued messages)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def wait_subscriptions(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the broker holds ``count`` subscriptions of other clients: a QoS 1
        message published before a persistent session has SUBSCRIBEd is queued for nobody.

        The broker's own statistics say so (``$SYS/broker/subscriptions/count``, every
        second); the watching client stays subscribed, so every figure after the first counts
        it as one more, and a figure of ``count + 1`` proves ``count`` others either way."""
        seen: list[int] = []
        done = threading.Event()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            seen.append(int(msg.payload))
            if seen[-1] >= count + 1:
                done.set()

        watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
        watcher.on_message = on_message
        watcher.connect("127.0.0.1", self.port)
        watcher.subscribe("$SYS/broker/subscriptions/count")
        watcher.loop_start()
        try:
            if not done.wait(timeout):
                raise AssertionError(f"the broker did not reach {count} subscriptions "
                                     f"in {timeout:g}s (counts seen: {seen[-5:]})")
        finally:
            watcher.loop_stop()
            watcher.disconnect()

    @property
    def saved(self) -> bool:
        """Whether a persistence file was written (after a :meth:`stop`)."""
        return any(self.directory.glob("*.db"))


def subscribed_daemons(monkeypatch: pytest.MonkeyPatch,
                       source: str) -> Iterator[Callable[[str], Any]]:
    """A fixture's body: yields ``start(config_text)``, which starts an in-process daemon
    (builtin plugins only) and returns its runner once ``source`` is subscribed; every
    daemon started is closed afterwards. ``yield from subscribed_daemons(monkeypatch, "s")``."""
    from floorstream.plugins import build_plugins

    from .daemon import DaemonRunner

    subscriptions = Subscriptions().install(monkeypatch)
    started: list[DaemonRunner] = []

    def start(text: str) -> DaemonRunner:
        runner = DaemonRunner(text, plugins=build_plugins(load_entry_points=False)).start()
        started.append(runner)
        subscriptions.wait(source)
        return runner

    yield start
    for runner in started:
        runner.close()
