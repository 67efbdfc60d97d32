"""The mqtt source's connection features end to end, each on a private Mosquitto of its own:
TLS with a client certificate (and a wrong CA failing loudly without a crash loop), credentials
from ``${ENV}`` that never reach the logs, MQTT 5 shared subscriptions splitting the load
between two daemons, last-will offline/online posts, and silence detection through MQTT."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
import structlog

from floorstream.adapters.mqtt.adapter import MqttAdapter
from floorstream.config import Config, parse_config
from floorstream.logs import configure_logging
from floorstream.model import Post
from floorstream.plugins import build_plugins
from support import DaemonRunner, sentinel, wait_for
from support.mqtt import PrivateBroker, Publisher, Subscriptions

pytestmark = pytest.mark.mqtt

T = TypeVar("T")
T0 = 1_764_057_600_000
SENTINEL = "sentinel-"  # subjects of the marker readings published behind the input


# -- helpers ----------------------------------------------------------------------------------

def _config(store: str, port: int, prefix: str, source: str = "", *, scheme: str = "mqtt",
            settings: str = "", name: str = "plant") -> Config:
    return _parse(f"""
store: {store}
flood: null
pipeline: {{batch_wait_ms: 1{settings}}}
sources:
  - name: {name}
    adapter: mqtt
    url: {scheme}://127.0.0.1:{port}
    client_id: fs-{name}-{prefix.replace('/', '-')}
    reconnect_min: 1
    reconnect_max: 2
    topics: ["{prefix}/+/+/telemetry"]
    position_field: ts
    time_field: ts
{source}
""")


def _parse(text: str, environ: dict[str, str] | None = None) -> Config:
    return parse_config(text, build_plugins(load_entry_points=False), environ=environ)


def _hot(machine: str, ts: int, temp: float = 95.0) -> bytes:
    return json.dumps({"machine": machine, "ts": ts, "state": "RUNNING",
                       "temp": temp}).encode()


THRESHOLD = "    detect:\n      - threshold: {field: temp, above: 85, clear_below: 80}\n"


def _posts(daemon: DaemonRunner, type_: str | None = None) -> list[Post]:
    """The daemon's posts (of ``type_``), oldest first, sentinels left out."""
    return [p for p in daemon.posts("general") if (type_ is None or p.type == type_)
            and not p.subject.startswith(SENTINEL)]


def _sentinels(daemon: DaemonRunner) -> list[str]:
    return [p.subject for p in daemon.posts("general") if p.subject.startswith(SENTINEL)]


_numbers = itertools.count()


def _sentinel_reading(publisher: Publisher, prefix: str, daemon: DaemonRunner) -> str:
    """Publish a hot reading of a new sentinel machine behind the input and wait for its post
    (the source needs the threshold detector): what was published before has been handled.
    Returns the sentinel machine's name."""
    machine = f"{SENTINEL}{next(_numbers)}"
    sentinel(lambda: publisher.publish_all([(f"{prefix}/press/{machine}/telemetry",
                                             _hot(machine, T0))]),
             lambda: machine in _sentinels(daemon), what=f"the post of {machine}")
    return machine


class Daemons(list[DaemonRunner]):
    """The daemons a test started (closed at its end), and their subscriptions' SUBACKs."""

    def __init__(self, subscriptions: Subscriptions) -> None:
        super().__init__()
        self.subscriptions = subscriptions


@pytest.fixture
def daemons(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemons]:
    started = Daemons(Subscriptions().install(monkeypatch))
    yield started
    for daemon in started:
        daemon.close()


def _start(config: Config, started: Daemons, *, subscribed: bool = True) -> DaemonRunner:
    """A daemon on ``config``; with ``subscribed``, returned once the broker acknowledged its
    subscriptions (a message published earlier would reach no one)."""
    daemon = DaemonRunner(config, plugins=build_plugins(load_entry_points=False)).start()
    started.append(daemon)
    if subscribed:
        started.subscriptions.wait(config.sources[0].name)
    return daemon


def _adapter(daemon: DaemonRunner, name: str) -> MqttAdapter:
    adapter = daemon.adapter(name)
    assert isinstance(adapter, MqttAdapter)
    return adapter


def _at_least(count: int, probe: Callable[[], list[T]], timeout: float = 15.0) -> list[T]:
    """Wait until ``probe`` returns ``count`` items or more; return them."""
    return wait_for(lambda: (found if len(found := probe()) >= count else []), timeout)


