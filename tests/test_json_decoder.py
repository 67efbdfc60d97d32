"""The builtin JSON decoder: orjson for speed, with json's acceptance and errors kept."""

from __future__ import annotations

import math

import pytest

from floorstream.decoders.builtin import JsonDecoder
from floorstream.errors import DecodeError


def test_plain_object() -> None:
    assert JsonDecoder().decode(b'{"state": "RUNNING", "t": 71.5, "n": 3, "ok": true}') == {
        "state": "RUNNING", "t": 71.5, "n": 3, "ok": True}


def test_what_orjson_refuses_but_json_accepts_still_decodes() -> None:
    value = JsonDecoder().decode(b'{"t": NaN, "big": 123456789012345678901234567890}')
    assert math.isnan(value["t"])
    assert value["big"] == 123456789012345678901234567890


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"state": ', "invalid JSON"),
    (b"\xff\xfe{}", "invalid JSON"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b"71.3", "expected a JSON object, got float"),
])
def test_refusals_are_decode_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        JsonDecoder().decode(payload)
