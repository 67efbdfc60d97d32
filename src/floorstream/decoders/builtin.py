"""Builtin decoders: JSON objects and bare values.

Every way a payload can be bad ends in :class:`DecodeError` with a reason a person can act on
(the adapter quarantines the payload with it and goes on): not JSON, nested deeper than
:attr:`JsonDecoder.max_depth`, an integer too long to convert, a string that is not valid
Unicode (an escaped lone surrogate such as ``"\\ud800"``) or holds a NUL: no database can store
those in text (PostgreSQL refuses NUL), and one such string in a post would fail every commit.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import orjson

from floorstream.plugin import DecodeError, Decoder, Registry, hookimpl

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # no database stores these in text
_DIGITS = re.compile(r"[+-]?\d+")


def _check_size(decoder: Decoder, payload: bytes) -> None:
    if len(payload) > decoder.max_bytes:
        raise DecodeError(
            f"payload of {len(payload)} bytes exceeds the {decoder.max_bytes}-byte limit")


def _check_tree(value: Any, max_depth: int, strings: bool) -> None:
    """Refuse ``value`` when it nests deeper than ``max_depth`` or (``strings``) holds a lone
    surrogate or a NUL in a key or string. Iterative: a deep value must not exhaust the stack
    here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if strings:
                for key in item:
                    _check_text(key)
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            if strings and isinstance(item, str):
                _check_text(item)
            continue
        if depth > max_depth:
            raise DecodeError(f"JSON nested deeper than {max_depth} levels")
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif strings and isinstance(child, str):
                _check_text(child)


def _check_text(text: str) -> None:
    bad = _UNSTORABLE.search(text)
    if bad is None:
        return
    shown = ascii(text)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    if bad.group() == "\x00":
        raise DecodeError(f"JSON string {shown} holds a NUL character (not text; no database "
                          "stores it)")
    raise DecodeError(f"JSON string {shown} holds the lone surrogate {bad.group()!a}: not "
                      "valid Unicode (invalid UTF-8 once decoded)")


class JsonDecoder(Decoder):
    """A JSON object (``{"state": "RUNNING", "temp": 71.3}``). Arrays and scalars are refused:
    a telemetry message without field names cannot be mapped to fields."""

    name: ClassVar[str] = "json"
    #: deeper payloads are refused: telemetry is a few levels deep, and the store's JSON
    #: encoder (orjson) refuses more than 254 levels when it writes state or post fields
    max_depth: ClassVar[int] = 64

    def decode(self, payload: bytes) -> dict[str, Any]:
        _check_size(self, payload)
        try:
            # orjson parses a telemetry message in a fifth of json's time (the MQTT hot path);
            # it refuses invalid UTF-8 and escaped lone surrogates itself, not ``\u0000``
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            # what orjson refuses goes through json, which accepts the same as before (NaN,
            # big integers) and words the error; it accepts lone surrogates, checked below
            value = _fallback(payload, self.max_depth)
            _check_tree(value, self.max_depth, strings=True)
        else:
            # ``{``/``[`` bytes bound the depth, and a NUL can only come as ``\u0000``: the
            # walk is needed only for a payload with more brackets than the limit or such an
            # escape (a byte count and a search: cheap on the hot path)
            nul = b"\\u0000" in payload
            if nul or payload.count(b"{") + payload.count(b"[") > self.max_depth:
                _check_tree(value, self.max_depth, strings=nul)
        if not isinstance(value, dict):
            raise DecodeError(f"expected a JSON object, got {type(value).__name__}")
        return value


def _fallback(payload: bytes, max_depth: int) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise DecodeError(f"invalid JSON: {str(exc).split(';')[0]}") from None


class ValueDecoder(Decoder):
    """A bare number or string (``71.3``, ``RUNNING``), as many PLC gateways publish per topic;
    the record is ``{"value": …}``."""

    name: ClassVar[str] = "value"

    def decode(self, payload: bytes) -> dict[str, Any]:
        _check_size(self, payload)
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"payload is not UTF-8 text: {exc}") from None
        if not text:
            raise DecodeError("empty payload")
        if "\x00" in text:
            raise DecodeError("payload holds a NUL character: binary data, not a value")
        try:
            return {"value": int(text)}
        except ValueError:
            if _DIGITS.fullmatch(text):  # more than 4300 digits: Python refuses to convert
                raise DecodeError(f"integer of {len(text)} digits is too long") from None
        try:
            return {"value": float(text)}
        except ValueError:
            pass
        lowered = text.lower()
        if lowered in ("true", "false"):
            return {"value": lowered == "true"}
        return {"value": text}


@hookimpl
def register_decoders(registry: Registry[Any]) -> None:
    registry.add(JsonDecoder)
    registry.add(ValueDecoder)