def _shutdown(daemons: Daemons, broker: PrivateBroker) -> None:
    """Daemons first: a broker going away under them would only add noise to the logs."""
    while daemons:
        daemons.pop().close()
    broker.stop()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Everything floorstream logs during the test, as JSON lines."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}")
    return key, cert


def _signed(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path,
                                                                                        Path]:
    key, csr, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                      directory / f"{name}.crt")
    ext = directory / f"{name}.ext"
    ext.write_text(extensions + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext)
    return key, cert


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a broker certificate for 127.0.0.1/localhost, a client certificate, and a second
    CA that signed neither."""
    directory = tmp_path / "pki"
    directory.mkdir()
    ca = _ca(directory, "plant-ca")
    server = _signed(directory, "broker", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                               "extendedKeyUsage=serverAuth")
    client = _signed(directory, "floorstream", ca, "extendedKeyUsage=clientAuth")
    other = _ca(directory, "other-ca")
    return {"ca": ca[1], "server_key": server[0], "server_cert": server[1],
            "client_key": client[0], "client_cert": client[1], "other_ca": other[1]}


# -- TLS --------------------------------------------------------------------------------------

def test_tls_with_client_certificate_and_a_wrong_ca_fails_loudly_without_crash_loop(
        tmp_path: Path, pki: dict[str, Path], topic_prefix: str, daemons: Daemons,
        log_stream: io.StringIO) -> None:
    broker = PrivateBroker(tmp_path / "broker", persistence=False, listener=[
        f"cafile {pki['ca']}", f"certfile {pki['server_cert']}",
        f"keyfile {pki['server_key']}", "require_certificate true"])
    broker.start()
    try:
        tls = (f"    tls: {{ca_file: {pki['ca']}, cert_file: {pki['client_cert']}, "
               f"key_file: {pki['client_key']}}}\n")
        store = f"sqlite:///{tmp_path}/fs.db"
        daemon = _start(_config(store, broker.port, topic_prefix, tls + THRESHOLD,
                                scheme="mqtts"), daemons)

        def client_tls(client: mqtt.Client) -> None:
            client.tls_set(ca_certs=str(pki["ca"]), certfile=str(pki["client_cert"]),
                           keyfile=str(pki["client_key"]))

        publisher = Publisher("127.0.0.1", broker.port, setup=client_tls)
        publisher.publish_all([(f"{topic_prefix}/press/m{m}/telemetry", _hot(f"m{m}", T0 + m))
                               for m in range(5)])
        publisher.close()
        posts = _at_least(5, lambda: _posts(daemon))
        assert sorted(p.subject for p in posts) == [f"m{m}" for m in range(5)]
        assert {p.type for p in posts} == {"metric.limit_exceeded"}

        # the same daemon config with a CA that did not sign the broker: a clear error, the
        # source keeps retrying with backoff inside its thread, the daemon stays healthy
        wrong = (f"    tls: {{ca_file: {pki['other_ca']}, cert_file: {pki['client_cert']}, "
                 f"key_file: {pki['client_key']}}}\n")
        bad = _start(_config(f"sqlite:///{tmp_path}/bad.db", broker.port, topic_prefix,
                             wrong + THRESHOLD, scheme="mqtts", name="wrongca"), daemons,
                     subscribed=False)
        adapter = _adapter(bad, "wrongca")
        failures = wait_for(lambda: [json.loads(line) for line in
                                     log_stream.getvalue().splitlines()
                                     if '"mqtt_connect_failed"' in line])
        assert failures[0]["source"] == "wrongca"
        assert "CERTIFICATE_VERIFY_FAILED" in failures[0]["error"]
        assert failures[0]["broker"] == f"127.0.0.1:{broker.port}"

        def attempts() -> list[float]:
            return [datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
                    for line in log_stream.getvalue().splitlines()
                    if '"mqtt_connect_failed"' in line]

        retried = _at_least(2, attempts, timeout=8)
        gaps = [b - a for a, b in pairwise(retried)]
        assert min(gaps) >= 0.9, f"retries must back off, not spin: {gaps}"
        assert not adapter.connected.is_set()
        assert bad.daemon is not None
        status = bad.daemon.status["wrongca"]
        assert (status.state, status.restarts, status.last_error) == ("running", 0, None)
        assert bad.daemon.health()["status"] == "ok"
        assert '"adapter_failed"' not in log_stream.getvalue()
    finally:
        _shutdown(daemons, broker)


# -- credentials from ${ENV} ------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_password_from_env_connects_and_never_reaches_the_logs(
        tmp_path: Path, topic_prefix: str, daemons: Daemons, log_stream: io.StringIO,
        protocol: str) -> None:
    password = "Wk9-pl4nt-s3cret"
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "floorstream", password],
                   check=True, capture_output=True)
    passwords.chmod(0o600)
    broker = PrivateBroker(tmp_path / "broker", persistence=False, anonymous=False,
                           listener=[f"password_file {passwords}"])
    broker.start()
    try:
        store = f"sqlite:///{tmp_path}/fs.db"
        text = f"""
