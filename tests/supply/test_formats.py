"""Parsers on the real samples (byte for byte), files written from the standards, and damage.

Every sample in tests/samples (copied unchanged from shared/samples with SOURCES.md and the
licence texts) is parsed here; the asserted values are read off the files themselves.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from floorstream.adapters.supply.documents import Asn, Retraction, StatusReport
from floorstream.adapters.supply.formats import carrier_json, edifact_docs, x12_docs
from floorstream.adapters.supply.formats.csv_feed import CsvMapping
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.formats.errors import ParseError
from floorstream.adapters.supply.formats.x12 import tokenize

from .make_214 import x12_214
from .support import HERE, SAMPLES

X856 = SAMPLES / "x12" / "004060_856_apimeister.edi"
X214 = SAMPLES / "x12" / "004010_214_staedi_ellipsis_terminator.edi"
X315 = SAMPLES / "x12" / "004010_315_apimeister.edi"
IFTSTA = SAMPLES / "edifact" / "d00b_iftsta_apimeister.edi"
DCSA = SAMPLES / "carrier" / "dcsa_tnt_v3_event_examples.json"
DESADV = HERE / "data" / "desadv_d96a_two_messages.edi"
CSV = HERE / "data" / "asn_acme_20261106.csv"
ALL_FILES = [X856, X214, X315, IFTSTA, DCSA, DESADV]


def test_856_newline_terminator_hierarchy_and_quantities() -> None:
    parsed = x12_docs.parse(X856.read_bytes())
    assert parsed.warnings == []  # SE01=31 is right; the GS08/ISA12 version skew is legal
    (asn,) = parsed.documents
    assert isinstance(asn, Asn)
    assert asn.asn_id == "829716" and asn.purpose == "14"  # BSN01 outside 00/01/04/05
    assert asn.key == "x12:ZZ:ABCDEFGHIJKLMNO:000003438:49:0008"
    assert asn.bill_of_lading == "999999-001" and asn.tracking == "5787970539"
    assert asn.supplier == "1 EDI SOURCE"
    assert asn.ship_date == datetime(2011, 12, 6, tzinfo=UTC)
    (order,) = asn.orders
    assert order.po == "99999817"
    assert [(ln.line, ln.qty, ln.uom, ln.vendor_part, ln.description) for ln in order.lines] == [
        ("1", 24.0, "EA", "87787D", "BLUE WIDGET"), ("2", 6.0, "EA", "99887D", "RED WIDGET")]
    assert sum(ln.qty for ln in order.lines) == 30  # CTT*4*30 hash total


def test_214_ellipsis_newline_terminator_loops_newest_first() -> None:
    inter = tokenize(X214.read_bytes())
    assert [s.tag for s in inter.sets[0].segments][:3] == ["ST", "B10", "L11"]
    (report,) = x12_docs.parse(X214.read_bytes()).documents
    assert isinstance(report, StatusReport)
    assert report.shipment == "0542550913" and report.carrier == "XXXX"
    assert report.po_refs == ("900169",)
    eastern = timezone(timedelta(hours=-4))  # "ET" is local: EDT in September
    assert [(s.code, s.reason, s.when, s.estimated) for s in report.statuses] == [
        ("AG", "NS", datetime(2020, 9, 11, 11, 59, tzinfo=eastern), True),
        ("AF", "NS", datetime(2020, 9, 10, 11, 35, tzinfo=eastern), False)]


def test_315_container_status() -> None:
    (report,) = x12_docs.parse(X315.read_bytes()).documents
    assert isinstance(report, StatusReport)
    assert report.shipment == "GMCU6094137" and report.statuses[0].code == "VA"
    assert report.references["BN"] == "1NAN910141"
    assert report.statuses[0].when == datetime(2022, 9, 1, 8, 7, tzinfo=UTC)


def test_iftsta_envelope_mismatch_is_a_warning_not_a_drop() -> None:
    parsed = edifact_docs.parse(IFTSTA.read_bytes())
    assert parsed.warnings == ["UNZ reference 2805570 does not match UNB reference 2803570"]
    (report,) = parsed.documents
    assert isinstance(report, StatusReport)
    # the CNI block's container wins over the header's RFF+EQ (TRHU4307252)
    assert report.equipment == "TRHU4561222"
    status, eta = report.statuses
    assert status.text == "Rail Departed from In-Transit Locat"  # cut at 35 chars, kept
    assert status.when == datetime(2022, 11, 19, 7, 10, tzinfo=UTC)
    assert status.location == "SYRACUSE"
    assert eta.estimated and eta.when == datetime(2022, 11, 21, 7, 0, tzinfo=UTC)


def test_dcsa_examples_events_and_retraction() -> None:
    parsed = carrier_json.parse(DCSA.read_bytes())
    retractions = [d for d in parsed.documents if isinstance(d, Retraction)]
    reports = [d for d in parsed.documents if isinstance(d, StatusReport)]
    # the retraction example appears twice in the file (list + single example)
    assert {r.retracted_id for r in retractions} == {"957e4966-dad0-4111-9f8f-fb7216c43907"}
    assert len(reports) == 9  # 11 event objects in the 8 examples, 2 of them retractions
    codes = {(r.statuses[0].code, r.references.get("classifier")) for r in reports}
    assert ("ISSU", "ACT") in codes and ("ARRI", "EST") in codes and ("PICK", "ACT") in codes
    arri = next(r for r in reports if r.statuses[0].code == "ARRI")
    assert arri.statuses[0].estimated and arri.shipment == "ABC123059"


def test_desadv_with_una_release_character_and_two_messages() -> None:
    parsed = edifact_docs.parse(DESADV.read_bytes())
    assert parsed.warnings == []
    first, second = parsed.documents
    assert isinstance(first, Asn) and isinstance(second, Asn)
    assert first.asn_id == "0001234" and first.supplier == "ACME GMBH"
    assert first.eta == datetime(2026, 12, 2, tzinfo=UTC)
    assert first.orders[0].po == "4500012"
    line = first.orders[0].lines[0]
    assert (line.line, line.qty, line.uom, line.vendor_part) == ("10", 120.0, "PCE", "A-10")
    assert line.description == "BRACKET: STEEL'S"  # ?: and ?' released
    assert second.orders[0].lines[0].line == "40"


def test_csv_with_bom_semicolons_decimal_comma_and_quoted_delimiter() -> None:
    mapping = CsvMapping(po="PO Number", line="Line", vendor_part="Item", qty="Qty", uom="UoM",
                         ship_date="Ship Date", tracking="Tracking")
    parsed = parse_any(CSV.read_bytes(), csv_mapping=mapping, name="asn_acme_20261106.csv")
    (asn,) = parsed.documents
    assert isinstance(asn, Asn)
    lines = asn.orders[0].lines
    assert [(ln.line, ln.qty, ln.vendor_part) for ln in lines] == [
        ("10", 24.0, "A-10"), ("20", 60.0, "A-20"), ("30", 1200.0, "RED WIDGET; LARGE")]
    assert asn.ship_date == datetime(2026, 11, 6, tzinfo=UTC)
    assert asn.tracking == "1Z999AA10123456784"


@pytest.mark.parametrize(("terminator", "element"), [
    ("~", "*"), ("\n", "*"), ("~\r\n", "*"), ("\u2026\n", "*"), ("'", "|"), ("\u00a7", "^")])
def test_x12_any_declared_delimiters(terminator: str, element: str) -> None:
    raw = x12_214(7, [("SD", "AO", "20261130", "0800")], terminator=terminator,
                  element=element)
    (report,) = x12_docs.parse(raw).documents
    assert isinstance(report, StatusReport)
    assert [(s.code, s.reason) for s in report.statuses] == [("SD", "AO")]


def test_x12_mismatched_control_numbers_warn() -> None:
    raw = x12_214(7, [("AF", "NS", "20261130", "0800")]).replace(b"IEA*1*000000007",
                                                                  b"IEA*1*000000008")
    parsed = x12_docs.parse(raw)
    assert parsed.documents and parsed.warnings == [
        "IEA02 000000008 does not match ISA13 000000007"]


@pytest.mark.parametrize("path", [*ALL_FILES, CSV], ids=lambda p: p.name)
def test_truncated_files_fail_with_a_position(path: object) -> None:
    """Cut every sample at many points: either a clean ParseError with a segment number, or (for
    a cut exactly at a segment boundary of a self-contained prefix) a smaller valid parse."""
    raw = path.read_bytes()  # type: ignore[attr-defined]
    cuts = sorted({int(len(raw) * f / 20) for f in range(1, 20)})
    failures = 0
    for cut in cuts:
        try:
            parse_any(raw[:cut], csv_mapping=CsvMapping(po="PO Number", qty="Qty"))
        except ParseError as exc:
            failures += 1
            assert exc.segment is not None or exc.offset is not None, str(exc)
    assert failures >= len(cuts) // 2


def test_garbage_never_raises_anything_but_parse_error() -> None:
    rng = random.Random(5)
    samples = [p.read_bytes() for p in ALL_FILES]
    outcomes = {"parsed": 0, "rejected": 0}
    for round_ in range(300):
        base = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        data = bytes(base) if round_ % 3 else bytes(rng.randrange(256) for _ in range(200))
        try:
            parse_any(data)
            outcomes["parsed"] += 1
        except ParseError as exc:
            outcomes["rejected"] += 1
            assert str(exc)
    # random bytes never parse; lightly damaged files may, or fail cleanly
    assert outcomes["rejected"] >= 100 and sum(outcomes.values()) == 300


def test_empty_and_binary_files_are_parse_errors() -> None:
    for data in (b"", b"   \n", b"\x00\x01\x02PK\x03\x04", b"ISA*00*", b"UNB+UNOC"):
        with pytest.raises(ParseError):
            parse_any(data)
