"""``sparkplug`` decoder: Sparkplug B protobuf payloads → plain dicts.

The protobuf module ``sparkplug_b_pb2`` is generated from the official schema
(``sparkplug_b.proto``, eclipse/tahu, EPL-2.0, copied next to it with its licence) with
``python -m grpc_tools.protoc --python_out=. --pyi_out=. sparkplug_b.proto``; it needs the
``protobuf`` runtime of the same major/minor version (see pyproject). No Sparkplug library from
PyPI is used: the maintained ones pin paho-mqtt 1.x.

The decoder only turns bytes into values and checks each value against its declared datatype;
what the messages *mean* (births, aliases, bdSeq, seq) is session state and lives in the MQTT
adapter (:mod:`floorstream.adapters.mqtt.sparkplug`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from google.protobuf.message import DecodeError as ProtobufDecodeError

from floorstream.adapters.mqtt.engunits import LABEL_PREFIX
from floorstream.adapters.mqtt.sparkplug_b import sparkplug_b_pb2 as pb
from floorstream.plugin import DecodeError, Decoder, Registry, hookimpl

__all__ = ["DATATYPES", "SparkplugDecoder", "compact_metrics", "complete", "encode_payload",
           "plain", "read_wanted"]

#: Sparkplug DataType code → name (spec 6.4.16)
DATATYPES: dict[int, str] = {v.number: v.name for v in pb.DataType.DESCRIPTOR.values}
_CODES = {name: code for code, name in DATATYPES.items()}

_INT32 = {1, 2, 3}  # Int8/16/32: two's complement in the uint32 int_value (as tahu writes them)
_UINT32 = {5, 6, 7}
_ALLOWED: dict[int, tuple[str, ...]] = {
    **dict.fromkeys((1, 2, 3, 5, 6, 7), ("int_value", "long_value")),
    **dict.fromkeys((4, 8, 13), ("long_value", "int_value")),
    9: ("float_value", "double_value"), 10: ("double_value", "float_value"),
    11: ("boolean_value",), 12: ("string_value",), 14: ("string_value",),
    15: ("string_value",), 16: ("dataset_value",), 17: ("bytes_value",),
    18: ("bytes_value",), 19: ("template_value",),
}


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _text(value: Any, what: str) -> Any:
    """A string field as text. protobuf hands back a proto2 string that is not UTF-8 as bytes;
    such a string, or one holding NUL (no database stores it in text), is refused."""
    if isinstance(value, bytes):
        raise DecodeError(f"{what} is not UTF-8: {value[:40]!r}")
    if isinstance(value, str) and "\x00" in value:
        raise DecodeError(f"{what} holds a NUL character: {value[:40]!r}")
    return value


def _dataset(ds: pb.Payload.DataSet) -> dict[str, Any]:
    rows = []
    for row in ds.rows:
        cells = []
        for cell in row.elements:
            which = cell.WhichOneof("value")
            value = getattr(cell, which) if which else None
            cells.append(_text(value, "a data set string") if which == "string_value"
                         else value)
        rows.append(cells)
    return {"columns": [_text(c, "a data set column") for c in ds.columns], "rows": rows}


def metric_value(metric: pb.Payload.Metric) -> Any:
    """The metric's value as Python; raises DecodeError when it contradicts its datatype."""
    if metric.is_null:
        return None
    which = metric.WhichOneof("value")
    if which is None:
        return None
    code = metric.datatype
    allowed = _ALLOWED.get(code)
    if allowed is not None and which not in allowed:
        name = metric.name or f"alias {metric.alias}"
        raise DecodeError(f"metric {name!r} is declared {DATATYPES.get(code, code)} but "
                          f"carries {which}")
    if which == "float_value":
        return float(f"{metric.float_value:.7g}")  # float32: 12.1, not 12.100000381
    if which == "dataset_value":
        return _dataset(metric.dataset_value)
    if which == "template_value":
        return {_text(m.name, "a template member name"): metric_value(m)
                for m in metric.template_value.metrics}
    if which == "extension_value":
        return None
    value = getattr(metric, which)
    if which == "string_value":
        return _text(value, f"the string of metric {metric.name or metric.alias!r}")
    if code in _INT32:
        return _signed(value, 32 if which == "int_value" else 64)
    if code == 4:
        return _signed(value, 64)
    return value


