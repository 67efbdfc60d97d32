"""``mqtt``: machine telemetry from an MQTT broker, plain JSON (or bare values) and Sparkplug B.

The hot path is paho's ``on_message`` on paho's network thread: decode, render subject and
attrs from precompiled templates, build the Change without re-validating what this code built
itself (``Change.model_construct`` with aware UTC datetimes), and hand it to the emitter with an
ack callback. The emitter blocks while the pipeline queue is full, which stops paho reading the
socket: back-pressure reaches the broker, memory stays bounded.

No loss: QoS ≥ 1 messages are acked (PUBACK) only by the callback the pipeline runs after the
commit. Everything the daemon had not committed when it died is still unacked at the broker,
which sends it again to the same client id (persistent session). Replayed messages get the same
positions (see :meth:`MqttAdapter._position`) and the committed detector state, so they add
nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import paho.mqtt.client as mqtt

from floorstream.adapters.mqtt import connection
from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.topics import MissingValue, Template, lookup_path
from floorstream.model import Change
from floorstream.plugin import (
    Adapter,
    AdapterContext,
    Checkpoint,
    DecodeError,
    Emitter,
    Registry,
    hookimpl,
)

if TYPE_CHECKING:  # imported by a source that uses them (issue 16: RSS), see __init__
    from floorstream.adapters.mqtt.lastwill import LastWill
    from floorstream.adapters.mqtt.sparkplug import SparkplugSessions
    from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost

__all__ = ["MqttAdapter"]

#: checkpoint keys of the Sparkplug host (SparkplugHost.dump)
_SPARKPLUG_KEYS = ("sparkplug", "sparkplug_hosts", "sparkplug_backfill")

_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float), "integer": (int,), "string": (str,), "boolean": (bool,)}
_TOPIC_CACHE = 100_000  # topics whose subject and attrs are kept rendered
MAX_SUBJECT = 255  # the store's subject column (VARCHAR(255))
#: payload times outside these years are refused: they overflow once moved to UTC or stored
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
_INT_MIN, _UINT_MAX = -(1 << 63), (1 << 64) - 1
#: a payload time above this is in milliseconds (below: seconds), see :func:`_time`
_MS_AFTER = 100_000_000_000
#: the last millisecond of LATEST_YEAR
_LATEST_MS = int(datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()) * 1000 - 1
#: only a payload with 19 digits in a row can hold an integer beyond 64 bits: every digit
#: mapped to ``9`` and every other byte to a space, then one substring search (a regex
#: ``\d{19}`` tried at each digit cost a tenth of the handler's instructions per message)
_DIGITS_AS_NINES = bytes(0x39 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"9" * 19
_UNUSED: list[str] = []  # the topic levels of a message that needs none (never written)


class MqttAdapter(Adapter[MqttConfig]):
    name: ClassVar[str] = "mqtt"
    reports_connection: ClassVar[bool] = True  # context.health, from paho's callbacks

    def __init__(self, config: MqttConfig, context: AdapterContext) -> None:
        super().__init__(config, context)
        self.cfg = config
        self.decoder = context.decoders.get(config.decode)()
        self.sparkplug_mode = config.decode == "sparkplug"
        self.subject = Template(config.subject)
        self.subject_set = "subject" in config.model_fields_set
        self.attr_templates = {k: Template(v) for k, v in config.attrs.items() if "{" in v}
        self.static_attrs = {k: v for k, v in config.attrs.items() if "{" not in v}
        # the last will and the Sparkplug stack (sessions, reorder, births, backfills, host
        # states: a dozen modules) are imported by a source that uses them, not by every
        # JSON source; a Sparkplug state in the checkpoint (the source was Sparkplug before)
        # gets the host too, which keeps that state in the checkpoints as it always did
        self.last_will: LastWill | None = None
        if config.last_will:
            from floorstream.adapters.mqtt.lastwill import LastWill

            self.last_will = LastWill(config.last_will, config.name)
        state = self._read(context.checkpoint)
        self.sparkplug: SparkplugHost | None = None
        self.sessions: SparkplugSessions | None = None
        if self.sparkplug_mode or any(state.get(key) for key in _SPARKPLUG_KEYS):
            from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost

            self.sparkplug = SparkplugHost(config, context.log, self.static_attrs,
                                           self.subject if self.subject_set else None,
                                           context.interest)
            self.sessions = self.sparkplug.sessions
        self._restore(state)
        self.client: connection.Client | None = None
        self.acker: connection.Acker | None = None
        self.connected = threading.Event()
        self.received = 0
        self.json_decoder = config.decode == "json"

    # -- lifecycle ------------------------------------------------------------------------

    def _read(self, checkpoint: str | None) -> Any:
        """The checkpoint's state (a dict, as :meth:`checkpoint` writes it); empty without one
        or when it is unreadable (logged)."""
        if not checkpoint:
            return {}
        try:
            state = json.loads(checkpoint)
        except ValueError:
            self.context.log.warning("checkpoint_unreadable", checkpoint=checkpoint[:80])
            return {}
        return state

    def _restore(self, state: Any) -> None:
        if self.sparkplug is not None:
            self.sparkplug.load(state)
        if self.last_will is not None:
            self.last_will.load(state.get("offline") or {})

    def checkpoint(self) -> str:
        return str(self._checkpoint_parts())

    def _checkpoint_parts(self) -> Checkpoint:
        """:meth:`checkpoint` as the Sparkplug host emits it: the text in the parts the
        sessions keep, joined only if the pipeline commits it (``CheckpointParts``)."""
        extra = {"offline": self.last_will.dump()} if self.last_will is not None else {}
        if self.sparkplug is not None:
            return self.sparkplug.checkpoint_parts(extra)
        return _plain_checkpoint(extra)

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        client = self.client = connection.make_client(self.cfg)
        acker = self.acker = connection.Acker(client)
        subscriptions = self.cfg.subscriptions()
        log = self.context.log
        health = self.context.health
        broker = f"{self.cfg.host}:{self.cfg.port}"

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
            if reason.is_failure:
                log.warning("mqtt_connect_refused", reason=str(reason))
                health.disconnected(f"broker {broker} refused the connection: {reason}")
                return
            acker.new_connection()
            if isinstance(client, connection.Client):
                client.buffer_socket()
            client.subscribe(subscriptions)
            self.connected.set()
            health.connected()
            log.info("mqtt_connected", broker=f"{self.cfg.host}:{self.cfg.port}",
                     session_present=bool(getattr(flags, "session_present", False)))

        def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                          properties: Any) -> None:
            self.connected.clear()
            if not stop.is_set():
                log.warning("mqtt_disconnected", reason=str(reason))
                health.disconnected(f"disconnected from {broker}: {reason}")

        def on_connect_fail(client: mqtt.Client, userdata: Any) -> None:
            # paho retries a failed TCP/TLS connect silently (a wrong CA, a refused port);
            # it calls this from inside its ``except OSError``, so the cause is at hand
            error = sys.exc_info()[1]
            log.warning("mqtt_connect_failed", broker=f"{self.cfg.host}:{self.cfg.port}",
                        error=str(error) if error is not None else "unknown")
            health.disconnected(f"cannot connect to {broker}: "
                                f"{error if error is not None else 'unknown error'}")

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_connect_fail = on_connect_fail
        # what the messages of one socket read produce goes to the pipeline in one go at the
        # end of the read (the fast path's on_read_end); every thread of this source emits
        # through the same held emitter, so the order stays the order things were emitted
        release: Callable[[], None] = _nothing
        if isinstance(client, connection.FastClient) and callable(
                getattr(emitter, "held", None)):
            emitter = emitter.held()  # type: ignore[attr-defined]
            release = emitter.release  # type: ignore[attr-defined]
            client.on_read_end = release
        client.on_message = self._handler(emitter, acker)
        connection.start(client, self.cfg)
        host = self.sparkplug if self.sparkplug_mode else None
        if host is not None:
            host.start(emitter, self._checkpoint_parts, self._publish)
        try:
            if host is not None:  # Sparkplug timeouts (reorder, births, backfills)
                while not stop.wait(host.tick_interval):
                    host.tick()
                    release()
            else:
                stop.wait()
        finally:
            client.disconnect()
            client.loop_stop()
            release()

    def close(self) -> None:
        self.client = None

    def unacked_window(self) -> int | None:
        """The QoS ≥ 1 messages the broker sends before it waits for our PUBACKs: our Receive
        Maximum with MQTT 5; with 3.1.1 the broker's own ``max_inflight_messages``, which a
        client cannot see (Mosquitto's default, 20, unless the source says otherwise). None
        when nothing is subscribed above QoS 0."""
        if all(qos == 0 for _, qos in self.cfg.subscriptions()):
            return None
        if self.cfg.protocol == "5":
            return self.cfg.receive_maximum
        return self.cfg.broker_inflight

    def _publish(self, topic: str, payload: bytes) -> None:
        client = self.client
        if client is not None:
            client.publish(topic, payload, qos=0)

    # -- the hot path ---------------------------------------------------------------------

    def _handler(self, emitter: Emitter, acker: connection.Acker) -> Any:
        cfg = self.cfg
        source, kind = cfg.name, cfg.kind
        max_payload = cfg.max_payload
        decode = self.decoder.decode
        if self.sparkplug_mode:  # the session reads metrics as tuples (sparkplug.py), and
            # of a plain DATA message only those of interest (decode_lazy: later, if at all)
            decode = getattr(self.decoder, "decode_lazy", None) or getattr(
                self.decoder, "decode_compact", None) or _compact(decode)
        subject_t = self.subject
        attr_templates = self.attr_templates
        static_attrs = self.static_attrs
        types = [(k, _TYPES[v], v) for k, v in cfg.types.items()]
        fields = list(cfg.fields.items())
        position_field, time_field = cfg.position_field, cfg.time_field
        last_will = self.last_will
        emit, quarantine = emitter.emit, emitter.quarantine
        construct = Change._trusted  # every field built here, typed: skip re-validation
        now = datetime.now
        from_ts = datetime.fromtimestamp
        callback = acker.callback
        sparkplug = self.sparkplug_mode
        sparkplug_prefix = cfg.sparkplug.prefix_levels
        if sparkplug:  # resolved once here, not per message; unbound for other sources
            from floorstream.adapters.mqtt.sparkplug import classify

            assert self.sparkplug is not None  # built in __init__ for a Sparkplug source
            host = self.sparkplug
        namespace = ("[prefix/]" if cfg.sparkplug.prefix is None else
                     f"{cfg.sparkplug.prefix}/" if cfg.sparkplug.prefix else "") + "spBv1.0/"
        # subject and attrs rendered from topic levels only are the same for every message of a
        # topic: rendered once per topic instead of once per message
        by_topic: dict[str, tuple[str, dict[str, str]]] | None = (
            {} if not subject_t.uses_payload and not sparkplug
            and not any(t.uses_payload for t in attr_templates.values()) else None)

        # Sparkplug: topic → (what it is, its levels from spBv1.0 on, the bridge prefix);
        # the levels are shared by the messages of the topic and never written
        spb_topics: dict[str, tuple[str, list[str], str]] = {}

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                handle(msg)
            except Exception as exc:  # a bug must cost one message, not paho's thread
                topic = _topic_text(msg)
                self.context.log.error("mqtt_message_failed", topic=topic, error=repr(exc),
                                       exc_info=True)
                try:
                    quarantine(bytes(msg.payload), f"internal error: {exc!r}",
                               position=_hash_position(topic, msg.payload),
                               context={"topic": topic},
                               ack=callback(msg.mid, msg.qos) if msg.qos else None)
                except Exception:  # (the emitter is stopping): never into paho's loop
                    self.context.log.error("mqtt_quarantine_failed", topic=topic,
                                           exc_info=True)

        def handle(msg: mqtt.MQTTMessage) -> None:
            self.received += 1
            payload: bytes = msg.payload  # type: ignore[assignment]  # bytes off the wire
            ack = callback(msg.mid, msg.qos) if msg.qos else None
            try:
                topic = msg.topic
            except UnicodeDecodeError as exc:  # a broker that does not check (MQTT says UTF-8)
                shown = _topic_text(msg)
                quarantine(payload[:max_payload], f"topic {shown!r} is not UTF-8 "
                           f"({exc.reason} at byte {exc.start})",
                           position=_hash_position(shown, payload),
                           context={"topic": shown}, ack=ack)
                return
            observed = now(UTC)
            if len(payload) > max_payload:
                quarantine(payload[:max_payload], f"payload of {len(payload)} bytes exceeds "
                           f"max_payload {max_payload}", position=_hash_position(topic, payload),
                           context={"topic": topic, "truncated": True}, ack=ack)
                return
            # topic levels: for the last will, Sparkplug and templates not rendered yet (a
            # plain topic's subject and attrs are cached: no split per message then)
            cached = by_topic.get(topic) if by_topic is not None else None
            levels = topic.split("/") if last_will is not None or (
                cached is None and not sparkplug) else _UNUSED
            if last_will is not None and last_will.filter.matches(levels):
                try:
                    will_event = last_will.handle(levels, topic, payload, observed,
                                                  {**static_attrs})
                    if will_event is not None and len(will_event.subject) > MAX_SUBJECT:
                        raise DecodeError(f"subject of {len(will_event.subject)} characters, "
                                          f"more than {MAX_SUBJECT}")
                except RecursionError:
                    will_error = "status payload nested too deep to parse"
                except DecodeError as exc:
                    will_error = str(exc)
                else:
                    if will_event is None:
                        if ack is not None:
                            ack()
                    else:
                        emitter.event(will_event, ack=ack, checkpoint=self.checkpoint())
                    return
                quarantine(payload, will_error, position=_hash_position(topic, payload),
                           context={"topic": topic}, ack=ack)
                return
            if sparkplug:  # a topic's place in the namespace, worked out once per topic
                known = spb_topics.get(topic)
                if known is None:
                    known = classify(topic.split("/"), sparkplug_prefix)
                    if len(spb_topics) >= _TOPIC_CACHE:
                        spb_topics.clear()
                    spb_topics[topic] = known
                what, levels, bridge = known
                if what == "state":  # a host application's STATE: not edge data
                    host.state_message(levels, topic, payload, observed, ack)
                    return
                if what == "other":
                    quarantine(payload, f"topic does not fit the Sparkplug B namespace "
                               f"(expected {namespace}<group>/<N|D><BIRTH|DATA|DEATH|CMD>/"
                               f"<node>[/<device>] or {namespace}STATE/<host>)",
                               position=_hash_position(topic, payload),
                               context={"topic": topic}, ack=ack)
                    return
            try:
                data = decode(payload)
                if sparkplug:
                    host.message(levels, topic, payload, data, observed, ack, bridge)
                    return
                if cached is not None:
                    subject, topic_attrs = cached
                    attrs = {**topic_attrs}
                else:
                    subject = subject_t.render(levels, topic, data)
                    attrs = {**static_attrs}
                    for name, template in attr_templates.items():
                        attrs[name] = template.render(levels, topic, data)
                    if by_topic is not None:
                        if len(by_topic) >= _TOPIC_CACHE:
                            by_topic.clear()  # bounded: a topic per message would not grow it
                        by_topic[topic] = (subject, {**attrs})
                if len(subject) > MAX_SUBJECT:
                    raise DecodeError(f"subject {subject[:40]!r}... is {len(subject)} "
                                      f"characters long, more than {MAX_SUBJECT}")
                if _LONG_RUN in payload.translate(_DIGITS_AS_NINES):
                    _fit_integers(data)
                for name, path in fields:
                    with suppress(MissingValue):
                        data[name] = lookup_path(data, path)
                for name, allowed, label in types:
                    value = data.get(name)
                    if value is not None and (not isinstance(value, allowed) or (
                            label != "boolean" and isinstance(value, bool))):
                        raise DecodeError(f"field {name!r} should be a {label}, "
                                          f"got {value!r}")
                # the common cases inline (an integer or text position, a millisecond time
                # in range), the rest and every error in _position and _time
                value = data.get(position_field) if position_field is not None else None
                if (type(value) is int or type(value) is str) and value != "":
                    position = f"{topic}|{value}"
                else:
                    position = _position(topic, data, position_field, observed)
                if time_field:
                    value = data.get(time_field)
                    if (type(value) is int or type(value) is float) and \
                            _MS_AFTER < value <= _LATEST_MS:
                        occurred: datetime | None = from_ts(value / 1000.0, UTC)
                    else:
                        occurred = _time(data, time_field)
                else:
                    occurred = None
            except (DecodeError, MissingValue) as exc:
                quarantine(payload, str(exc), position=_hash_position(topic, payload),
                           context={"topic": topic}, ack=ack)
                return
            emit(construct({"source": source, "subject": subject, "kind": kind,
                            "position": position, "observed_at": observed,
                            "occurred_at": occurred, "data": data, "before": None,
                            "attrs": attrs}), ack=ack)

        return on_message


def _plain_checkpoint(extra: dict[str, Any]) -> str:
    """The checkpoint of a source without Sparkplug state, in the very layout of
    :meth:`SparkplugHost.checkpoint_text` with no nodes (``{"sparkplug":{}`` first): the same
    text whether or not the host was imported."""
    rest = json.dumps(extra, separators=(",", ":"), sort_keys=True)
    return '{"sparkplug":{}' + ("," + rest[1:] if rest != "{}" else "}")


def _nothing() -> None:
    """Nothing held (an emitter without ``held``, or stock paho: no end of a read)."""


def _compact(decode: Any) -> Any:
    """A ``sparkplug`` decoder without ``decode_compact`` (a plugin's): its dict metrics as the
    tuples the session reads."""
    def compact(payload: bytes) -> Any:
        record = decode(payload)
        record["metrics"] = [(m.get("name"), m.get("alias"), m.get("timestamp"),
                              bool(m.get("is_historical")), m.get("value"))
                             for m in record["metrics"]]
        return record
    return compact


def _hash_position(topic: str, payload: bytes | bytearray) -> str:
    return f"{topic}|h:{hashlib.blake2b(payload, digest_size=8).hexdigest()}"


def _position(topic: str, data: Any, field: str | None, observed: datetime) -> str:
    """The configured payload timestamp/sequence (stable across broker redelivery, so event
    ids dedupe replays), else the arrival time.

    Not a hash of the payload as fallback: a machine that sends the same bytes twice for two
    real transitions (``STOPPED`` … ``RUNNING`` … ``STOPPED``) would see the second one taken
    for a replay and dropped. With arrival positions a replay of messages whose commit made it
    but whose ack did not is absorbed by the detector state committed with them (a state that
    is already STOPPED does not change to STOPPED again) instead of by the id.
    """
    if field is not None:
        value = data.get(field) if field in data else None
        if value is None:
            try:
                value = lookup_path(data, field)
            except MissingValue:
                value = None
        if value is None or value == "":
            # an arrival-time position would make every redelivery of this message new
            raise DecodeError(f"missing position field {field!r}")
        if isinstance(value, dict | list):
            raise DecodeError(f"position field {field!r} is not a number or a string")
        return f"{topic}|{value}"
    return f"{topic}|r:{observed.timestamp():.6f}"


def _time(data: Any, field: str) -> datetime | None:
    try:
        value = data[field] if field in data else lookup_path(data, field)
    except MissingValue:
        return None
    if isinstance(value, bool):
        raise DecodeError(f"time field {field!r} is a boolean")
    if isinstance(value, int | float):
        try:
            seconds = value / 1000.0 if value > _MS_AFTER else float(value)
            when = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):  # 1e300, NaN, inf, a 40-digit integer
            raise DecodeError(f"time field {field!r} is out of range: {value!r}") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            when = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            raise DecodeError(f"time field {field!r} is not ISO 8601: {value!r}") from None
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise DecodeError(f"time field {field!r} is out of range: {value!r}") from None
    else:
        raise DecodeError(f"time field {field!r} has an unusable value {value!r}")
    if not EARLIEST_YEAR <= when.year <= LATEST_YEAR:
        raise DecodeError(f"time field {field!r} is out of range: {value!r} is in year "
                          f"{when.year} (accepted: {EARLIEST_YEAR}-{LATEST_YEAR})")
    return when


def _topic_text(msg: mqtt.MQTTMessage) -> str:
    """The topic for logs and quarantine context, also when it is not UTF-8 (then with
    ``\\xNN`` escapes for the bad bytes): ``msg.topic`` raises for those."""
    try:
        return msg.topic
    except UnicodeDecodeError as exc:
        return bytes(exc.object).decode("utf-8", "backslashreplace")


def _fit_integers(data: Any) -> None:
    """Integers beyond 64 bits become floats, as the JSON decoder's fast path (orjson) reads
    them anyway; json's path and the value decoder keep Python's big integers, which the
    store's JSON encoder cannot write (one in a state or a post field would fail every commit
    after it). An integer beyond a float's range (309 digits) is refused."""
    stack = [data]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(child, int) and not isinstance(child, bool) and \
                    not _INT_MIN <= child <= _UINT_MAX:
                try:
                    item[key] = float(child)
                except OverflowError:
                    raise DecodeError(f"integer of {len(str(abs(child)))} digits is out of "
                                      "range (not even a float)") from None
            elif isinstance(child, dict | list):
                stack.append(child)


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(MqttAdapter)
