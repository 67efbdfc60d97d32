"""Vocabularies as data (issue 11, item 6): canonical milestones, one phrase each.

Every status table maps its codes to a canonical milestone of ``codes/milestones.json`` and
cites its public source. The same milestone reads the same whichever carrier, standard or
aggregator reported it; TrackingMore's ``pickup`` is out for delivery; a failed delivery
attempt reads one way at AfterShip, TrackingMore and 17TRACK.
"""

from __future__ import annotations

import json

import pytest

from floorstream.adapters.supply.code_tables import (
    AGGREGATORS,
    KINDS,
    CodeTables,
    load_table,
    milestones,
)
from floorstream.adapters.supply.feed import SupplyConfig

from .stories import interpreter, told

STATUS_TABLES = ("at7", "x12_315", "iftsta", "dcsa", "generic", *AGGREGATORS)


@pytest.mark.parametrize("scheme", STATUS_TABLES)
def test_every_table_maps_to_canonical_milestones_and_cites_its_source(scheme: str) -> None:
    table = load_table(scheme)
    assert table["codes"], scheme
    assert {milestone for milestone, _detail in table["codes"].values()} <= set(milestones())
    if scheme != "generic":  # generic is floorstream's own union of the others
        assert "https://" in table["_source"], scheme


def test_milestones_have_one_phrase_and_a_known_kind() -> None:
    for name, info in milestones().items():
        assert info["kind"] in KINDS, name
        assert name == "other" or info["phrase"], name


def _generic(status: str, **extra: str) -> bytes:
    return json.dumps({"tracking_number": "1Z999", "carrier": "UPS", "status": status,
                       "occurred_at": "2026-11-24T08:00:00Z", **extra}).encode()


OUT_FOR_DELIVERY = "Carrier UPS: shipment 1Z999 out for delivery (24 Nov)"
ATTEMPTED = "Carrier UPS: shipment 1Z999 — delivery attempted, not delivered (24 Nov)"


@pytest.mark.parametrize(("vocabulary", "status", "summary"), [
    ("trackingmore", "pickup", OUT_FOR_DELIVERY),
    ("aftership", "OutForDelivery", OUT_FOR_DELIVERY),
    ("easypost", "out_for_delivery", OUT_FOR_DELIVERY),
    ("17track", "OutForDelivery", OUT_FOR_DELIVERY),
    ("generic", "out_for_delivery", OUT_FOR_DELIVERY),
    ("aftership", "AttemptFail", ATTEMPTED),
    ("trackingmore", "undelivered", ATTEMPTED),
    ("17track", "DeliveryFailure", ATTEMPTED),
    ("shippo", "FAILURE", "Carrier UPS: shipment 1Z999 — exception (delivery failed, 24 Nov)"),
    ("easypost", "failure", "Carrier UPS: shipment 1Z999 — exception (delivery failed, 24 Nov)"),
    ("shippo", "TRANSIT", "Carrier UPS: shipment 1Z999 in transit (24 Nov)"),
    ("trackingmore", "transit", "Carrier UPS: shipment 1Z999 in transit (24 Nov)"),
    ("aftership", "InTransit", "Carrier UPS: shipment 1Z999 in transit (24 Nov)"),
    ("shippo", "DELIVERED", "Carrier UPS: shipment 1Z999 delivered (24 Nov)"),
])
def test_one_phrase_per_milestone_across_aggregators(vocabulary: str, status: str,
                                                     summary: str) -> None:
    (post,) = told(interpreter(vocabulary=vocabulary), _generic(status))
    assert post.summary == summary


def test_pickup_is_ambiguous_without_a_vocabulary() -> None:
    """Only TrackingMore says ``pickup`` for out for delivery; elsewhere it is a pick-up from
    the shipper. Without the source's vocabulary the carrier's word is shown as it is."""
    (post,) = told(interpreter(), _generic("pickup"))
    assert post.summary == "Carrier UPS: shipment 1Z999 pickup (24 Nov)"


def test_aggregator_spellings_reach_the_generic_table() -> None:
    codes = CodeTables()
    for spelling in ("InTransit", "in_transit", "TRANSIT", "transit"):
        assert codes.status("generic", spelling).milestone == "in_transit", spelling
    assert codes.status("generic", "NotFound").milestone == "pending"


def test_a_source_override_names_a_milestone_or_a_kind() -> None:
    config = SupplyConfig(name="s", adapter="supply.folder",
                          codes={"dcsa": {"XYZ": ("delivered", "to the dock")},
                                 "at7": {"ZZ": ("wheel change", "delayed")}})
    codes = CodeTables(config.codes)
    assert codes.status("dcsa", "XYZ").text == "delivered"
    assert codes.status("at7", "ZZ").kind == "delayed"
    with pytest.raises(ValueError, match="names no milestone"):
        SupplyConfig(name="s", adapter="supply.folder", codes={"at7": {"Q": ("x", "y")}})


