"""Everything floorstream does with paho-mqtt's private internals, and the check that they exist.

The fast path (why: docs/mqtt.md, *Speed*):

- :func:`parse_publish` reads one complete QoS 0/1 PUBLISH from a buffer and builds the same
  ``MQTTMessage`` paho would hand to ``on_message``, without paho's per-message state dict,
  ``recv`` calls, struct formats, debug-log call, ``threading.Condition`` and empty MQTT 5
  ``Properties``. Anything else (another packet type, QoS 2, a packet not complete in the
  buffer, anything malformed) returns None and is left to paho's own reader, which reads it
  from the same buffer: paho stays the reference for every case this need not be fast for.
- :class:`BufferedSocket` serves paho's small reads from one 64 KiB read.
- :class:`FastPathMixin` is paho's ``Client`` reading a batch of packets per wake-up through
  the two above, and writing the PUBACKs of committed QoS 1 messages in one go.

No other module of floorstream touches a private name of paho: ``connection.py`` builds on
paho's public API and mixes this class in only when the installed paho passed the check below.

**The capability check** runs at import and sets :data:`FAST_PATH_AVAILABLE` and
:data:`FAST_PATH_PROBLEM` (why not, in one sentence):

1. the installed paho's version lies in :data:`TESTED_PAHO` (pyproject.toml pins the same
   range; both ends are tested, see ``make test-paho-floor``);
2. every private name used here exists: module constants, ``Client`` methods, attributes of a
   fresh ``Client``, the slots of ``MQTTMessage``; and none of the names this module adds to the
   client is taken by paho;
3. a self-test, over a real socket pair and at MQTT 3.1.1 and 5, reads PUBLISH packets through
   the fast path and a packet left to paho between them, needs paho's loop to honour
   ``pending()`` (or buffered bytes would wait for the next network read: a silent stall),
   compares every message with what paho's own reader makes of the same bytes, and writes
   coalesced PUBACKs through paho's writer.

When any of it fails, ``connection.make_client`` uses stock paho (``on_message`` and paho's
manual ``ack()``: correct, slower) and logs ``mqtt_fast_path_unavailable`` once.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["FAST_PATH_AVAILABLE", "FAST_PATH_PROBLEM", "PAHO_CEILING", "PAHO_FLOOR",
           "PAHO_VERSION", "TESTED_PAHO", "BufferedSocket", "FastPathMixin", "check",
           "message_fields", "parse_publish", "read_with_paho"]

#: the oldest paho-mqtt the fast path is tested on (``make test-paho-floor`` installs it)
PAHO_FLOOR = "2.1.0"
#: the first paho-mqtt version not tested (exclusive)
PAHO_CEILING = "2.3"
#: the tested range as a requirement; pyproject.toml pins exactly this
TESTED_PAHO = f"paho-mqtt>={PAHO_FLOOR.removesuffix('.0')},<{PAHO_CEILING}"

_READ_SIZE = 65536
_PACKETS_PER_WAKEUP = 500
_PUBACK = 0x40  # MQTT packet type 4; a PUBACK is the same 4 bytes at 3.1.1 and 5
_PUBACK_PACKET = struct.Struct("!BBH")

# -- what is used, checked at import ----------------------------------------------------------

#: public-looking names of ``paho.mqtt.client`` used here
_MODULE_NAMES = ("Client", "MQTTMessage", "MQTTMessageInfo", "MQTT_LOG_ERR", "MQTTv5",
                 "mqtt_ms_invalid")
#: methods of ``Client`` called or overridden here (``_loop``: its ``pending()`` check)
_CLIENT_METHODS = ("_create_socket_connection", "_easy_log", "_get_proxy",
                   "_handle_on_message", "_loop", "_loop_rc_handle", "_packet_read",
                   "_send_puback", "loop_read", "loop_write", "message_callback_add",
                   "message_callback_remove", "want_write")
#: attributes of a ``Client`` instance read or written here
_CLIENT_ATTRIBUTES = ("_bind_address", "_bind_port", "_connect_timeout", "_host", "_port",
                      "_in_callback_mutex", "_in_packet", "_logger", "_manual_ack",
                      "_msgtime_mutex", "_on_message_filtered", "_out_packet", "_protocol",
                      "_sock", "_sockpairR", "_sockpairW", "_userdata", "on_log", "on_message",
                      "suppress_exceptions")
#: when bytes were last received (keepalive): paho 2.2 name, paho 2.0/2.1 name
_LAST_RECEIVED_NAMES = ("_last_bytes_received", "_last_msg_in")
#: what :func:`parse_publish` sets on a message made without ``__init__``: all of them
_MESSAGE_SLOTS = frozenset({"_topic", "dup", "info", "mid", "payload", "properties", "qos",
                            "retain", "state", "timestamp"})
#: the names :class:`FastPathMixin` adds to paho's client: paho must not use them
_OWN_NAMES = ("_ack_flush_lock", "_ack_wake", "_linger", "_read_buffered", "_read_packets",
              "ack_generation", "buffer_socket", "flush_acks", "linger_below",
              "on_read_end", "packets_per_wakeup", "pending_acks", "queue_ack", "read_linger")

# bound by the check once the names are there (the fast path runs only after it passed)
_Message: Any = None
_NO_INFO: Any = None  # handed to every message: no one waits on a received message's status
_NO_PROPERTIES: Any = None  # a v5 message without properties (read-only, like paho's own)
_MS_INVALID: Any = None
_LAST_RECEIVED = _LAST_RECEIVED_NAMES[0]
_new = object.__new__
_now = time.monotonic


# -- the parser -------------------------------------------------------------------------------

def parse_publish(data: bytes, pos: int, v5: bool) -> tuple[int, mqtt.MQTTMessage] | None:
    """``(end, message)`` for the QoS 0/1 PUBLISH starting at ``data[pos]``, else None."""
    header = data[pos]
    if header & 0xF0 != 0x30 or header & 0x06 > 0x02:
        return None  # not a PUBLISH, or QoS 2 (paho's state machine)
    size = len(data)
    index = pos + 1
    length = 0
    shift = 0
    while True:  # remaining length: 1 to 4 bytes, 7 bits each
        if index >= size or shift > 21:
            return None
        byte = data[index]
        index += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    end = index + length
    if end > size or length < 2:
        return None
    topic_end = index + 2 + ((data[index] << 8) | data[index + 1])
    if topic_end > end or (topic_end == index + 2 and not v5):
        return None
    qos = (header & 0x06) >> 1
    cursor = topic_end
    mid = 0
    if qos:
        if cursor + 2 > end:
            return None
        mid = (data[cursor] << 8) | data[cursor + 1]
        cursor += 2
    properties = None
    if v5:
        if cursor >= end:
            return None
        if data[cursor] == 0:
            properties = _NO_PROPERTIES
            cursor += 1
        else:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            try:
                _, used = properties.unpack(data[cursor:end])  # type: ignore[no-untyped-call]
            except Exception:
                return None  # paho reports it as the malformed packet it is
            cursor += used
            if cursor > end:
                return None
    message: mqtt.MQTTMessage = _new(_Message)
    message.timestamp = _now()
    message.state = _MS_INVALID
    message.dup = bool(header & 0x08)
    message.mid = mid
    message._topic = data[index + 2:topic_end]
    message.payload = data[cursor:end]
    message.qos = qos
    message.retain = bool(header & 0x01)
    message.info = _NO_INFO
    message.properties = properties
    return end, message


def message_fields(message: mqtt.MQTTMessage) -> tuple[Any, ...]:
    """What a message says, for comparing two readers: (topic as bytes, payload, qos, mid,
    retain, dup, the MQTT 5 properties packed, or None). The topic stays bytes because a
    topic that is not UTF-8 reaches ``on_message`` too (``message.topic`` raises then)."""
    props = message.properties
    return (bytes(message._topic), bytes(message.payload), message.qos, message.mid,
            message.retain, message.dup,
            props.pack() if props is not None else None)  # type: ignore[no-untyped-call]


# -- the client -------------------------------------------------------------------------------

class BufferedSocket:
    """A socket whose ``recv`` serves small reads from one large read.

    ``pending()`` reports the buffered bytes, which paho's loop already honours for TLS
    sockets (it does not wait in ``select`` while bytes are pending; the self-test checks it).
    Everything else is passed through to the wrapped socket.
    """

    __slots__ = ("_data", "_failed", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0
        #: what a :meth:`fill` got instead of bytes (end of stream, an error): handed to
        #: paho's reader by the next ``recv``, so paho alone decides what a closed or broken
        #: connection means
        self._failed: BaseException | bytes | None = None

    def fill(self) -> bool:
        """Read what the socket has into the empty buffer. False when it has nothing now;
        True when there are bytes, or when the read ended the stream or failed (kept for
        paho's next ``recv``). Lets a wake-up that brings one packet (a paced stream) parse
        it on the fast path too instead of through paho's reader."""
        try:
            data = self._sock.recv(_READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError as exc:
            self._failed = exc
            return True
        if data:
            self._data, self._pos = data, 0
        else:
            self._failed = b""
        return True

    def recv(self, size: int) -> bytes:
        data, pos = self._data, self._pos
        if pos >= len(data):
            failed = self._failed
            if failed is not None:
                self._failed = None
                if isinstance(failed, BaseException):
                    raise failed
                return failed
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
        return len(self._data) - self._pos + inner + (self._failed is not None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class FastPathMixin(mqtt.Client):
    """paho's client reading a batch of packets per wake-up from a :class:`BufferedSocket`
    (complete QoS 0/1 PUBLISH packets through :func:`parse_publish`), and writing the PUBACKs
    of committed QoS 1 messages in one go.

    QoS 1 acks: paho's ``ack()`` queues one PUBACK per message and writes to a socketpair to
    wake its network thread, a syscall each plus one ``send`` per PUBACK, all on the pipeline
    thread that holds the GIL. :meth:`queue_ack` only records the packet id; the network thread
    turns everything recorded since its last wake-up into one write of back-to-back PUBACKs
    (:meth:`flush_acks`), with at most one wake-up per committed batch.

    ``connection.FastClient`` mixes this into floorstream's client; use that.
    """

    #: packets handled per wake-up before paho's loop gets to write acks and pings again
    packets_per_wakeup = _PACKETS_PER_WAKEUP
    #: a wake-up that found fewer than :attr:`linger_below` packets (a paced stream, one
    #: message per wake-up) waits this long for more before it returns to paho's loop, once:
    #: a paced 5,000 msgs/s stream then costs a wake-up per few messages instead of one each
    #: (each a select, two recv calls and paho's loop bookkeeping). An ack to write ends the
    #: wait early; an idle connection never waits (nothing was read).
    read_linger = 0.002
    linger_below = 32
    #: called (network thread) at the end of every read and before a linger waits: the
    #: adapter hands what the messages of the read produced to its pipeline in one go there
    #: (``pipeline.HeldEmitter``)
    on_read_end: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (connection generation, packet id) of committed QoS 1 messages not yet PUBACKed
        self.pending_acks: deque[tuple[int, int]] = deque()
        self.ack_generation = 0
        self._ack_wake = False  # a wake-up byte is on its way to the network thread
        #: drain-and-queue of the acks is one step: a ``disconnect`` from another thread
        #: between the two would put the DISCONNECT ahead of drained acks, which the broker
        #: then never gets (it resends those messages)
        self._ack_flush_lock = threading.RLock()

    def _create_socket_connection(self) -> Any:
        """paho's TCP connect, given the host name as the bytes Python's IDNA codec makes of
        an ASCII name (the name itself, its labels checked): ``socket.getaddrinfo`` encodes a
        str host through that codec, whose import (encodings.idna, stringprep, unicodedata)
        costs ~0.3 MB of RSS (issue 16). Through a proxy, or with a name the codec would
        change or refuse, paho's own way, as before."""
        host: str = self._host
        labels = host.split(".")
        if not host.isascii() or self._get_proxy() or len(labels[-1]) >= 64 or any(
                not 0 < len(label) < 64 for label in labels[:-1]):
            return super()._create_socket_connection()
        # (typeshed says str; create_connection hands the host to getaddrinfo, which takes
        # bytes as they are)
        return socket.create_connection((host.encode("ascii"), self._port),  # type: ignore[arg-type]
                                        timeout=self._connect_timeout,
                                        source_address=(self._bind_address, self._bind_port))

    def buffer_socket(self) -> None:
        """Wrap the fresh connection's socket; called from on_connect (nothing buffered yet)."""
        sock = self._sock
        if sock is not None and not isinstance(sock, BufferedSocket):
            self._sock = BufferedSocket(sock)

    # -- acks ---------------------------------------------------------------------------------

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
        and the broker redelivers those messages anyway (see ``connection.Acker``).
        """
        with self._ack_flush_lock:
            self._flush_acks_locked()

    def _flush_acks_locked(self) -> None:
        self._ack_wake = False  # before draining: an ack recorded after this wakes us again
        pending = self.pending_acks
        if not pending:
            return
        generation = self.ack_generation
        pack = _PUBACK_PACKET.pack
        parts = []
        pop = pending.popleft
        while pending:
            gen, mid = pop()
            if gen == generation:
                parts.append(pack(_PUBACK, 2, mid))
        if parts:
            # one MQTT packet each on the wire; one entry in paho's queue, so one send()
            packet = b"".join(parts)
            self._out_packet.append({"command": _PUBACK, "mid": 0, "qos": 1, "pos": 0,
                                     "to_process": len(packet), "packet": packet,
                                     "info": None})

    def disconnect(self, *args: Any, **kwargs: Any) -> MQTTErrorCode:
        """Acks recorded before a clean disconnect leave before the DISCONNECT, as with
        stock paho, whose ``ack()`` queues the PUBACK at once (flushed after it, they would
        be dropped with the connection and the broker would send those messages again)."""
        with self._ack_flush_lock:  # no flush half done on the network thread meanwhile
            self._flush_acks_locked()
            return super().disconnect(*args, **kwargs)

    def want_write(self) -> bool:
        return bool(self._out_packet) or bool(self.pending_acks)

    def loop_write(self) -> MQTTErrorCode:
        self.flush_acks()
        return super().loop_write()

    # -- reads --------------------------------------------------------------------------------

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho 2.x's ``loop_read`` ignores ``max_packets`` and reads about one packet per
        call; this is the same loop with a useful bound (:attr:`packets_per_wakeup`), and QoS
        0/1 PUBLISH packets already in the buffer go through :func:`parse_publish`. Ends
        with :attr:`on_read_end`, however it ends."""
        try:
            return self._read_packets()
        finally:
            end = self.on_read_end
            if end is not None:
                end()

    def _read_packets(self) -> MQTTErrorCode:
        budget = self.packets_per_wakeup  # then back to paho's loop: acks, keepalive
        lingered = False
        while budget > 0:
            sock = self._sock
            if sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if type(sock) is BufferedSocket and not self._in_packet["command"]:
                if sock._pos >= len(sock._data) and sock._failed is None and not sock.fill():
                    # nothing to read now (what paho's reader would find too)
                    if lingered or not 0 < self.packets_per_wakeup - budget < self.linger_below:
                        break
                    lingered = True
                    end = self.on_read_end
                    if end is not None:  # what was read goes on before the wait
                        end()
                    self._linger()
                    continue
                budget -= self._read_buffered(sock, budget)
                if self._sock is None:
                    return MQTTErrorCode.MQTT_ERR_NO_CONN
                if budget <= 0:
                    break
                if sock._pos >= len(sock._data) and sock._failed is None:
                    continue  # all of it read: the next fill says whether more is there
            rc = self._packet_read()
            budget -= 1
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _linger(self) -> None:
        """Wait :attr:`read_linger` for more packets, or less if an ack wakes paho's loop."""
        wait = self.read_linger
        if wait <= 0:
            return
        wake = self._sockpairR
        if wake is None:
            time.sleep(wait)
            return
        with suppress(OSError, ValueError):
            select.select([wake], [], [], wait)

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
                setattr(self, _LAST_RECEIVED, time.monotonic())
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


# -- paho's own reader, the reference ---------------------------------------------------------

class _Replay:
    """A socket that returns the given bytes, then 'nothing to read', and keeps what is sent."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = bytearray()

    def recv(self, size: int) -> bytes:
        if not self.data:
            raise BlockingIOError
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)


def read_with_paho(data: bytes, protocol: MQTTProtocolVersion) -> list[mqtt.MQTTMessage]:
    """The messages stock paho's own reader makes of ``data`` (packets back to back, read
    until the first one paho rejects or the end): the reference the parser is held to."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True)
    received: list[mqtt.MQTTMessage] = []
    client.on_message = lambda _client, _userdata, message: received.append(message)
    replay = _Replay(data)
    client._sock = cast(Any, replay)
    try:
        while replay.data or client._in_packet["command"]:
            try:
                rc = client._packet_read()
            except Exception:  # paho 2.1 lets some malformed packets raise
                break
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
    finally:
        client._sock = None
    return received


# -- the capability check ---------------------------------------------------------------------

def _version(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    major, minor, patch = match.groups(default="0")
    return int(major), int(minor), int(patch)


def _installed_version() -> str:
    version = getattr(paho.mqtt, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata
    try:
        return metadata.version("paho-mqtt")
    except metadata.PackageNotFoundError:
        return "unknown"


#: the paho-mqtt version imported (``paho.mqtt.__version__``)
PAHO_VERSION = _installed_version()


def _check_version(version: str) -> str | None:
    parsed, floor, ceiling = _version(version), _version(PAHO_FLOOR), _version(PAHO_CEILING)
    assert floor is not None and ceiling is not None
    if parsed is None or not floor <= parsed < ceiling:
        return f"paho-mqtt {version} is not in the tested range {TESTED_PAHO}"
    return None


def _check_names(module: Any) -> str | None:
    """The first private name of paho used here that ``module`` (``paho.mqtt.client``) lacks;
    binds the ones :func:`parse_publish` needs when all are there."""
    global _Message, _NO_INFO, _NO_PROPERTIES, _MS_INVALID, _LAST_RECEIVED
    for name in _MODULE_NAMES:
        if not hasattr(module, name):
            return f"paho.mqtt.client has no {name}"
    client_class = module.Client
    for name in _CLIENT_METHODS:
        if not callable(getattr(client_class, name, None)):
            return f"paho's Client has no method {name}"
    for name in _OWN_NAMES:
        if hasattr(client_class, name):
            return f"paho's Client has its own {name}, a name the fast path adds"
    slots = frozenset(getattr(module.MQTTMessage, "__slots__", ()))
    if slots != _MESSAGE_SLOTS:
        return (f"paho's MQTTMessage slots changed: {sorted(slots)} instead of "
                f"{sorted(_MESSAGE_SLOTS)}")
    client = client_class(CallbackAPIVersion.VERSION2)
    for name in _CLIENT_ATTRIBUTES:
        if not hasattr(client, name):
            return f"paho's Client has no attribute {name}"
    for name in _OWN_NAMES:
        if hasattr(client, name):
            return f"paho's Client has its own {name}, a name the fast path adds"
    last_received = next((n for n in _LAST_RECEIVED_NAMES if hasattr(client, n)), None)
    if last_received is None:
        return f"paho's Client has none of {', '.join(_LAST_RECEIVED_NAMES)}"
    if not isinstance(client._in_packet, dict) or "command" not in client._in_packet:
        return "paho's Client._in_packet is not a dict with a 'command'"
    if not isinstance(client._out_packet, deque):
        return "paho's Client._out_packet is not a deque"
    children = getattr(getattr(client._on_message_filtered, "_root", None), "_children", None)
    if not isinstance(children, dict) or children:
        return "paho's Client._on_message_filtered has no empty _root._children"
    client.message_callback_add("floorstream/check", lambda *_: None)
    filtered = bool(client._on_message_filtered._root._children)
    client.message_callback_remove("floorstream/check")
    if not filtered:
        return "a message_callback_add filter does not show in _on_message_filtered._root"
    _Message = module.MQTTMessage
    _NO_INFO = module.MQTTMessageInfo(0)
    _NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    _MS_INVALID = module.mqtt_ms_invalid
    _LAST_RECEIVED = last_received
    return None


def _publish_packet(topic: bytes, payload: bytes, qos: int, mid: int, v5: bool,
                    retain: bool = False) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += b"\x00"
    body += payload
    return bytes([0x30 | qos << 1 | (0x01 if retain else 0), len(body)]) + body


def _self_test(protocol: MQTTProtocolVersion) -> str | None:
    """Read packets through the fast path over a socket pair, one per wake-up, and write two
    coalesced PUBACKs; None when everything came out as paho's own reader and writer have it."""
    v5 = protocol == mqtt.MQTTv5
    packets = [
        _publish_packet(b"fs/a", b"first", 0, 0, v5),  # the fast path fills the empty buffer
        _publish_packet(b"fs/b", b"second", 0, 0, v5),  # buffered: the fast path
        _publish_packet(b"fs/c", b"third", 1, 7, v5),
        bytes([0xD0, 0x00]),  # a PINGRESP: paho reads it from the buffer
        _publish_packet(b"fs/d", b"fourth", 1, 8, v5, retain=True),
    ]
    stream = b"".join(packets)
    expected = [message_fields(m) for m in read_with_paho(stream, protocol)]
    if len(expected) != 4:
        return f"paho's own reader made {len(expected)} messages of the self-test's 4"
    received: list[mqtt.MQTTMessage] = []
    client = FastPathMixin(CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True)
    client.on_message = lambda _client, _userdata, message: received.append(message)
    client.packets_per_wakeup = 1
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        theirs.sendall(stream)
        client._sock = BufferedSocket(ours)
        before = time.monotonic() - 1.0
        setattr(client, _LAST_RECEIVED, before)
        for _ in packets:  # one packet per wake-up: from the second on, only pending() tells
            client._loop(0.0)
        if len(received) != 4:
            return (f"the fast path delivered {len(received)} of 4 self-test messages "
                    "(paho's loop does not read what the socket wrapper has pending?)")
        if [message_fields(m) for m in received] != expected:
            return "the fast path's messages differ from paho's own"
        if [m.topic for m in received] != ["fs/a", "fs/b", "fs/c", "fs/d"]:
            return "the fast path's messages have the wrong topics"
        if sum(m.info is _NO_INFO for m in received) != 4:
            return "the fast path did not parse the buffered PUBLISH packets"
        if not getattr(client, _LAST_RECEIVED) > before:
            return f"paho's Client.{_LAST_RECEIVED} is not where keepalive looks"
        client.queue_ack(0, 7)
        client.queue_ack(0, 8)
        client._loop(0.0)
        acks = b""
        with suppress(BlockingIOError):
            theirs.setblocking(False)
            acks = theirs.recv(64)
        if acks != b"\x40\x02\x00\x07\x40\x02\x00\x08":
            return f"paho's writer sent {acks!r} for two coalesced PUBACKs"
        return None
    finally:
        client._sock = None
        ours.close()
        theirs.close()


def check() -> str | None:
    """None when the installed paho has everything the fast path uses, else why not."""
    try:
        return (_check_version(PAHO_VERSION) or _check_names(mqtt)
                or _self_test(mqtt.MQTTv311) or _self_test(mqtt.MQTTv5))
    except Exception as exc:  # anything unexpected in paho's internals: stock paho it is
        return f"the fast path's self-test failed: {exc!r}"


#: why the fast path cannot be used with the installed paho, or None
FAST_PATH_PROBLEM: str | None = check()
#: the installed paho passed the capability check
FAST_PATH_AVAILABLE: bool = FAST_PATH_PROBLEM is None
