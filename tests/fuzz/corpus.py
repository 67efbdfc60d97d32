"""A seeded, deterministic corpus of malformed (and some well-formed) inputs for a running daemon.

Every input is derived from the real samples in ``tests/samples`` (X12 214/315/856, EDIFACT
IFTSTA, DCSA Track & Trace events) and the supplier CSV / DESADV of ``tests/supply/data``, or
from the telemetry shapes the MQTT adapter reads (JSON objects, bare values, Sparkplug B). Each
input says what must become of it:

- ``invalid``: broken by construction (deep nesting, invalid UTF-8, an escaped lone surrogate,
  a NUL, a huge integer, an out-of-range time, a truncated interchange, binary garbage, an empty
  or oversized file, a missing position field…): it must be quarantined;
- ``valid``: well-formed, carrying a unique ``token`` that its post shows (subject or fields):
  it must be posted — including inputs that used to crash (a DCSA ``"transportCall": 5``, a
  year-1 date, an emoji written as a surrogate pair);
- ``either``: random byte mutations of a valid input; whatever it turns into, it must be
  handled (quarantined or accepted), never crash or stall its source.

``generate(seed, count)`` returns the same list for the same arguments on every machine: one
:class:`random.Random` drives everything, in a fixed order.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floorstream.adapters.mqtt.sparkplug_b import encode_payload

__all__ = ["CHANNELS", "FuzzInput", "Limits", "generate"]

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
SUPPLY_DATA = HERE.parent / "supply" / "data"

#: channel → share of the corpus
CHANNELS = {"json": 0.30, "value": 0.10, "sparkplug": 0.20, "folder": 0.40}
T0_MS = 1_764_057_600_000  # 2025-11-25, payload times of the telemetry


@dataclass(frozen=True)
class Limits:
    """The size limits the harness configures; oversized inputs are built just above them."""

    mqtt_payload: int = 65_536
    folder_bytes: int = 1_048_576


@dataclass(frozen=True)
class FuzzInput:
    id: str  # unique: the MQTT topic's last level, the file name
    channel: str  # json | value | sparkplug | folder
    kind: str  # the family, e.g. "json-deep", "x12-truncated", "mutated"
    expect: str  # invalid | valid | either
    payload: bytes
    #: MQTT: the topic below the channel's prefix (usually the id); Sparkplug: below
    #: ``spBv1.0/<group>/``
    topic: str = ""
    #: valid inputs: text a post of this input shows in its subject or fields
    token: str | None = None


Maker = Callable[[random.Random, str], tuple[bytes, str, str | None]]  # payload, topic, token


# -- MQTT JSON ---------------------------------------------------------------------------------

def _reading(n: int, *, temp: object = 99.0, extra: dict[str, object] | None = None,
             ts: object = None, seq: bool = True) -> dict[str, object]:
    data: dict[str, object] = {"ts": T0_MS + n if ts is None else ts, "state": "RUNNING",
                               "temp": temp, "line": "L1", "meta": {"fw": "2.1", "slot": n % 7}}
    if seq:
        data["seq"] = n
    data.update(extra or {})
    return data


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _json_valid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    n = int(ident[2:])
    extra: dict[str, object] = rng.choice([
        {}, {"note": "☕ café"}, {"big": 9_223_372_036_854_775_807},
        {"neg": -9_223_372_036_854_775_808}, {"list": [1, [2, [3]]]}])
    return _dumps(_reading(n, extra=extra)), ident, ident


def _json_valid_escaped(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """Well-formed, but through json's path (orjson refuses NaN) or with a surrogate *pair*."""
    n = int(ident[2:])
    body = _dumps(_reading(n))[:-1]
    tail = rng.choice([b',"note":"\\ud83d\\ude00"}', b',"aux":NaN}', b',"aux":-Infinity}',
                       b',"aux":123456789012345678}'])
    return body + tail, ident, ident