# Aggregator webhook/API objects, shaped after each vendor's public documentation
# (constructed: field names as documented, values invented).
AFTERSHIP = {"event": "tracking_update", "msg": {
    "id": "5b7658cec7c33c0e007de3c5", "tracking_number": "1Z999", "slug": "ups",
    "tag": "Exception", "subtag": "Exception_004", "expected_delivery": "2026-11-27T18:00:00",
    "checkpoints": [{"checkpoint_time": "2026-11-24T08:00:00+00:00", "location": "Louisville",
                     "message": "Held in customs", "tag": "Exception",
                     "subtag": "Exception_004"}]}}
TRACKINGMORE = {"code": 200, "data": {
    "tracking_number": "1Z999", "courier_code": "ups", "delivery_status": "pickup",
    "substatus": "pickup001", "latest_event": "Out for delivery, LOUISVILLE",
    "latest_checkpoint_time": "2026-11-24T08:00:00+00:00"}}
SHIPPO = {"carrier": "ups", "tracking_number": "1Z999", "eta": None,
          "tracking_status": {"status": "FAILURE", "status_details": "Address unknown",
                              "status_date": "2026-11-24T08:00:00Z",
                              "location": {"city": "Louisville", "country": "US"}}}
EASYPOST = {"object": "Event", "description": "tracker.updated", "result": {
    "object": "Tracker", "tracking_code": "1Z999", "carrier": "UPS",
    "status": "out_for_delivery", "est_delivery_date": "2026-11-24T18:00:00Z",
    "tracking_details": [{"datetime": "2026-11-24T08:00:00Z", "message": "Out for delivery",
                          "tracking_location": {"city": "Louisville", "country": "US"}}]}}
SEVENTEEN = {"event": "TRACKING_UPDATED", "data": {
    "number": "1Z999", "carrier": 100002, "track_info": {
        "latest_status": {"status": "InTransit", "sub_status": "InTransit_PickedUp"},
        "latest_event": {"time_utc": "2026-11-24T08:00:00Z", "description": "Picked up",
                         "location": "Louisville"}}}}


@pytest.mark.parametrize(("body", "summary"), [
    (AFTERSHIP, "Carrier ups: shipment 1Z999 delayed — customs clearance"),
    (TRACKINGMORE, "Carrier ups: shipment 1Z999 out for delivery (24 Nov)"),
    (SHIPPO, "Carrier ups: shipment 1Z999 — exception (delivery failed, Louisville, US, "
             "24 Nov)"),
    (EASYPOST, "Carrier UPS: shipment 1Z999 out for delivery (Louisville, US, 24 Nov), "
               "expected the same day"),
    (SEVENTEEN, "Carrier 100002: shipment 1Z999 picked up (Louisville, 24 Nov)"),
])
def test_aggregator_webhooks_are_read_with_their_own_list(body: dict[str, object],
                                                          summary: str) -> None:
    """No vocabulary configured: each aggregator's shape says whose list it speaks."""
    posts = told(interpreter(), json.dumps(body).encode())
    assert posts[0].summary == summary


def _shippo(status: str, substatus: str | None) -> bytes:
    tracking: dict[str, object] = {"status": status, "status_details": "Delivery attempted",
                                   "status_date": "2026-11-24T08:00:00Z",
                                   "location": {"city": "Louisville", "country": "US"}}
    if substatus is not None:
        tracking["substatus"] = {"code": substatus, "text": "…", "action_required": True}
    return json.dumps({"carrier": "ups", "tracking_number": "1Z999", "eta": None,
                       "tracking_status": tracking}).encode()


@pytest.mark.parametrize(("status", "substatus", "summary"), [
    ("FAILURE", "delivery_attempted", "Carrier ups: shipment 1Z999 — delivery attempted, not "
                                      "delivered (Louisville, US, 24 Nov)"),
    ("TRANSIT", "out_for_delivery", "Carrier ups: shipment 1Z999 out for delivery "
                                    "(Louisville, US, 24 Nov)"),
    ("TRANSIT", "package_departed", "Carrier ups: shipment 1Z999 departed (Louisville, US, "
                                    "24 Nov)"),
    # a substatus the table does not list: the status decides, as without one
    ("FAILURE", "brand_new_code", "Carrier ups: shipment 1Z999 — exception (delivery failed, "
                                  "Louisville, US, 24 Nov)"),
    ("FAILURE", None, "Carrier ups: shipment 1Z999 — exception (delivery failed, Louisville, "
                      "US, 24 Nov)"),
])
def test_shippo_substatus_says_more_than_its_status(status: str, substatus: str | None,
                                                    summary: str) -> None:
    """Shippo's ``status`` is coarse (a missed delivery is a FAILURE); its ``substatus.code``
    tells an attempt from a failure, so it wins where the table knows it."""
    (post,) = told(interpreter(), _shippo(status, substatus))
    assert post.summary == summary
