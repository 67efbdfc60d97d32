"""PUBLISH packets parsed straight out of the read buffer, for QoS 0 and 1.

paho's reader handles a packet with a fresh state dict, three or four ``recv`` calls, struct
format strings built per message, a debug log call, a ``threading.Condition`` per message (the
``MQTTMessageInfo`` only publishers use) and, at MQTT 5, a ``Properties`` object even when the
packet has none. That is most of the ~20 µs per message a bare paho subscriber spends, paid on
the thread that also runs floorstream's handler, and holding the GIL the pipeline needs.

:func:`parse_publish` reads one complete QoS 0/1 PUBLISH from a buffer and builds the same
``MQTTMessage`` paho would hand to ``on_message``. Anything else (another packet type, QoS 2, a
packet not complete in the buffer, anything malformed) returns None and is left to paho's own
reader, which then reads it from the same buffer: paho stays the reference for every case this
does not need to be fast for.
"""

from __future__ import annotations

import time

from paho.mqtt.client import MQTTMessage, MQTTMessageInfo, mqtt_ms_invalid
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["parse_publish"]

#: handed to every message: no one waits on a received message's publish status
_NO_INFO = MQTTMessageInfo(0)
#: the properties of a v5 message that has none (read-only by convention, like paho's own)
_NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
_new = MQTTMessage.__new__
_now = time.monotonic


def parse_publish(data: bytes, pos: int, v5: bool) -> tuple[int, MQTTMessage] | None:
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
    message: MQTTMessage = _new(MQTTMessage)
    message.timestamp = _now()
    message.state = mqtt_ms_invalid
    message.dup = bool(header & 0x08)
    message.mid = mid
    message._topic = data[index + 2:topic_end]
    message.payload = data[cursor:end]
    message.qos = qos
    message.retain = bool(header & 0x01)
    message.info = _NO_INFO
    message.properties = properties
    return end, message
