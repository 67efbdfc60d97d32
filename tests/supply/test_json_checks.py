"""The cheap JSON checks of the carrier parser at their edges, and a report's shipment names.

The depth check walks a level at a time and aggregator objects are recognised by their keys
before they are probed (both for speed, see ``bench/supply.py``): these tests pin what the
faster code must still decide — exactly ``MAX_DEPTH`` levels pass, one more is refused with a
reason; a JSON body that is a bare scalar is bad input with a reason, not an internal error
(it used to raise TypeError); an aggregator's object is still read with its table; the
aliases of a report keep the order of the shipment references whatever order the carrier
wrote them in.
"""

from __future__ import annotations

import json

import pytest

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.documents import Status, StatusReport
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats import carrier_json
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.memory import Memory

EVENT = {"metadata": {"eventID": "e-1", "eventType": "TRANSPORT"},
         "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                     "eventDateTime": "2026-12-01T08:00:00Z",
                     "relatedDocumentReferences": [{"type": "BKG", "value": "B1"}]}}


def nested(levels: int) -> bytes:
    """The event at the bottom of ``levels`` containers in all (objects and lists mixed)."""
    value: object = EVENT  # the event itself is 4 levels deep (event, payload, refs, ref)
    for n in range(levels - 4):
        value = {"x": value} if n % 2 else [value]
    return json.dumps(value).encode()


def test_exactly_max_depth_passes_one_more_is_refused() -> None:
    parsed = carrier_json.parse(nested(carrier_json.MAX_DEPTH))
    assert [d.key for d in parsed.documents] == ["dcsa:e-1"]
    with pytest.raises(ParseError, match=f"nested deeper than {carrier_json.MAX_DEPTH}"):
        carrier_json.parse(nested(carrier_json.MAX_DEPTH + 1))


@pytest.mark.parametrize("raw", [b"5", b"null", b'"text"', b"true"])
def test_a_scalar_body_is_bad_input_with_a_reason(raw: bytes) -> None:
    for allow_empty in (False, True):  # an empty page is a list or an object, never a scalar
        with pytest.raises(ParseError, match="no carrier event found"):
            carrier_json.parse(raw, allow_empty=allow_empty)


def test_an_aggregator_object_is_still_read_with_its_table() -> None:
    body = {"data": {"tracking_number": "1Z9", "tag": "InTransit", "slug": "ups",
                     "checkpoints": [{"checkpoint_time": "2026-12-01T08:00:00Z"}]}}
    [doc] = carrier_json.parse(json.dumps(body).encode()).documents
    assert isinstance(doc, StatusReport)
    assert (doc.shipment, doc.statuses[0].scheme, doc.statuses[0].code) == (
        "1Z9", "aftership", "InTransit")


def test_aliases_follow_the_reference_order_not_the_carriers() -> None:
    interpreter = Interpreter("s", memory=Memory(), codes=CodeTables())
    status = Status(index=0, code="DEPA", scheme="dcsa")
    for references in ({"SI": "S9", "classifier": "ACT", "BKG": "B1", "EQ": "C7", "BM": "M3"},
                       {"BM": "M3", "EQ": "C7", "BKG": "B1", "SI": "S9"}):
        doc = StatusReport(key="dcsa:x", shipment="B1", statuses=(status,),
                           references=references, equipment="C7")
        own, aliases, po = interpreter._status_names(doc)
        assert (own, aliases, po) == ("s/shipment B1", ["ref:B1", "ref:C7", "ref:M3", "ref:S9"],
                                      None)