def _value(metric: pb.Payload.Metric, code: int) -> Any:
    """The value with the common scalar types read directly (each protobuf attribute read
    costs); the rest, and every mismatch with the declared type, through metric_value."""
    which = metric.WhichOneof("value")
    if which is None or metric.is_null:
        return None
    if which == "double_value" and code == 10:
        return metric.double_value
    if which == "boolean_value" and code == 11:
        return metric.boolean_value
    if which == "float_value" and code == 9:
        return float(f"{metric.float_value:.7g}")
    if which == "long_value" and code == 4:
        return _signed(metric.long_value, 64)
    if which == "int_value" and code == 3:
        return _signed(metric.int_value, 32)
    if which == "string_value" and code == 12:
        value = metric.string_value
        if value.__class__ is not str or "\x00" in value:
            return _text(value, f"the string of metric {metric.name or metric.alias!r}")
        return value
    return metric_value(metric)


#: the metric property that carries the engineering unit (Ignition and Tahu write ``engUnit``)
UNIT_PROPERTY = "engUnit"


#: the metric property with what people call it (Ignition's and Tahu's ``displayName``)
LABEL_PROPERTY = "displayName"


def _unit(metric: pb.Payload.Metric) -> str | None:
    """The metric's ``engUnit`` property (births carry it), if it is a usable string."""
    return _text_property(metric, UNIT_PROPERTY, 32)


def _text_property(metric: pb.Payload.Metric, wanted: str, longest: int) -> str | None:
    props = metric.properties
    for index, key in enumerate(props.keys):
        if key == wanted and index < len(props.values):
            value = props.values[index]
            if value.WhichOneof("value") == "string_value":
                text = value.string_value
                if text.__class__ is str and "\x00" not in text and len(text) <= longest:
                    return text
    return None


def compact_metrics(message: pb.Payload, units: dict[str, str] | None = None
                    ) -> list[tuple[str | None, int | None, int | None, bool, Any]]:
    """``(name, alias, timestamp, is_historical, value)`` per metric, checked as
    :meth:`SparkplugDecoder.decode` checks them: what the MQTT adapter reads of every DATA
    message, without a dict per metric or the fields it does not use. An empty name or a zero
    timestamp counts as absent (neither means anything in Sparkplug)."""
    return _compact(message, units)[0]


def _compact(message: pb.Payload, units: dict[str, str] | None
             ) -> tuple[list[tuple[str | None, int | None, int | None, bool, Any]], bool]:
    """:func:`compact_metrics` and :func:`plain` in one pass.

    Each attribute read of protobuf's Python API costs about 0.1 us and a DATA message of 10
    metrics needs about 70 of them, so the loop reads each field once, and the value of the
    common scalar types (Double, Float, Int64, Int32, Boolean, String) inline rather than
    through a call per metric; the rest goes through :func:`_value`."""
    out: list[tuple[str | None, int | None, int | None, bool, Any]] = []
    append = out.append
    plain_ = True
    for metric in message.metrics:
        name: str | None = metric.name
        if not name:  # absent or empty ('' is valid UTF-8: never handed back as bytes)
            name = None
        else:
            plain_ = False
            if name.__class__ is not str or "\x00" in name:
                name = _text(name, "a metric name")
            if units is not None and metric.HasField("properties"):
                unit = _unit(metric)  # named metrics only: a birth, not the plain DATA
                if unit:
                    units[name] = unit
                label = _text_property(metric, LABEL_PROPERTY, 80)
                if label and label.strip():
                    units[LABEL_PREFIX + name] = label
        alias: int | None = metric.alias
        if not alias and not metric.HasField("alias"):
            alias = None
        historical = metric.is_historical
        if historical:
            plain_ = False
        code = metric.datatype
        which = metric.WhichOneof("value")
        if which is None or metric.is_null:
            value: Any = None
        elif which == "double_value" and code == 10:
            value = metric.double_value
        elif which == "float_value" and code == 9:
            value = float(f"{metric.float_value:.7g}")
        elif which == "long_value" and code == 4:
            value = metric.long_value
            if value >= _HALF64:
                value -= _FULL64
        elif which == "int_value" and code == 3:
            value = metric.int_value
            if value >= _HALF32:
                value -= _FULL32
        elif which == "boolean_value" and code == 11:
            value = metric.boolean_value
        elif which == "string_value" and code == 12:
            value = metric.string_value
            if value.__class__ is not str or "\x00" in value:
                value = _text(value, f"the string of metric {name or alias!r}")
        else:
            value = _value(metric, code)
        append((name, alias, metric.timestamp or None, historical, value))
    return out, plain_


