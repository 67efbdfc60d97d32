"""The document readers on their own: other MTConnect versions' shapes, error documents, and
multipart streams with and without Content-length."""

from __future__ import annotations

import io

import pytest
from floorstream_mtconnect.documents import (
    AgentError,
    DocumentError,
    Streams,
    parse_devices,
    parse_document,
    parse_time,
)
from floorstream_mtconnect.multipart import boundary_of, parts

STREAMS_2_0 = b"""<?xml version="1.0" encoding="UTF-8"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0">
  <Header instanceId="7" firstSequence="10" lastSequence="12" nextSequence="13"/>
  <Streams><DeviceStream name="Mill" uuid="m-1">
    <ComponentStream component="Controller" componentId="c1">
      <Condition><Unavailable dataItemId="logic" sequence="12" timestamp="2024-01-01T00:00:02Z"
        type="LOGIC_PROGRAM"/></Condition>
      <Events><Execution dataItemId="exec" sequence="11" timestamp="2024-01-01T00:00:01Z"
        >ACTIVE</Execution></Events>
    </ComponentStream>
  </DeviceStream></Streams>
</MTConnectStreams>"""


def test_a_2_0_document_is_read_by_local_names_in_sequence_order() -> None:
    document = parse_document(STREAMS_2_0)
    assert isinstance(document, Streams) and document.header.next_sequence == 13
    assert [(o.sequence, o.element, o.value, o.category) for o in document.observations] == [
        (11, "Execution", "ACTIVE", "EVENT"), (12, "Unavailable", "UNAVAILABLE", "CONDITION")]


def test_error_documents_old_and_new() -> None:
    old = parse_document(b'<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.1">'
                         b'<Header instanceId="3"/><Error errorCode="OUT_OF_RANGE">from too '
                         b'low</Error></MTConnectError>')
    assert isinstance(old, AgentError) and old.codes == ("OUT_OF_RANGE",)
    assert old.text == "from too low" and old.header and old.header.instance_id == "3"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"<MTConnectStreams><Header", "not well-formed XML"),
    (b"<html><body>502 Bad Gateway</body></html>", "expected MTConnectStreams"),
    (b'<MTConnectStreams><Header instanceId="1" firstSequence="x" lastSequence="1" '
     b'nextSequence="2"/></MTConnectStreams>', "firstSequence='x' is not a number"),
    (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY e "e">]><MTConnectStreams/>',
     "DTDs and entities are not accepted"),
])
def test_documents_that_cannot_be_read_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse_document(raw)


def test_a_2_x_probe_lists_the_agent_device_too() -> None:
    model = parse_devices(b'<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:2.0">'
                          b'<Header instanceId="1"/><Devices><Agent id="agent" name="Agent" '
                          b'uuid="a"><DataItems><DataItem id="agent_avail" type="AVAILABILITY" '
                          b'category="EVENT"/></DataItems></Agent></Devices></MTConnectDevices>')
    assert model.items["agent_avail"].device == "Agent"


def test_seven_fraction_digits_and_a_missing_zone_are_utc() -> None:
    assert str(parse_time("2022-08-08T13:57:41.9185216Z")) == "2022-08-08 13:57:41.918521+00:00"
    assert str(parse_time("2022-08-08T13:57:41")) == "2022-08-08 13:57:41+00:00"
    assert parse_time("yesterday") is None


def test_multipart_with_and_without_content_length() -> None:
    assert boundary_of('multipart/x-mixed-replace; boundary="B1"') == "B1"
    assert boundary_of("text/xml") is None
    stream = io.BytesIO(b"--B1\r\nContent-type: text/xml\r\nContent-length: 5\r\n\r\n<a/>\n"
                        b"\r\n--B1\r\nContent-type: text/xml\r\n\r\n<b>\r\n</b>\r\n--B1\r\n"
                        b"Content-length: 99\r\n\r\n<cut")
    assert list(parts(stream, "B1", 1000)) == [b"<a/>\n", b"<b>\r\n</b>"]  # <cut: incomplete


def test_a_data_set_becomes_a_mapping() -> None:
    from datetime import UTC, datetime

    from floorstream_mtconnect.observations import to_change

    document = parse_document(
        b'<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.0"><Header '
        b'instanceId="1" firstSequence="1" lastSequence="1" nextSequence="2"/><Streams>'
        b'<DeviceStream name="Mill"><ComponentStream component="Path" componentId="p">'
        b'<Samples><VariableDataSet dataItemId="vars" sequence="1" timestamp='
        b'"2024-01-01T00:00:00Z" count="2"><Entry key="T1">12.5</Entry><Entry key="T2">8'
        b'</Entry></VariableDataSet></Samples></ComponentStream></DeviceStream></Streams>'
        b'</MTConnectStreams>')
    assert isinstance(document, Streams)
    (obs,) = document.observations
    change = to_change("s", obs, "1:1", item=None, attrs={}, observed_at=datetime.now(UTC))
    assert change.data["vars"] == {"T1": 12.5, "T2": 8.0}