def _json_deep(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    depth = rng.choice([65, 100, 300, 1_100, 5_000, 30_000])
    if rng.random() < 0.5:
        return b'{"seq":1,"temp":99,"x":' + b"[" * depth + b"]" * depth + b"}", ident, None
    return b'{"a":' * depth + b"1" + b"}" * depth, ident, None


def _insert_in_string(payload: bytes, rng: random.Random, insert: bytes) -> bytes:
    """``insert`` inside the value of "state" or "line" (a string the adapter keeps)."""
    key = rng.choice([b'"state":"', b'"line":"'])
    at = payload.index(key) + len(key)
    return payload[:at] + insert + payload[at:]


def _json_surrogate(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    raw = _dumps(_reading(int(ident[2:])))
    insert = rng.choice([b"\\ud800", b"\\udfff", b"\\ud83d", b"\\ude00x", b"\xed\xa0\x80"])
    if rng.random() < 0.2:  # as a key
        return raw[:-1] + b',"' + insert + b'":1}', ident, None
    return _insert_in_string(raw, rng, insert), ident, None


def _json_bad_utf8(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    raw = _dumps(_reading(int(ident[2:])))
    insert = rng.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\xe2\x82", b"\x80\x80", b"\xf8\x88"])
    return _insert_in_string(raw, rng, insert), ident, None


def _json_nul(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    raw = _dumps(_reading(int(ident[2:])))
    return _insert_in_string(raw, rng, b"\\u0000"), ident, None


def _big_number(rng: random.Random, digits: int) -> str:
    # (20 digits from 2e19 up: beyond 2**64 - 1 as well as below -2**63)
    return str(rng.randint(2, 9)) + "".join(rng.choice("0123456789") for _ in range(digits - 1))


def _json_huge_int(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """Beyond a float's range (309+ digits) or Python's conversion limit (4300): refused."""
    return _json_int(rng, ident, rng.choice([309, 400, 4_301, 6_000]))


def _json_long_int(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """Beyond 64 bits but within a float: read as a float (what orjson does anyway)."""
    payload, topic, _token = _json_int(rng, ident, rng.choice([20, 25, 40, 308]))
    if rng.random() < 0.3:  # through json's path, where it is a Python int first
        payload = payload[:-1] + b',"aux":NaN}'
    return payload, topic, None


def _json_int(rng: random.Random, ident: str, digits: int) -> tuple[bytes, str, str | None]:
    number = _big_number(rng, digits)
    sign = rng.choice(["", "-"])
    field = rng.choice(["temp", "state", "seq", "extra"])
    data = _reading(int(ident[2:]))
    raw = _dumps(data)
    marker = f'"{field}":'.encode()
    if marker not in raw:
        raw = raw[:-1] + b',"extra":0}'
    at = raw.index(marker) + len(marker)
    end = at
    while raw[end:end + 1] not in (b",", b"}"):
        end += 1
    return raw[:at] + (sign + number).encode() + raw[end:], ident, None


def _json_bad_time(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    ts = rng.choice([1e300, -1e300, 10 ** 18, -(10 ** 15), "0001-01-01T00:00:00+14:00",
                     "9999-12-31T23:59:59-14:00", "99999-01-01T00:00:00", "1850-01-01T00:00:00",
                     "3001-01-01T00:00:00Z", "yesterday", True, [2025], {"ms": 1}])
    raw = _dumps(_reading(int(ident[2:]), ts=ts))
    if rng.random() < 0.3:  # NaN / Infinity as the time (json's path)
        raw = raw.replace(b'"ts":' + _dumps(ts), b'"ts":' + rng.choice([b"NaN", b"Infinity"]))
    return raw, ident, None


def _json_no_position(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    data = _reading(int(ident[2:]), seq=False)
    if rng.random() < 0.3:
        data["seq"] = rng.choice([None, "", {"n": 1}, [1, 2]])
    return _dumps(data), ident, None


def _json_truncated(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    raw = _dumps(_reading(int(ident[2:])))
    return raw[:rng.randrange(0, len(raw) - 1)], ident, None


def _json_not_object(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    raw = rng.choice([b"[1,2,3]", b"71.3", b'"RUNNING"', b"null", b"true",
                      b"[" + _dumps(_reading(int(ident[2:]))) + b"]"])
    return raw, ident, None


def _json_wrong_type(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    temp = rng.choice(["hot", True, None, [99], {"c": 99}])
    if temp is None:  # a null temperature is no reading: make it a string instead
        temp = "99"
    return _dumps(_reading(int(ident[2:]), temp=temp)), ident, None


def _json_long_subject(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    length = rng.choice([256, 300, 1_000, 5_000])
    topic = ident + "-" + "x" * (length - len(ident) - 1)
    return _dumps(_reading(int(ident[2:]))), topic, None


def _garbage(rng: random.Random, size: int) -> bytes:
    """Random bytes that are never UTF-8 text (they start with a byte UTF-8 never uses)."""
    return b"\xff" + rng.randbytes(size)


def _json_garbage(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return _garbage(rng, rng.randrange(0, 2_000)), ident, None


def _json_empty(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return rng.choice([b"", b" ", b"\n\t "]), ident, None


def _oversized(limit: int) -> Maker:
    def make(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
        raw = _dumps(_reading(int(ident[2:]), extra={"pad": "p" * limit}))
        return raw[:limit + 1 + rng.randrange(0, 100)], ident, None
    return make


def mutate(payload: bytes, rng: random.Random) -> bytes:
    """One to three random edits: flip, insert (bytes, invalid UTF-8, NUL), delete, repeat,
    truncate."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        at = rng.randrange(0, len(data) + 1)
        if op == 0 and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at:at] = rng.choice([b"\x00", b"\xff", b"\xc3\x28", b"\\ud800", b"{", b"[",
                                      b"\"", b"9" * 30, b"'", b"~", b"*", b"+", b";", b"\n"])
        elif op == 2 and data:
            del data[at:at + rng.randint(1, 16)]
        elif op == 3 and data:
            span = data[at:at + rng.randint(1, 64)]
            data[at:at] = span * rng.randint(1, 4)
        elif op == 4:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            del data[max(1, at):]
    return bytes(data)


def _json_mutated(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return mutate(_dumps(_reading(int(ident[2:]))), rng), ident, None


# -- MQTT bare values --------------------------------------------------------------------------

def _value_valid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return rng.choice([b"99.5", b" 99 ", b"1e2", b"+72.25\n", b"51"]), ident, ident


def _value_invalid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    digits = rng.choice([309, 4_301, 5_000])
    raw = rng.choice([
        b"", b"   ", b"99\x00", b"\x00", b"\xff\xfe99", b"9\xc3", b"nan", b"inf", b"-Infinity",
        b"hot", b"true", b"RUNNING", b"1e999",
        b"9" * digits, b"-" + b"8" * digits,
    ])
    return raw, ident, None


def _value_long_int(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """Beyond 64 bits, within a float: read as a float (posted when above the limit)."""
    return rng.choice(["", "-"]).encode() + _big_number(rng, rng.choice([20, 30, 300])).encode(), \
        ident, None


def _value_mutated(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return mutate(b"99.5", rng), ident, None


# -- MQTT Sparkplug B --------------------------------------------------------------------------

def _spb_metrics(temp: object = 99.0) -> list[dict[str, object]]:
    return [{"name": "temp", "datatype": "Double", "value": temp},
            {"name": "State", "datatype": "String", "value": "RUNNING"},
            {"name": "count", "datatype": "Int64", "value": -5}]


def _spb_topic(rng: random.Random, ident: str, node: str | None = None) -> str:
    return f"DDATA/{node or 'n' + str(rng.randrange(5))}/{ident}"


def _spb_payload(ident: str, **kw: object) -> bytes:
    n = int(ident[2:])
    metrics = kw.pop("metrics", None) or _spb_metrics()
    return encode_payload(metrics, timestamp=kw.pop("timestamp", T0_MS + n),  # type: ignore[arg-type]
                          seq=n % 256)


def _first_metric(payload: bytes) -> int:
    """Offset of the first metric's tag (0x12) after the timestamp (field 1, a varint)."""
    assert payload[0] == 0x08
    at = 1
    while payload[at] & 0x80:
        at += 1
    assert payload[at + 1] == 0x12
    return at + 1


def _spb_valid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return _spb_payload(ident), _spb_topic(rng, ident), ident


def _spb_invalid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    topic = _spb_topic(rng, ident)
    good = _spb_payload(ident)
    choice = rng.randrange(8)
    if choice == 0:  # a varint longer than ten bytes
        return b"\x08" + b"\xff" * 11 + b"\x01", topic, None
    if choice == 1:  # cut inside the first metric (a length-delimited field)
        start = _first_metric(good)
        return good[:start + 2 + rng.randrange(1, good[start + 1] - 1)], topic, None
    if choice == 2:  # a metric name that is not UTF-8 (same length: the framing holds)
        return good.replace(b"State", b"St\xffte"), topic, None
    if choice == 3:  # a string holding NUL (same length)
        return good.replace(b"RUNNING", b"RUNN\x00NG"), topic, None
    if choice == 4:  # a payload time far beyond any calendar
        return _spb_payload(ident, timestamp=rng.choice([2 ** 63, 2 ** 64 - 1, 10 ** 17])), \
            topic, None
    if choice == 5:  # an alias no birth defined (this node was never born)
        metrics = [{"alias": 4242, "datatype": "Double", "value": 1.0}]
        return _spb_payload(ident, metrics=metrics), f"DDATA/unborn-{ident}/{ident}", None
    if choice == 6:  # declared Int32, carries a string
        metrics = [{"name": "temp", "datatype": "Int32", "value": "hot",
                    "field": "string_value"}]
        return _spb_payload(ident, metrics=metrics), topic, None
    return good, f"DDATA/{ident}", None  # device data without a device in the topic


def _spb_garbage(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    # field 1 as a length-delimited field longer than the payload: never parses
    return b"\x0a\xff\xff\x03" + rng.randbytes(rng.randrange(0, 500)), _spb_topic(rng, ident), None


def _spb_oversized(limit: int) -> Maker:
    def make(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
        metrics = [{"name": "blob", "datatype": "String", "value": "b" * limit}]
        return _spb_payload(ident, metrics=metrics), _spb_topic(rng, ident), None
    return make


def _spb_mutated(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    return mutate(_spb_payload(ident), rng), _spb_topic(rng, ident), None


# -- supply files ------------------------------------------------------------------------------

def _read(path: Path) -> bytes:
    return path.read_bytes()


def _unique(raw: bytes, token: str, number: int, names: dict[bytes, str],
            controls: tuple[bytes, ...] = ()) -> bytes:
    """The sample with every identifier a story could join on made this input's own (a
    shipment already told posts nothing new) and its control numbers unique."""
    for old, suffix in names.items():
        raw = raw.replace(old, (token + suffix).encode())
    for old in controls:
        raw = raw.replace(old, f"{number % 10 ** len(old):0{len(old)}d}".encode())
    return raw


def _x12_214(token: str, number: int) -> bytes:
    raw = _read(SAMPLES / "x12" / "004010_214_staedi_ellipsis_terminator.edi")
    return _unique(raw, token, number, {b"0542550913": "", b"7727019": "S", b"902577": "E"},
                   (b"000075776", b"757760001"))


def _x12_315(token: str, number: int) -> bytes:
    raw = _read(SAMPLES / "x12" / "004010_315_apimeister.edi")
    return _unique(raw, token, number, {b"GMCU6094137": "", b"21001ASK5V9U": "B",
                                        b"1NAN910141": "N"}, (b"000000001",))


def _x12_856(token: str, number: int) -> bytes:
    raw = _read(SAMPLES / "x12" / "004060_856_apimeister.edi")
    return _unique(raw, token, number, {b"829716": "", b"999999-001": "-BOL",
                                        b"5787970539": "CN"}, (b"000003438",))


def _iftsta(token: str, number: int) -> bytes:
    raw = _read(SAMPLES / "edifact" / "d00b_iftsta_apimeister.edi")
    return _unique(raw, token, number, {
        b"ABCD224O4023815X": "", b"24O4023815": "N", b"TRHU4307252": "E1",
        b"TRHU4561222": "E2", b"100113938": "F", b"2023521591": "C", b"31075687": "R",
        b"2BOG129382": "G"}, (b"2803570",))


def _desadv(token: str, number: int) -> bytes:
    raw = _read(SUPPLY_DATA / "desadv_d96a_two_messages.edi")
    return _unique(raw, token, number, {b"0001234": "", b"0001235": "B"}).replace(
        b"DES0001", f"D{number}".encode())


def _csv(token: str, number: int) -> bytes:
    raw = _read(SUPPLY_DATA / "asn_acme_20261106.csv")
    return raw.replace(b"1Z999AA10123456784", token.encode())


def _dcsa_event(token: str, **payload: Any) -> dict[str, Any]:
    return {
        "metadata": {"eventID": f"ev-{token}", "eventType": "TRANSPORT",
                     "publisher": {"partyName": "Maersk", "carrierCode": "MAEU"}},
        "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                    "eventDateTime": "2026-11-10T08:00:00Z",
                    "relatedDocumentReferences": [{"type": "BKG", "value": token}],
                    "transportCall": {"location": {"locationName": "Hamburg"}},
                    **payload}}


def _dcsa(token: str, number: int) -> bytes:
    return json.dumps({"events": [_dcsa_event(token)]}, indent=1).encode()


def _generic(token: str, number: int) -> bytes:
    return json.dumps([{"tracking_number": token, "status": "delivered", "id": f"g-{token}",
                        "carrier": "DHL", "occurred_at": "2026-11-20T10:00:00+01:00"}]).encode()


#: a valid document per format, with the token where its post shows it
FILE_TEMPLATES: dict[str, Callable[[str, int], bytes]] = {
    "x12-214": _x12_214, "x12-315": _x12_315, "x12-856": _x12_856, "iftsta": _iftsta,
    "desadv": _desadv, "csv": _csv, "dcsa": _dcsa, "generic": _generic}


def _file_valid(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    token = f"FZ{ident[2:]}"
    name = rng.choice(sorted(FILE_TEMPLATES))
    return FILE_TEMPLATES[name](token, int(ident[2:])), ident, token


def _file_valid_odd(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """Well-formed documents with the oddities that used to crash a parser: posted (a date
    that cannot be trusted costs the post its date, a field of the wrong type its value)."""
    token = f"FZ{ident[2:]}"
    choice = rng.randrange(6)
    if choice == 0:
        event = _dcsa_event(token, transportCall=5, eventDateTime="0001-01-01T00:00:00+14:00")
    elif choice == 1:
        event = _dcsa_event(token, relatedDocumentReferences=[{"type": "BKG", "value": token},
                                                              "junk", 7],
                            references={"type": "EQ"}, delayReasonCode={"x": 1},
                            eventDateTime="9999-12-31T23:59:59-14:00")
        event["metadata"]["publisher"] = "Maersk"
    elif choice == 2:
        event = _dcsa_event(token, changeRemark="arrivée ☕ \ud83d\ude00",
                            transportEventTypeCode=["DEPA"])
    elif choice == 3:
        return json.dumps([{"tracking_number": token, "status": ["in", "transit"],
                            "carrier": {"name": "DHL"}, "occurred_at": "99999-01-01",
                            "eta": 12}]).encode(), ident, token
    elif choice == 4:  # an X12 date at the end of the calendar, in a US zone
        raw = _x12_214(token, int(ident[2:])).replace(b"20200911*1159*ET", b"99991231*2359*PT")
        return raw, ident, token
    else:
        event = _dcsa_event(token)
        return (b"\xef\xbb\xbf" + json.dumps({"events": [event]}).encode()), ident, token
    return json.dumps({"events": [event]}).encode(), ident, token


def _file_json_broken(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    token = f"FZ{ident[2:]}"
    good = _dcsa(token, int(ident[2:]))
    value_at = good.index(b'"Hamburg') + 1
    choice = rng.randrange(8)
    if choice == 0:
        depth = rng.choice([101, 1_000, 5_000])
        return b'{"x":' * depth + good + b"}" * depth, ident, None
    if choice == 1:
        insert = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"])
    elif choice == 2:
        insert = rng.choice([b"\\ud800", b"\\udfff", b"\\udc00\\ud800"])
    elif choice == 3:
        insert = b"\\u0000"
    elif choice == 4:
        end = good.rstrip().rfind(b"}")
        return good[:rng.randrange(1, end)], ident, None
    elif choice == 5:
        number = "7" * rng.choice([4_301, 5_000, 10_000])
        return good.replace(b'"Hamburg"', number.encode()), ident, None
    elif choice == 6:
        return rng.choice([b"[]", b"{}", b'{"foo": [1, 2, {"bar": null}]}',
                           b'[{"status": "x"}]']), ident, None
    else:
        long_ref = token + "-" + "L" * rng.choice([300, 2_000])
        return _generic(long_ref, 0), ident, None
    return good[:value_at] + insert + good[value_at:], ident, None


def _file_deep(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    """The issue's file: JSON nested 200,000 deep (RecursionError in the parser)."""
    depth = 200_000
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    middle = b"" if opener == b"[" else b"1"
    return opener * depth + middle + closer * depth, ident, None


def _file_edi_broken(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    token = f"FZ{ident[2:]}"
    number = int(ident[2:])
    choice = rng.randrange(9)
    if choice <= 1:  # X12 cut inside a transaction set
        raw = rng.choice([_x12_214, _x12_315, _x12_856])(token, number)
        text = raw.decode("utf-8")
        starts = [m.start(1) for m in re.finditer(r"(?:^|[~\n…])(ST|SE)\*", text)]
        start, end = starts[0], starts[-1]  # ST of the set, its SE
        return text[:rng.randrange(start + 1, end)].encode(), ident, None
    if choice == 2:  # NUL inside a segment
        raw = _x12_856(token, number)
        at = raw.index(b"BSN*") + 4
        return raw[:at] + b"\x00" + raw[at:], ident, None
    if choice == 3:  # ISA declaring a letter as the segment terminator
        raw = _x12_315(token, number)
        at = raw.index(b"*P*>") + 4
        return raw[:at] + b"A" + raw[at + 1:], ident, None
    if choice == 4:  # an 856 whose quantity is not a number
        return _x12_856(token, number).replace(b"SN1*1*24*EA", b"SN1*1*2X4*EA"), ident, None
    if choice == 5:  # EDIFACT cut inside its first message
        raw = rng.choice([_iftsta, _desadv])(token, number)
        start = raw.index(b"UNH")
        end = raw.index(b"UNT")
        return raw[:rng.randrange(start + 1, end)], ident, None
    if choice == 6:  # IFTSTA without a consignment
        raw = _iftsta(token, number)
        cni = raw.index(b"CNI+")
        return raw[:cni] + raw[raw.index(b"UNT+"):], ident, None
    if choice == 7:  # DESADV quantity that is not a number
        return _desadv(token, number).replace(b"QTY+12:120:PCE", b"QTY+12:1x0:PCE"), ident, None
    raw = _iftsta(token, number)  # NUL in EDIFACT
    at = raw.index(b"BGM+") + 4
    return raw[:at] + b"\x00" + raw[at:], ident, None


def _file_csv_broken(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    token = f"FZ{ident[2:]}"
    raw = _csv(token, int(ident[2:]))
    lines = raw.split(b"\n")
    choice = rng.randrange(5)
    if choice == 0:  # a row cut short
        lines[1] = b";".join(lines[1].split(b";")[:3])
    elif choice == 1:
        lines[2] = lines[2].replace(b"60,0", b"sixty")
    elif choice == 2:
        lines[0] = lines[0].replace(b"PO Number", b"Order")
    elif choice == 3:
        lines = lines[:1]
    else:
        lines[1] = lines[1] + b"\x00"
    return b"\n".join(lines), ident, None


def _file_garbage(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    choice = rng.randrange(4)
    if choice == 0:
        return b"", ident, None
    if choice == 1:
        return rng.choice([b" ", b"\r\n\r\n", b"\xef\xbb\xbf", b"\t \n"]), ident, None
    return b"\x00" + rng.randbytes(rng.randrange(0, 4_000)), ident, None


def _file_oversized(limit: int) -> Maker:
    def make(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
        raw = _x12_856(f"FZ{ident[2:]}", int(ident[2:]))
        size = limit + 1 + rng.randrange(0, 1_000)
        return (raw * (size // len(raw) + 1))[:size], ident, None
    return make


def _file_mutated(rng: random.Random, ident: str) -> tuple[bytes, str, str | None]:
    name = rng.choice(sorted(FILE_TEMPLATES))
    return mutate(FILE_TEMPLATES[name](f"FZ{ident[2:]}", int(ident[2:])), rng), ident, None


# -- the schedule ------------------------------------------------------------------------------

def _kinds(limits: Limits) -> dict[str, list[tuple[str, str, int, Maker]]]:
    """channel → (kind, expect, weight, maker)."""
    return {
        "json": [
            ("json-valid", "valid", 6, _json_valid),
            ("json-valid-escaped", "valid", 2, _json_valid_escaped),
            ("json-deep", "invalid", 2, _json_deep),
            ("json-surrogate", "invalid", 2, _json_surrogate),
            ("json-bad-utf8", "invalid", 2, _json_bad_utf8),
            ("json-nul", "invalid", 1, _json_nul),
            ("json-huge-int", "invalid", 2, _json_huge_int),
            ("json-long-int", "either", 1, _json_long_int),
            ("json-bad-time", "invalid", 2, _json_bad_time),
            ("json-no-position", "invalid", 2, _json_no_position),
            ("json-truncated", "invalid", 2, _json_truncated),
            ("json-not-object", "invalid", 1, _json_not_object),
            ("json-wrong-type", "invalid", 1, _json_wrong_type),
            ("json-long-subject", "invalid", 1, _json_long_subject),
            ("json-garbage", "invalid", 1, _json_garbage),
            ("json-empty", "invalid", 1, _json_empty),
            ("json-oversized", "invalid", 1, _oversized(limits.mqtt_payload)),
            ("json-mutated", "either", 8, _json_mutated),
        ],
        "value": [
            ("value-valid", "valid", 3, _value_valid),
            ("value-invalid", "invalid", 4, _value_invalid),
            ("value-long-int", "either", 1, _value_long_int),
            ("value-oversized", "invalid", 1, _oversized(limits.mqtt_payload)),
            ("value-mutated", "either", 3, _value_mutated),
        ],
        "sparkplug": [
            ("spb-valid", "valid", 4, _spb_valid),
            ("spb-invalid", "invalid", 6, _spb_invalid),
            ("spb-garbage", "invalid", 1, _spb_garbage),
            ("spb-oversized", "invalid", 1, _spb_oversized(limits.mqtt_payload)),
            ("spb-mutated", "either", 5, _spb_mutated),
        ],
        "folder": [
            ("file-valid", "valid", 6, _file_valid),
            ("file-valid-odd", "valid", 2, _file_valid_odd),
            ("file-json-deep-200k", "invalid", 1, _file_deep),
            ("file-json-broken", "invalid", 6, _file_json_broken),
            ("file-edi-broken", "invalid", 6, _file_edi_broken),
            ("file-csv-broken", "invalid", 2, _file_csv_broken),
            ("file-garbage", "invalid", 2, _file_garbage),
            ("file-oversized", "invalid", 1, _file_oversized(limits.folder_bytes)),
            ("file-mutated", "either", 8, _file_mutated),
        ],
    }


_PREFIX = {"json": "js", "value": "va", "sparkplug": "sp", "folder": "fi"}


def generate(seed: int, count: int, limits: Limits = Limits(),
             *, max_deep_files: int = 4, max_oversized: int = 8) -> list[FuzzInput]:
    """``count`` inputs (at least one of every kind when ``count`` allows), the same for the
    same arguments. The 200,000-deep and oversized files are capped (they are big and say
    nothing new after a few)."""
    rng = random.Random(seed)
    inputs: list[FuzzInput] = []
    for channel, kinds in _kinds(limits).items():
        share = max(len(kinds), round(count * CHANNELS[channel]))
        schedule = [k for k in kinds for _ in range(k[2])]
        rng.shuffle(schedule)
        # every kind first, in a seeded order, then the weighted schedule
        order = list(kinds)
        rng.shuffle(order)
        made: dict[str, int] = {}
        for i in range(share):
            kind, expect, _weight, maker = order[i] if i < len(order) else \
                schedule[(i - len(order)) % len(schedule)]
            big = kind == "file-json-deep-200k" or kind.endswith("oversized")
            cap = max_deep_files if kind == "file-json-deep-200k" else max_oversized
            if big and made.get(kind, 0) >= cap:
                kind, expect, _weight, maker = kinds[-1]  # a mutation instead
            made[kind] = made.get(kind, 0) + 1
            ident = f"{_PREFIX[channel]}{len(inputs):06d}"
            payload, topic, token = maker(rng, ident)
            inputs.append(FuzzInput(ident, channel, kind, expect, payload, topic, token))
    return inputs