_HALF32, _FULL32, _HALF64, _FULL64 = 1 << 31, 1 << 32, 1 << 63, 1 << 64


def plain(metrics: list[tuple[str | None, int | None, int | None, bool, Any]]) -> bool:
    """Whether every metric is alias-only and live (the common DATA message: the session
    names it with one dict comprehension)."""
    return all(metric[0] is None and not metric[3] for metric in metrics)


class SparkplugDecoder(Decoder):
    """A Sparkplug B ``Payload`` → ``{"timestamp", "seq", "uuid", "metrics": [...]}``; each
    metric ``{"name", "alias", "timestamp", "datatype", "value", "is_historical",
    "is_transient"}`` (absent name/alias/timestamp/seq are None)."""

    name: ClassVar[str] = "sparkplug"

    def decode(self, payload: bytes) -> dict[str, Any]:
        message = self.parse(payload)
        metrics: list[dict[str, Any]] = []
        append = metrics.append
        for metric in message.metrics:
            has = metric.HasField
            code = metric.datatype
            value = _value(metric, code)
            name = metric.name if has("name") else None
            if name is not None and (name.__class__ is not str or "\x00" in name):
                name = _text(name, "a metric name")
            append({
                "name": name,
                "alias": metric.alias if has("alias") else None,
                "timestamp": metric.timestamp if has("timestamp") else None,
                "datatype": DATATYPES.get(code, str(code)),
                "value": value,
                "is_historical": metric.is_historical,
                "is_transient": metric.is_transient,
            })
        return _header(message, metrics)

    def decode_compact(self, payload: bytes) -> dict[str, Any]:
        """As :meth:`decode`, with ``metrics`` as :func:`compact_metrics` tuples (what the
        MQTT adapter's Sparkplug session reads), ``plain`` (:func:`plain`) and, when a named
        metric has an ``engUnit`` property, ``units`` (name → unit; a ``displayName``
        property under :data:`LABEL_PREFIX` + name)."""
        message = self.parse(payload)
        units: dict[str, str] = {}
        metrics, plain_ = _compact(message, units)
        record = _header(message, metrics)
        record["plain"] = plain_
        if units:
            record["units"] = units
        return record

    def decode_lazy(self, payload: bytes) -> dict[str, Any]:
        """The header of :meth:`decode_compact` (``timestamp``, ``seq``, ``uuid``, checked
        alike) and the parsed payload as ``message``, its metrics not read yet: the MQTT
        adapter's Sparkplug session reads a plain DATA message's metrics of interest only
        (:func:`read_wanted`), and everything else through :func:`complete`. The protobuf
        parse itself happens here: a payload that is not protobuf is refused at once."""
        if len(payload) > self.max_bytes:
            return self.decode_compact(payload)  # refused there, with the reason
        message = pb.Payload()  # (parse, inline: per message)
        try:
            message.ParseFromString(payload)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"not a Sparkplug B payload: {exc}") from None
        # _header without its metrics, and a set field's value read before asking whether
        # it is set (a zero is the only value that needs the second call): per message
        stamp: int | None = message.timestamp
        if not stamp and not message.HasField("timestamp"):
            stamp = None
        seq: int | None = message.seq
        if not seq and not message.HasField("seq"):
            seq = None
        return {"timestamp": stamp, "seq": seq,
                "uuid": _text(message.uuid, "the uuid") if message.HasField("uuid") else None,
                "message": message}

    def parse(self, payload: bytes) -> pb.Payload:
        if len(payload) > self.max_bytes:
            raise DecodeError(f"payload of {len(payload)} bytes exceeds the "
                              f"{self.max_bytes}-byte limit")
        message = pb.Payload()
        try:
            message.ParseFromString(payload)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"not a Sparkplug B payload: {exc}") from None
        return message


