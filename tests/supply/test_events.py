"""Documents + ERP → events and the lines people read, against a real ERP database.

The ERP is the research DDL (tests/supply/erp-subset-ddl.sql, unchanged) on SQLite and on
PostgreSQL, with PO 4500012 from supplier V100 ("Acme"): line 10 = 200 EA, line 20 = 50 EA,
line 30 deleted, all promised for 29 Nov 2026.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.correlation import ErpConfig, ErpLookup
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats.csv_feed import CsvMapping
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from floorstream.testing.detectors import phrase
from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import Rows
from .support import HERE, SAMPLES

DESADV = HERE / "data" / "desadv_d96a_two_messages.edi"
CSV = HERE / "data" / "asn_acme_20261106.csv"


def _interpreter(erp_url: str | None, memory: Memory | None = None) -> Interpreter:
    lookup = None
    if erp_url is not None:
        lookup = ErpLookup(ErpConfig(url=erp_url, supplier_names={"V100": "Acme",
                                                                  "V200": "Widget Co"}))
    return Interpreter("supply", memory=memory or Memory(), codes=CodeTables(), lookup=lookup,
                       carriers={"ABFS": "ABF"})


def _posts(interpreter: Interpreter, raw: bytes, **kwargs: object) -> list[tuple[str, str, str]]:
    """(type, severity, summary) of every event a file yields, in emit order."""
    out = []
    for doc in parse_any(raw, **kwargs).documents:  # type: ignore[arg-type]
        for event in interpreter.events(doc):
            out.append((event.type, event.severity.label, phrase(event)))
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def erp_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (f"sqlite:///{tmp_path}/erp.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    create_purchasing(url)
    return url


def test_desadv_late_partial_shipment_and_unknown_line(erp_url: str) -> None:
    posts = _posts(_interpreter(erp_url), DESADV.read_bytes())
    assert [(t, s) for t, s, _ in posts] == [
        ("shipment.delayed", "warning"), ("shipment.dispatched", "info"),
        ("asn.mismatch", "warning")]
    assert re.fullmatch(r"PO 4500012 from Acme: shipped 120 of 200 pcs, arriving 2 Dec"
                        r" — 3 days after the promised date", posts[0][2]), posts[0][2]
    assert posts[2][2] == "ASN 0001235 refers to PO 4500012 line 40, which does not exist"


def test_on_time_asn_is_dispatched_and_a_late_one_delayed_at_the_same_position(
        erp_url: str) -> None:
    """Partial and on time is news for planning (notice), not a delay; the late ASN keeps the
    dispatch wording, and both sit at the ERP-independent position of the PO in the ASN."""
    on_time = DESADV.read_bytes().replace(b"DTM+17:20261202", b"DTM+17:20261129")
    # two sources: to one source the second would be the same interchange again (nothing new)
    first = _interpreter(erp_url).events(parse_any(on_time).documents[0])[0]
    late = _interpreter(erp_url).events(parse_any(DESADV.read_bytes()).documents[0])[0]
    assert (first.type, first.severity.label) == ("shipment.dispatched", "notice")
    assert phrase(first) == (
        "PO 4500012 from Acme: shipped 120 of 200 pcs, arriving 29 Nov — on the promised date")
    assert (late.type, late.severity.label) == ("shipment.delayed", "warning")
    assert late.position == first.position == "edifact:SUPPLIER1:14:DES0001:1:po:4500012"
    # without an ERP nothing proves lateness: a dispatch, at that same position
    plain = _interpreter(None).events(parse_any(DESADV.read_bytes()).documents[0])[0]
    assert (plain.type, plain.position) == ("shipment.dispatched", late.position)


def test_csv_over_quantity_and_deleted_line(erp_url: str) -> None:
    mapping = CsvMapping(po="PO Number", line="Line", vendor_part="Item", qty="Qty", uom="UoM",
                         ship_date="Ship Date", tracking="Tracking")
    posts = _posts(_interpreter(erp_url), CSV.read_bytes(), csv_mapping=mapping,
                   name="asn_acme_20261106.csv")
    summaries = [s for _, _, s in posts]
    assert summaries[1:] == [
        "ASN asn_acme_20261106.csv ships 60 pcs of PO 4500012 line 20, more than the 50 ordered",
        "ASN asn_acme_20261106.csv refers to PO 4500012 line 30, which is deleted in the ERP"]
    # a deleted line makes "of N ordered" meaningless; shipping before the promise proves nothing
    assert re.fullmatch(r"PO 4500012 from Acme: shipped 1284 pcs, sent 6 Nov",
                        summaries[0]), summaries[0]


def test_856_sample_matches_lines_by_vendor_part(erp_url: str) -> None:
    raw = (SAMPLES / "x12" / "004060_856_apimeister.edi").read_bytes()
    posts = _posts(_interpreter(erp_url), raw)
    # LIN01 is a counter (1, 2) in this file; the ERP lines are 10/20: matched by LIN*VP
    assert posts == [("shipment.delayed", "warning",
                      "PO 99999817 from Widget Co: shipped 30 of 34 pcs, sent 6 Dec — "
                      "1 day after the promised date")]


def test_unknown_po_without_and_with_erp(tmp_path: Path) -> None:
    raw = DESADV.read_bytes().replace(b"4500012", b"4599999")
    assert [t for t, _, _ in _posts(_interpreter(None), raw)] == ["shipment.dispatched"] * 2
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    posts = _posts(_interpreter(url), raw)
    # one "unmatched" post per ASN and no "shipped" post: the ASN waits for the PO (see
    # test_stories_pending.py for the re-match)
    assert posts == [
        ("asn.mismatch", "warning", "ASN 0001234 refers to PO 4599999, which is not in the ERP "
         "(yet): waiting up to 14 days for it"),
        ("asn.mismatch", "warning", "ASN 0001235 refers to PO 4599999, which is not in the ERP "
         "(yet): waiting up to 14 days for it")]


def test_214_delay_reason_later_eta_and_delivery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    memory = Memory()
    interpreter = _interpreter(url, memory)
    first = _posts(interpreter, x12_214(1, [("SD", "AO", "20261128", "0800"),
                                            ("AG", "NS", "20261203", "1200")]))
    assert first == [
        ("shipment.delayed", "warning",
         "Carrier ABF: shipment PRO7781 (PO 4500012) delayed — weather"),
        ("shipment.delayed", "warning",
         "Carrier ABF: shipment PRO7781 (PO 4500012) delayed, now due 3 Dec, 4 days after the "
         "promised date")]
    later = _posts(interpreter, x12_214(2, [("AG", "NS", "20261205", "0900")]))
    assert later == [("shipment.delayed", "warning",
                      "Carrier ABF: shipment PRO7781 (PO 4500012): ETA 3 Dec → 5 Dec, 2 days "
                      "later; now 6 days later than promised")]
    same = _posts(interpreter, x12_214(3, [("AG", "NS", "20261205", "0900")]))
    assert same == []  # the same estimate again says nothing new
    done = _posts(interpreter, x12_214(4, [("D1", "NS", "20261205", "1015")]))
    # the delivery is the outcome of the estimate: it resolves it
    assert done == [("shipment.delivered", "notice",
                     "Carrier ABF: shipment PRO7781 (PO 4500012) delivered (5 Dec), as expected")]


def test_replaying_a_document_makes_the_same_events(tmp_path: Path) -> None:
    """After a crash the memory comes back from the checkpoint. If that checkpoint was taken
    before the replayed document, the decision and the ids are the same as the first time; if
    it already holds the document (its posts are committed with it), the replay adds nothing."""
    rows = Rows()
    memory = Memory(loader=rows.load)
    interpreter = _interpreter(None, memory)
    docs = [x12_214(1, [("AG", "NS", "20261203", "1200")]),
            x12_214(2, [("AG", "NS", "20261206", "1200")])]
    ids = [c.id for d in parse_any(docs[0]).documents for c in interpreter.events(d)]
    rows.commit(memory)
    before = rows.restart()
    ids += [c.id for d in parse_any(docs[1]).documents for c in interpreter.events(d)]
    again = _interpreter(None, before)
    replay = [c for d in parse_any(docs[1]).documents for c in again.events(d)]
    assert [c.id for c in replay] == ids[1:]
    assert [c.type for c in replay] == ["shipment.delayed"]
    rows.commit(memory)
    after = _interpreter(None, rows.restart())
    assert [c for d in parse_any(docs[1]).documents for c in after.events(d)] == []


def test_dcsa_retraction_clears_the_retracted_post() -> None:
    rows = Rows()
    memory = Memory(loader=rows.load)
    interpreter = _interpreter(None, memory)
    event = {"metadata": {"eventID": "e-1", "eventType": "TRANSPORT",
                          "publisher": {"partyName": "Maersk"}},
             "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                         "eventDateTime": "2026-11-20T10:00:00Z",
                         "relatedDocumentReferences": [{"type": "BKG", "value": "B77"}]}}
    retract = {"metadata": {"eventID": "e-2", "eventType": "TRANSPORT",
                            "publisher": {"partyName": "Maersk"}, "retractedEventID": "e-1"}}
    (dep,) = [c for d in parse_any(json.dumps([event]).encode()).documents
              for c in interpreter.events(d)]
    # the memory that makes this work survives a restart (it rides in the checkpoint)
    rows.commit(memory)
    assert rows.restart().carrier_event("e-1")[:2] == ["shipment B77", dep.id]
    (ret,) = [c for d in parse_any(json.dumps(retract).encode()).documents
              for c in interpreter.events(d)]
    assert phrase(dep) == "Carrier Maersk: shipment B77 departed (20 Nov)"
    # a retraction of the departure: an Undo of that post, in its thread
    assert (ret.subject, ret.relation, ret.refers_to, ret.thread) == (
        "shipment B77", "retraction", dep.id, dep.thread)
    assert phrase(ret) == (
        "Carrier Maersk withdrew its earlier update on shipment B77 (event e-1)")


def test_check_runs_the_po_query_against_the_erp(tmp_path: Path) -> None:
    from floorstream.adapters.supply.folder import FolderConfig, SupplyFolder

    good = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(good)
    config = FolderConfig(name="s", adapter="supply.folder", path=str(tmp_path),
                          erp=ErpConfig(url=good))
    assert SupplyFolder.check(config) == []
    wrong = FolderConfig(name="s", adapter="supply.folder", path=str(tmp_path),
                         erp=ErpConfig(url=good, query="SELECT nope FROM purchase_orders"))
    (warning,) = SupplyFolder.check(wrong)
    assert warning.startswith("erp: the PO lookup query failed: OperationalError")
