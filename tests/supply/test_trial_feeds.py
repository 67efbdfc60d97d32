"""Feeds as partners send them (the new-user trial of issue 11, 2026-12-01).

Each test feeds files of ``tests/samples/supply_trial/`` (written from the public specs, see
its README) in order through one source's interpreter and a real ERP, and asserts the exact
posts and their threads. Each pins a post the trial found wrong:

- DCSA 2.2 events name their booking in ``documentReferences`` and their port on the
  transport call: every event was a "shipment <event id>" thread of its own, with no place;
- a departure estimate was compared with the PO's promised (delivery) date ("departure 18:00
  → 20:00, 2 h later; now 7 days earlier than promised");
- EDIFACT dates in 204 and 303 (zoned) were read by length and lost: the DESADV posted no
  ship date and no ETA, and its replacement said "sent 20 Nov (was ?)";
- a replacement that writes the same ship day without its time said "sent 20 Nov (was 20
  Nov)"; a change of quantities in several units listed them in another order than the post
  it updates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from floorstream.adapters.supply.documents import StatusReport
from floorstream.adapters.supply.folder import FolderConfig
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.formats.text import edifact_date, parse_date, partner_zone
from floorstream.adapters.supply.handler import FeedHandler
from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import STATUS_315, Told, interpreter, told, x12
from .support import SAMPLES

TRIAL = SAMPLES / "supply_trial"


def feed(name: str) -> bytes:
    return (TRIAL / name).read_bytes()


@pytest.fixture
def erp(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    return url


def test_dcsa_2_2_events_of_one_booking_tell_one_story(erp: str) -> None:
    interp = interpreter(erp)
    plan = told(interp, feed("30_dcsa22_plan.json"))
    thread = "supply/shipment BKG99001"
    assert plan == [
        Told("shipment.status_changed", "new", "shipment BKG99001 (PO 4500012) expected to "
             "depart at DEHAM 22 Nov", thread, None, plan[0].id),
        Told("shipment.delayed", "update", "shipment BKG99001 (PO 4500012) expected to arrive "
             "at USSAV 5 Dec", thread, plan[0].id, plan[1].id)]
    actual = told(interp, feed("31_dcsa22_est_act.json"))
    # the EST arrival moved 1.5 h: no post; the departure estimate is not compared with the
    # promised date; the actual departure resolves it
    assert actual == [
        Told("shipment.delayed", "update", "shipment BKG99001 (PO 4500012): departure at "
             "DEHAM 22 Nov 18:00 → 20:00, 2 h later", thread, plan[0].id, actual[0].id),
        Told("shipment.status_changed", "resolution", "shipment BKG99001 (PO 4500012) "
             "departed (DEHAM, 22 Nov), as expected", thread, actual[0].id, actual[1].id)]


def test_dcsa_2_2_references_and_transport_call_place_are_read() -> None:
    (first, _second) = parse_any(feed("30_dcsa22_plan.json")).documents
    assert (first.shipment, first.po_refs, first.statuses[0].location) == (  # type: ignore[union-attr]
        "BKG99001", ("4500012",), "DEHAM")


def test_edifact_dates_in_their_2379_format() -> None:
    assert edifact_date("20261120143000", "204") == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    assert edifact_date("202611281000+01", "303") == datetime(
        2026, 11, 28, 10, tzinfo=timezone(timedelta(hours=1)))
    assert edifact_date("202611281000UTC", "303") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert edifact_date("202611201400-0500", "205") == datetime(
        2026, 11, 20, 14, tzinfo=timezone(timedelta(hours=-5)))
    assert edifact_date("2611201400", "201") == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert edifact_date("20261120T1400", "10") == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert edifact_date("20261120", "102") == datetime(2026, 11, 20, tzinfo=UTC)
    assert edifact_date("202611201400", "203") == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert edifact_date("2026112", "102") is None


def test_desadv_with_zoned_dates_then_its_latin1_replacement(erp: str) -> None:
    interp = interpreter(erp)
    thread = "supply/ASN DN9001 from 4012345000009:14"
    first = told(interp, feed("20_desadv_303.edi"))
    assert first == [
        Told("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 150 pcs + 12.5 kg, "
             "arriving 28 Nov — 1 day early", thread, None, first[0].id),
        Told("asn.mismatch", "update", "ASN DN9001 ships 12.5 kg of PO 4500012 line 20, "
             "ordered in pcs: no conversion from KGM to EA is configured", thread,
             first[0].id, first[1].id)]
    replaced = told(interp, feed("21_desadv_replace_latin1.edi"))
    assert replaced == [
        Told("shipment.delayed", "update", "PO 4500012 from Acme: ASN DN9001 replaced — ETA 28 "
             "Nov → 1 Dec, 3 days later; shipped 150 pcs + 12.5 kg → 140 pcs + 12.5 kg; now 2 "
             "days later than promised", thread, first[0].id, replaced[0].id)]


def test_x12_replace_lists_units_in_the_order_of_the_post_it_updates(erp: str) -> None:
    interp = interpreter(erp)
    first = told(interp, feed("01_asn_two_shipments.edi"))
    assert [(p.type, p.relation, p.summary, p.thread) for p in first] == [
        ("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 120 pcs + 2 cases, "
         "arriving 28 Nov — 1 day early", "supply/ASN ASN7001 from ZZ:SUPPLIERX"),
        ("asn.mismatch", "update", "ASN ASN7001 ships 2 cases of PO 4500012 line 20, ordered "
         "in pcs: no conversion from CS to EA is configured",
         "supply/ASN ASN7001 from ZZ:SUPPLIERX"),
        ("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 40 of 200 pcs, arriving "
         "29 Nov — on the promised date", "supply/ASN ASN7002 from ZZ:SUPPLIERX")]
    replaced = told(interp, feed("02_asn_replace.edi"))
    assert [(p.type, p.relation, p.summary, p.refers_to) for p in replaced] == [
        ("shipment.delayed", "update", "PO 4500012 from Acme: ASN ASN7001 replaced — ETA 28 Nov "
         "→ 30 Nov, 2 days later; shipped 120 pcs + 2 cases → 100 pcs + 2 cases; now 1 day "
         "later than promised", first[0].id)]


def test_history_a_carrier_sends_after_the_delivery_posts_nothing(erp: str) -> None:
    """Carriers re-send their older milestones and estimates, out of order: after "delivered"
    at 13:42 came "en route to the delivery location" at 07:00 and a delivery estimate. Both
    used to post, so the delivered shipment read as on its way again. A refusal reported
    afterwards is still news (and is the sentinel: nothing else came before it)."""
    interp = interpreter(erp)
    departed = told(interp, x12_214(1, [("AF", "NS", "20261121", "0815")]))
    delivered = told(interp, x12_214(2, [("D1", "NS", "20261201", "1342")]))
    assert [(p.type, p.relation, p.summary) for p in departed + delivered] == [
        ("shipment.status_changed", "new", "Carrier ABF: shipment PRO7781 (PO 4500012) departed "
         "(pick-up location, 21 Nov)"),
        ("shipment.delivered", "update", "Carrier ABF: shipment PRO7781 (PO 4500012) delivered "
         "(1 Dec)")]
    assert told(interp, x12_214(3, [("X6", "NS", "20261201", "0700")])) == []
    assert told(interp, x12_214(4, [("AG", "NS", "20261202", "0900")])) == []
    damaged = told(interp, x12_214(5, [("A7", "NS", "20261201", "1200")]))
    assert [(p.type, p.relation, p.refers_to) for p in damaged] == [
        ("shipment.exception", "update", delivered[0].id)]


def test_a_second_lot_of_the_po_is_a_story_of_its_own(erp: str) -> None:
    """ASN7001 (carrier number PRO88001) and ASN7002 ship PO 4500012. PRO88001 reports and
    is delivered; then PRO88003, naming only the PO and travelling in the same trailer, reports
    its departure. It used to join ASN7001's thread (through the trailer, then the PO) and,
    being older than that delivery, post nothing at all."""
    interp = interpreter(erp)
    asn7001, mismatch, asn7002 = told(interp, feed("01_asn_two_shipments.edi"))
    departed = told(interp, feed("04_214_departed.edi"))
    delivered = told(interp, feed("09_214_delivered.edi"))
    first = "supply/ASN ASN7001 from ZZ:SUPPLIERX"
    assert [(p.summary, p.thread, p.refers_to) for p in departed + delivered] == [
        ("Carrier ABF: shipment PRO88001 (PO 4500012) departed, trailer ABFSTRL4411 (pick-up "
         "location, ATLANTA GA, 21 Nov)", first, mismatch.id),
        ("Carrier ABF: shipment PRO88001 (PO 4500012) delivered (CHARLOTTE GA, 1 Dec), 3 days "
         "later than expected", first, asn7001.id)]  # the ASN's ETA (28 Nov) resolved
    second = told(interp, feed("11_214_ct.edi"))
    other = "supply/ASN ASN7002 from ZZ:SUPPLIERX"  # the PO's other ASN, no carrier yet
    assert [(p.type, p.relation, p.summary, p.thread, p.refers_to) for p in second] == [
        ("shipment.status_changed", "update", "Carrier ABF: shipment PRO88003 (PO 4500012) "
         "departed, trailer ABFSTRL4411 (pick-up location, DALLAS GA, 21 Nov)", other,
         asn7002.id),
        ("shipment.status_changed", "update", "Carrier ABF: shipment PRO88003 (PO 4500012): "
         "ETA 29 Nov → 23 Nov, 6 days earlier; now 6 days earlier than promised", other,
         asn7002.id)]
    # a third lot, once both ASNs have their carrier: a story of its own
    third = told(interp, feed("11_214_ct.edi").replace(
        b"PRO88003*SHIPX", b"PRO88004*SHIPY").replace(b"*000000208*", b"*000000209*"))
    assert {p.thread for p in third} == {"supply/shipment PRO88004"}


def test_a_retracted_estimate_gives_way_to_the_one_it_replaced(erp: str) -> None:
    """The arrival estimate moved 5 → 7 Dec (event e6), then the carrier retracted e6. The
    retraction said only "withdrew its earlier update", dropped every arrival estimate, and
    the actual arrival then resolved nothing. Now it names the estimate withdrawn and the
    one in force again, which the arrival resolves."""
    interp = interpreter(erp)
    plan = told(interp, feed("30_dcsa22_plan.json"))
    told(interp, feed("31_dcsa22_est_act.json"))
    (jump,) = told(interp, feed("32_dcsa22_est_jump.json"))
    assert jump.summary == ("shipment BKG99001 (PO 4500012): arrival at USSAV 5 Dec → 7 Dec, "
                            "2 days later; now 8 days later than promised")
    (undo,) = told(interp, feed("33_dcsa30_retract.json"))
    assert (undo.type, undo.relation, undo.summary, undo.refers_to) == (
        "shipment.retracted", "retraction", "The carrier withdrew its estimate on shipment "
        "BKG99001 (event e6): arrival at USSAV 7 Dec; back to 5 Dec", jump.id)
    (arrived,) = told(interp, feed("34_dcsa22_act_arri.json"))
    assert (arrived.type, arrived.relation, arrived.summary, arrived.thread,
            arrived.refers_to) == (
        "shipment.status_changed", "resolution", "shipment BKG99001 (PO 4500012) arrived "
        "(USSAV, 5 Dec), as expected", "supply/shipment BKG99001", plan[1].id)


def test_a_problem_reason_keeps_its_milestone_and_explains_an_eta(erp: str) -> None:
    """AT7-02 reasons: an ETA moved for the weather said only how far it moved, and a departure
    with a breakdown read "delayed — mechanical breakdown" without the departure, its place
    or its day."""
    interp = interpreter(erp)
    posts = [p for n, status in enumerate([
        ("AG", "NS", "20261129", "1000"), ("AG", "AO", "20261202", "1000"),
        ("AF", "AI", "20261121", "1000"), ("SD", "AO", "20261122", "1000")], start=1)
        for p in told(interp, x12_214(n, [status]))]
    who = "Carrier ABF: shipment PRO7781 (PO 4500012)"
    assert [(p.type, p.summary) for p in posts] == [
        ("shipment.status_changed", f"{who} expected 29 Nov"),
        ("shipment.delayed", f"{who}: ETA 29 Nov → 2 Dec, 3 days later (weather); now 3 days "
         "later than promised"),
        ("shipment.delayed", f"{who} departed (pick-up location, 21 Nov) — delayed: mechanical "
         "breakdown"),
        ("shipment.delayed", f"{who} delayed — weather")]


def test_the_same_departure_in_another_time_zone_posts_nothing(erp: str) -> None:
    """The carrier re-sent the 08:15 ET departure as 13:15 UT in a new interchange: one
    milestone, told once. Sentinel: a departure one minute later is news."""
    interp = interpreter(erp)
    first = told(interp, feed("04_214_departed.edi"))
    assert [p.summary for p in first] == [
        "Carrier ABF: shipment PRO88001 (PO 4500012) departed, trailer ABFSTRL4411 (pick-up "
        "location, ATLANTA GA, 21 Nov)"]
    in_utc = feed("04_214_departed.edi").replace(b"*000000201*", b"*000000301*")
    assert told(interp, in_utc.replace(b"*20261121*0815*ET", b"*20261121*1315*UT")) == []
    later = in_utc.replace(b"*000000301*", b"*000000302*").replace(
        b"*20261121*0815*ET", b"*20261121*1316*UT")
    assert [p.relation for p in told(interp, later)] == ["update"]


def test_a_report_naming_only_the_po_does_not_join_a_cancelled_asn(erp: str) -> None:
    """ASN7002 was cancelled; PRO88003 (naming only the PO) then reported. Its posts went to
    the cancelled ASN's thread, as if the cancelled lot were travelling."""
    interp = interpreter(erp)
    told(interp, feed("01_asn_two_shipments.edi"))
    told(interp, feed("04_214_departed.edi"))  # PRO88001 claims ASN7001
    (cancelled,) = told(interp, feed("03_asn_cancel.edi"))
    assert (cancelled.type, cancelled.thread) == ("asn.cancelled",
                                                  "supply/ASN ASN7002 from ZZ:SUPPLIERX")
    second = told(interp, feed("11_214_ct.edi"))
    assert [(p.relation, p.summary, p.thread) for p in second] == [
        ("new", "Carrier ABF: shipment PRO88003 (PO 4500012) departed, trailer ABFSTRL4411 "
         "(pick-up location, DALLAS GA, 21 Nov), expected 23 Nov", "supply/shipment PRO88003")]