store: {store}
flood: null
logging: {{level: debug}}
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://127.0.0.1:{broker.port}
    protocol: "{protocol}"
    username: floorstream
    password: ${{MQTT_PASSWORD}}
    topics: ["{topic_prefix}/+/+/telemetry"]
    position_field: ts
{THRESHOLD}"""
        config = _parse(text, environ={"MQTT_PASSWORD": password})
        assert config.secrets == frozenset({password})
        source = config.sources[0]
        assert source.password == password  # type: ignore[attr-defined]
        configure_logging("debug", "json", config.secrets, stream=log_stream)
        daemon = _start(config, daemons)

        def credentials(client: mqtt.Client) -> None:
            client.username_pw_set("floorstream", password)

        publisher = Publisher("127.0.0.1", broker.port, setup=credentials)
        publisher.publish_all([(f"{topic_prefix}/oven/oven-{n}/telemetry",
                                _hot(f"oven-{n}", T0 + n)) for n in range(3)])
        publisher.close()
        wait_for(lambda: len(_posts(daemon)) >= 3)
        assert sorted(p.subject for p in _posts(daemon)) == ["oven-0", "oven-1", "oven-2"]
        # anything that does log the value (a URL with credentials, say) is redacted
        structlog.get_logger().warning("probe", url=f"mqtt://floorstream:{password}@broker")
        logs = log_stream.getvalue()
        assert '"mqtt_connected"' in logs and "mqtt://floorstream:***@broker" in logs
        assert password not in logs
        # without the password the broker refuses us, and says so in the log
        anonymous = _parse(text.replace("password: ${MQTT_PASSWORD}", "password: wrong-one")
                           .replace("name: plant", "name: intruder")
                           .replace(f"sqlite:///{tmp_path}/fs.db",
                                    f"sqlite:///{tmp_path}/intruder.db"))
        _start(anonymous, daemons, subscribed=False)
        refused = wait_for(lambda: [json.loads(line) for line in
                                    log_stream.getvalue().splitlines()
                                    if '"mqtt_connect_refused"' in line])
        assert refused[0]["source"] == "intruder" and "authori" in refused[0]["reason"].lower()
        assert password not in log_stream.getvalue()
    finally:
        _shutdown(daemons, broker)


# -- MQTT 5 shared subscriptions --------------------------------------------------------------

def test_shared_subscription_splits_messages_between_two_daemons(
        tmp_path: Path, topic_prefix: str, daemons: Daemons) -> None:
    broker = PrivateBroker(tmp_path / "broker", persistence=False)
    broker.start()
    try:
        shared = '    protocol: "5"\n    shared_group: presses\n' + THRESHOLD
        first = _start(_config(f"sqlite:///{tmp_path}/a.db", broker.port, topic_prefix,
                               shared, name="node-a"), daemons)
        second = _start(_config(f"sqlite:///{tmp_path}/b.db", broker.port, topic_prefix,
                                shared, name="node-b"), daemons)
        count = 120  # one hot reading per machine: one post per message handled
        publisher = Publisher("127.0.0.1", broker.port)
        publisher.publish_all([(f"{topic_prefix}/press/m{m:03d}/telemetry",
                                _hot(f"m{m:03d}", T0 + m)) for m in range(count)])
        wait_for(lambda: len(_posts(first)) + len(_posts(second)) >= count)
        # sentinel readings behind the input, shared round-robin: once each daemon posted
        # one, each has handled what the broker gave it before, a message twice included
        markers = [f"{SENTINEL}{n}" for n in range(6)]
        sentinel(lambda: publisher.publish_all([(f"{topic_prefix}/press/{m}/telemetry",
                                                 _hot(m, T0)) for m in markers]),
                 lambda: len(_sentinels(first) + _sentinels(second)) == len(markers))
        publisher.close()
        assert _sentinels(first) and _sentinels(second), "the sentinels were not shared"
        a = {p.subject for p in _posts(first)}
        b = {p.subject for p in _posts(second)}
        assert len(_posts(first)) + len(_posts(second)) == count
        assert not a & b, "a message went to both daemons"
        assert a | b == {f"m{m:03d}" for m in range(count)}
        assert a and b, f"one daemon got everything ({len(a)} / {len(b)})"
    finally:
        _shutdown(daemons, broker)


# -- last will --------------------------------------------------------------------------------

_MACHINE = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, topic = int(sys.argv[1]), sys.argv[2]
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="press-07")
client.will_set(topic, "offline", qos=1, retain=True)
client.connect("127.0.0.1", port, keepalive=60)
client.loop_start()
client.publish(topic, "online", qos=1, retain=True).wait_for_publish(5)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_posts_offline_once_and_online_threaded_to_it(
        tmp_path: Path, topic_prefix: str, daemons: Daemons) -> None:
    broker = PrivateBroker(tmp_path / "broker", persistence=False)
    broker.start()
    try:
        status = f"{topic_prefix}/line1/press-07/status"
        will = f'    last_will: {{topic: "{topic_prefix}/+/+/status"}}\n' + THRESHOLD
        config = _config(f"sqlite:///{tmp_path}/fs.db", broker.port, topic_prefix, will)
        daemon = _start(config, daemons)
        markers = Publisher("127.0.0.1", broker.port)
        machine = subprocess.Popen([sys.executable, "-c", _MACHINE, str(broker.port), status],
                                   stdout=subprocess.PIPE, env=os.environ.copy())
        try:
            assert machine.stdout is not None
            assert machine.stdout.readline().strip() == b"ready"  # its "online" is queued
            _sentinel_reading(markers, topic_prefix, daemon)
            assert _posts(daemon) == []  # "online" of a machine never offline: nothing
            machine.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
            machine.wait(5)
        finally:
            if machine.poll() is None:
                machine.kill()
                machine.wait(5)
        offline = wait_for(lambda: _posts(daemon, "machine.offline"))
        assert len(offline) == 1 and offline[0].subject == "press-07"
        assert offline[0].severity.name.lower() == "warning"
        _sentinel_reading(markers, topic_prefix, daemon)
        assert len(_posts(daemon)) == 1
        # a restarted daemon gets the retained "offline" again and must not announce it twice
        # (who is offline is kept in the source's checkpoint)
        daemons.pop().close()
        daemon = _start(config, daemons)  # the retained "offline" comes at the SUBACK
        _sentinel_reading(markers, topic_prefix, daemon)
        assert [p.id for p in _posts(daemon)] == [offline[0].id]
        # …while a daemon without that history does see the retained will and posts it
        fresh = _start(_config(f"sqlite:///{tmp_path}/fresh.db", broker.port, topic_prefix,
                               will, name="fresh"), daemons)
        assert [p.subject for p in wait_for(lambda: _posts(fresh, "machine.offline"))
                ] == ["press-07"]

        def online_again(client: mqtt.Client) -> None:
            client.will_set(status, "offline", qos=1, retain=True)

        publisher = Publisher("127.0.0.1", broker.port, client_id="press-07",
                              setup=online_again)
        publisher.publish(status, "online", qos=1, retain=True).wait_for_publish(5)
        online = wait_for(lambda: _posts(daemon, "machine.online"))
        publisher.close()  # a clean DISCONNECT: no will
        _sentinel_reading(markers, topic_prefix, daemon)
        markers.close()
        assert len(online) == 1 and online[0].subject == "press-07"
        assert online[0].clears == offline[0].id
        assert len(_posts(daemon)) == 2
    finally:
        _shutdown(daemons, broker)


# -- silence ----------------------------------------------------------------------------------

def test_silence_through_mqtt_posts_offline_then_online(
        tmp_path: Path, topic_prefix: str, daemons: Daemons) -> None:
    broker = PrivateBroker(tmp_path / "broker", persistence=False)
    broker.start()
    try:
        silence = THRESHOLD + "      - silence: {after: 1s}\n"  # threshold: the sentinels
        daemon = _start(_config(f"sqlite:///{tmp_path}/fs.db", broker.port, topic_prefix,
                                silence, settings=", tick_s: 0.2"), daemons)
        publisher = Publisher("127.0.0.1", broker.port)
        topic = f"{topic_prefix}/oven/oven-2/telemetry"
        ts = T0
        for _ in range(6):  # 0.6 s of readings every 0.1 s: never silent for 1 s
            ts += 100
            publisher.publish_all([(topic, _hot("oven-2", ts, 70.0))])
            time.sleep(0.1)  # pacing the readings
        stopped = time.monotonic()
        _sentinel_reading(publisher, topic_prefix, daemon)
        assert _posts(daemon) == []
        offline = wait_for(lambda: _posts(daemon, "machine.offline"), timeout=5,
                           interval=0.02)
        assert 0.9 <= time.monotonic() - stopped <= 3.0  # after 1 s, at the next ticks
        assert len(offline) == 1 and offline[0].subject == "oven-2"
        # more ticks while still silent: a sentinel machine reading now goes offline itself a
        # second later, so by its offline post oven-2 was ticked silent for a while longer
        late = _sentinel_reading(publisher, topic_prefix, daemon)
        wait_for(lambda: any(p.subject == late and p.type == "machine.offline"
                             for p in daemon.posts("general")), what="the sentinel's silence")
        assert len(_posts(daemon)) == 1
        publisher.publish_all([(topic, _hot("oven-2", ts + 5000, 70.0))])
        online = wait_for(lambda: _posts(daemon, "machine.online"))
        publisher.close()
        assert len(online) == 1 and online[0].clears == offline[0].id
        assert online[0].fields["silent_s"] >= 1.0
    finally:
        _shutdown(daemons, broker)


# -- QoS per topic and the persistent session -------------------------------------------------

@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_per_topic_qos_and_persistent_session_across_a_daemon_restart(
        tmp_path: Path, topic_prefix: str, daemons: Daemons, protocol: str) -> None:
    """Messages published while the daemon is stopped wait in its session on the broker for
    the QoS 1 and 2 subscriptions; the QoS 0 one gets nothing queued (Mosquitto's default)."""
    broker = PrivateBroker(tmp_path / "broker", persistence=False)
    broker.start()
    try:
        qos = "".join(f'      - {{filter: "{topic_prefix}/+/+/q{n}", qos: {n}}}\n'
                      for n in range(3))
        text = f"""
store: sqlite:///{tmp_path}/fs.db
flood: null
pipeline: {{batch_wait_ms: 1}}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://127.0.0.1:{broker.port}
    protocol: "{protocol}"
    client_id: fs-session
    topics:
{qos}    position_field: ts
{THRESHOLD}"""
        config = _parse(text)
        daemon = _start(config, daemons)
        publisher = Publisher("127.0.0.1", broker.port)

        def readings(prefix: str, ts: int) -> list[tuple[str, bytes]]:
            return [(f"{topic_prefix}/press/{prefix}{n}/q{n}", _hot(f"{prefix}{n}", ts + n))
                    for n in range(3)]

        publisher.publish_all(readings("live-", T0), qos=2)
        live = _at_least(3, lambda: _posts(daemon))
        assert sorted(p.subject for p in live) == ["live-0", "live-1", "live-2"]
        daemons.pop().close()  # a clean disconnect: the session stays on the broker
        publisher.publish_all(readings("away-", T0 + 10), qos=2)
        daemon = _start(config, daemons)
        _at_least(5, lambda: _posts(daemon))
        # a sentinel on the QoS 1 topic comes after what the session had queued: the QoS 0
        # message, were it queued, would have come before it
        machine = f"{SENTINEL}q"
        sentinel(lambda: publisher.publish_all(
                     [(f"{topic_prefix}/press/{machine}/q1", _hot(machine, T0))], qos=1),
                 lambda: machine in _sentinels(daemon))
        publisher.close()
        assert sorted(p.subject for p in _posts(daemon)) == [
            "away-1", "away-2", "live-0", "live-1", "live-2"]
    finally:
        _shutdown(daemons, broker)