def complete(record: dict[str, Any]) -> None:
    """A :meth:`SparkplugDecoder.decode_lazy` record made what
    :meth:`SparkplugDecoder.decode_compact` returns (``metrics``, ``plain``, ``units``);
    raises DecodeError for what decode_compact refuses. A complete record is left alone."""
    message = record.get("message")
    if message is None:
        return
    units: dict[str, str] = {}
    record["metrics"], record["plain"] = _compact(message, units)
    del record["message"]
    if units:
        record["units"] = units


def read_wanted(message: pb.Payload, kinds: dict[int, str | bool]
                ) -> tuple[dict[str, Any], bool] | None:
    """The values of a plain DATA message's metrics of interest, read from the parsed payload
    and nothing else. ``kinds``: for every alias the births defined, its name when someone
    reads the metric, else True for telemetry and False for Sparkplug's own bookkeeping
    (bdSeq, Node Control/*). Returns ``(values, telemetry)``, ``telemetry`` whether any metric
    besides bookkeeping came; None when the message is not plain (a named or historical
    metric, an alias no birth defined): the caller's general path.

    Per metric three attribute reads (alias, name, is_historical) and one look-up, and the
    value of the wanted ones only, where :func:`compact_metrics` reads six or more fields of
    each (bench/sparkplug_micro.py). The values read are checked as there; the metrics not
    read are not checked at all."""
    values: dict[str, Any] = {}
    telemetry = False
    kind_of = kinds.get
    for metric in message.metrics:
        alias = metric.alias
        if metric.name or metric.is_historical or (not alias and not metric.HasField("alias")):
            return None
        kind = kind_of(alias)
        if kind is True:
            telemetry = True
        elif kind is None:
            return None
        elif kind is not False:
            telemetry = True
            code = metric.datatype
            which = metric.WhichOneof("value")
            if which == "double_value" and code == 10 and not metric.is_null:
                values[kind] = metric.double_value  # the commonest, inline
            else:
                values[kind] = _value(metric, code)
    return values, telemetry


def _header(message: pb.Payload, metrics: list[Any]) -> dict[str, Any]:
    return {
        "timestamp": message.timestamp if message.HasField("timestamp") else None,
        "seq": message.seq if message.HasField("seq") else None,
        "uuid": _text(message.uuid, "the uuid") if message.HasField("uuid") else None,
        "metrics": metrics,
    }


def encode_payload(metrics: list[dict[str, Any]], *, timestamp: int | None = None,
                   seq: int | None = None) -> bytes:
    """Build a Sparkplug B payload (for tests, the bench and rebirth commands).

    Each metric: ``name`` and/or ``alias``, ``datatype`` (name such as ``"Double"``),
    ``value``, optional ``timestamp``, ``is_historical``, ``unit`` (the ``engUnit``
    property), ``label`` (the ``displayName`` property).
    """
    message = pb.Payload()
    if timestamp is not None:
        message.timestamp = timestamp
    if seq is not None:
        message.seq = seq
    for spec in metrics:
        metric = message.metrics.add()
        if spec.get("name") is not None:
            metric.name = spec["name"]
        if spec.get("alias") is not None:
            metric.alias = spec["alias"]
        if spec.get("timestamp") is not None:
            metric.timestamp = spec["timestamp"]
        if spec.get("is_historical"):
            metric.is_historical = True
        for key, prop_name in (("unit", UNIT_PROPERTY), ("label", LABEL_PROPERTY)):
            if spec.get(key):
                metric.properties.keys.append(prop_name)
                prop = metric.properties.values.add()
                prop.type = _CODES["String"]
                prop.string_value = spec[key]
        code = _CODES[spec.get("datatype", "Double")]
        metric.datatype = code
        value = spec.get("value")
        if value is None:
            metric.is_null = True
            continue
        field = spec.get("field") or _ALLOWED[code][0]
        if field in ("int_value", "long_value") and isinstance(value, int) and value < 0:
            value += 1 << (32 if field == "int_value" else 64)
        setattr(metric, field, value)
    return message.SerializeToString()


@hookimpl
def register_decoders(registry: Registry[Any]) -> None:
    registry.add(SparkplugDecoder)