def test_x12_local_time_codes_follow_daylight_saving() -> None:
    """X12 time code ET is Eastern *local* time (ES and ED name standard and daylight): the
    real 214's "11:59 ET" on 11 Sep 2020 is 15:59 UTC, it was read as 16:59."""
    eastern_daylight, eastern = timezone(timedelta(hours=-4)), timezone(timedelta(hours=-5))
    assert parse_date("20200911", "1159", "ET") == datetime(2020, 9, 11, 11, 59,
                                                             tzinfo=eastern_daylight)
    assert parse_date("20261130", "1000", "ET") == datetime(2026, 11, 30, 10, tzinfo=eastern)
    assert parse_date("20260701", "1000", "ES") == datetime(2026, 7, 1, 10, tzinfo=eastern)
    assert parse_date("20260701", "1000", "CT") == datetime(
        2026, 7, 1, 10, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_date("20260701", "1000", "UT") == datetime(2026, 7, 1, 10, tzinfo=UTC)


def test_a_cancel_after_a_replace_retracts_the_replacement_in_its_words(erp: str) -> None:
    """The cancel refers to the post in force (the replacement) and quotes it with the units
    in the order its posts used (it said "2 cases + 100 pcs")."""
    interp = interpreter(erp)
    told(interp, feed("01_asn_two_shipments.edi"))
    (replaced,) = told(interp, feed("02_asn_replace.edi"))
    (cancelled,) = told(interp, feed("12_asn_replaced_then_cancelled.edi"))
    assert (cancelled.type, cancelled.relation, cancelled.summary, cancelled.thread,
            cancelled.refers_to) == (
        "asn.cancelled", "retraction", "PO 4500012 from Acme: ASN ASN7001 cancelled by the "
        "supplier (it said: shipped 100 pcs + 2 cases, arriving 30 Nov)",
        "supply/ASN ASN7001 from ZZ:SUPPLIERX", replaced.id)


def test_a_315_eta_is_an_estimate_the_vessel_arrival_resolves() -> None:
    """315 B4-03 ``E`` (estimated to arrive, en route) used to read as an unknown status,
    posted once per wobble; now it is the arrival's estimate: a 90-minute wobble posts
    nothing, a two-day slip says so, the vessel's arrival resolves it, a copy of that
    arrival in another interchange posts nothing."""
    interp = interpreter()
    b4 = "B4***{code}*{day}*{time}**GMCU*609413*E**LOCKBOURNE*CI*7"
    steps = [("E", "20261205", "0800"), ("E", "20261205", "0930"), ("E", "20261207", "0800"),
             ("VA", "20261207", "1100"), ("VA", "20261207", "1100")]
    posts = [[(p.type, p.relation, p.summary) for p in told(
        interp, x12(STATUS_315, n, B4=b4.format(code=code, day=day, time=time)))]
        for n, (code, day, time) in enumerate(steps, start=2)]
    who = "Carrier GMCU: shipment GMCU6094137"
    assert posts == [
        [("shipment.status_changed", "new", f"{who} expected to arrive at LOCKBOURNE 5 Dec")],
        [],
        [("shipment.delayed", "update", f"{who}: arrival at LOCKBOURNE 5 Dec → 7 Dec, 2 days "
          "later")],
        [("shipment.status_changed", "resolution", f"{who} arrived (vessel, LOCKBOURNE, 7 Dec), "
          "as expected")],
        []]


def test_a_214_delivery_appointment_is_a_delivery_estimate(erp: str) -> None:
    """A 214 that sends a delivery appointment writes it in AT7-03 (element 1652) with AT7-01
    empty: the whole AT7 was skipped. Now it is the delivery's estimate, and a new
    appointment with a reason (AT7-04) moves it."""
    interp = interpreter(erp)
    departed = x12_214(1, [("AF", "NS", "20261121", "0815")])
    told(interp, departed)
    first = x12_214(2, [("AF", "NS", "20261121", "0815")]).replace(
        b"AT7*AF*NS***20261121*0815", b"AT7***AB*NA*20261128*0800")
    moved = x12_214(3, [("AF", "NS", "20261121", "0815")]).replace(
        b"AT7*AF*NS***20261121*0815", b"AT7***AB*AG*20261202*0800")
    who = "Carrier ABF: shipment PRO7781 (PO 4500012)"
    assert [(p.type, p.summary) for p in told(interp, first) + told(interp, moved)] == [
        ("shipment.status_changed", f"{who} expected 28 Nov"),
        ("shipment.delayed", f"{who}: ETA 28 Nov → 2 Dec, 4 days later (consignee related); "
         "now 3 days later than promised")]


def test_the_trial_s_eta_jump_reads_its_reason(erp: str) -> None:
    """The trial's carrier moved the ETA a day with AT7-02 ``AH`` (driver related), which the
    reason table did not know: the post said "(reason AH)"."""
    interp = interpreter(erp)
    told(interp, x12_214(1, [("AG", "NS", "20261130", "1000")]))
    (jump,) = told(interp, x12_214(2, [("AG", "AH", "20261201", "1000")]))
    assert jump.summary == ("Carrier ABF: shipment PRO7781 (PO 4500012): ETA 30 Nov → 1 Dec, "
                            "1 day later (driver related); now 2 days later than promised")


def test_a_csv_eta_column_with_a_time_is_read(erp: str) -> None:
    """A supplier CSV with an ``eta`` column written "28.11.2026 14:00": the column was not
    read without a mapping, and a date with a time matched no date format, so the post had
    no ETA at all."""
    posts = told(interpreter(erp), feed("80_supplier_latin1.csv"), name="80_supplier_latin1.csv")
    assert [(p.type, p.summary) for p in posts] == [
        ("shipment.dispatched", "PO 4500012 from Acme: shipped 1200 pcs + 12.5 kg, arriving 28 "
         "Nov — 1 day early"),
        ("asn.mismatch", "ASN 80_supplier_latin1.csv ships 1200 pcs of PO 4500012 line 10, more "
         "than the 200 ordered"),
        ("asn.mismatch", "ASN 80_supplier_latin1.csv ships 12.5 kg of PO 4500012 line 20, "
         "ordered in pcs: no conversion from KGM to EA is configured")]
    (asn,) = parse_any(feed("80_supplier_latin1.csv"), name="x.csv").documents
    assert asn.eta == datetime(2026, 11, 28, 14, tzinfo=UTC)  # type: ignore[union-attr]


def _lt_214() -> bytes:
    """A 214 whose AT7 times are in local time (X12 time code LT): the departure at 14:00
    local in Chicago on 24 Nov."""
    return x12_214(7101, [("AF", "NS", "20261124", "1400")]).replace(b"*1400*UT", b"*1400*LT")


def test_x12_local_time_lt_is_read_in_the_sources_timezone() -> None:
    """LT names no zone: it is the partner's. With ``timezone`` set it is read there (CST,
    UTC-6, on 24 Nov); a date alone stays a day."""
    handler = FeedHandler(FolderConfig(name="s", adapter="supply.folder", path=".",
                                       timezone="America/Chicago"), None,
                          structlog.get_logger())
    read = handler.prepare(_lt_214(), "lt.edi")
    assert read.parsed is not None and read.parsed.warnings == []
    (report,) = read.parsed.documents
    assert isinstance(report, StatusReport)
    assert report.statuses[0].when == datetime(2026, 11, 24, 14,
                                               tzinfo=timezone(timedelta(hours=-6)))
    with partner_zone(ZoneInfo("America/Chicago")):
        assert parse_date("20260701", "0930") == datetime(  # no code: the partner's too
            2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
        assert parse_date("20260701") == datetime(2026, 7, 1, tzinfo=UTC)  # a day
        assert parse_date("20260701", "0930", "UT") == datetime(2026, 7, 1, 9, 30, tzinfo=UTC)


def test_x12_local_time_lt_without_a_timezone_is_utc_and_says_so() -> None:
    handler = FeedHandler(FolderConfig(name="s", adapter="supply.folder", path="."), None,
                          structlog.get_logger())
    read = handler.prepare(_lt_214(), "lt.edi")
    assert read.parsed is not None
    (report,) = read.parsed.documents
    assert isinstance(report, StatusReport)
    assert report.statuses[0].when == datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert read.parsed.warnings == [
        "1 time(s) in local time (X12 time code LT), first 20261124 1400, read as UTC: set "
        "the source's timezone to the partner's"]


def test_a_timezone_that_does_not_exist_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Gotham'"):
        FolderConfig(name="s", adapter="supply.folder", path=".", timezone="Europe/Gotham")


def test_json_and_csv_times_without_a_zone_are_the_partners() -> None:
    """A carrier's JSON ``"2026-11-24T14:00:00"`` and a supplier CSV's ``28.11.2026 14:00``
    name no zone either: the source's ``timezone`` reads them (Berlin, UTC+1 in November)."""
    handler = FeedHandler(FolderConfig(name="s", adapter="supply.folder", path=".",
                                       timezone="Europe/Berlin"), None, structlog.get_logger())
    body = (b'{"tracking_number": "1Z999", "carrier": "UPS", "status": "in_transit", '
            b'"occurred_at": "2026-11-24T14:00:00"}')
    read = handler.prepare(body, "event.json")
    assert read.parsed is not None
    (report,) = read.parsed.documents
    assert isinstance(report, StatusReport)
    berlin = timezone(timedelta(hours=1))
    assert report.statuses[0].when == datetime(2026, 11, 24, 14, tzinfo=berlin)
    csv = (b"po_number;qty;ship_date;eta\n4500012;10;27.11.2026;28.11.2026 14:00\n")
    read = handler.prepare(csv, "asn.csv", format="csv")
    assert read.parsed is not None
    (asn,) = read.parsed.documents
    assert asn.eta == datetime(2026, 11, 28, 14, tzinfo=berlin)  # type: ignore[union-attr]
    assert asn.ship_date == datetime(2026, 11, 27, tzinfo=UTC)  # type: ignore[union-attr]
