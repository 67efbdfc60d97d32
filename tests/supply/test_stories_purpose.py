"""Purpose codes decide what a document does to its story (issue 11, item 1).

X12 856 BSN01 (element 353) and EDIFACT BGM 1225 on the real 856 sample and on the DESADV
written from the standard, against the ERP of the supply tests (SQLite; PostgreSQL in
test_stories_pending.py): an original starts the story, a replace or change updates it and
says what changed, a cancel retracts the post in force (one "cancelled" post), a duplicate or
a confirmation posts nothing once the story is known, an unknown code is an original with a
WARNING log line and a note in the post's fields.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from floorstream.adapters.supply.events import Interpreter
from floorstream.model import Event, Post
from floorstream.testing.detectors import phrase
from support.erp import create_purchasing

from .stories import ASN_856, ASN_THREAD, DESADV, Told, brief, edifact, events, interpreter, told
from .stories import x12 as interchange

SHIPPED = ("PO 99999817 from Widget Co: shipped 30 of 34 pcs, sent 6 Dec — 1 day after the "
           "promised date")


@pytest.fixture
def erp(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    return url


@pytest.fixture
def interp(erp: str) -> Interpreter:
    return interpreter(erp)


def _bsn(code: str, asn: str = "829716") -> str:
    return f"BSN*{code}*{asn}*20111206*142428*0002"


def test_the_real_856_is_an_original_and_starts_the_story(interp: Interpreter) -> None:
    (first,) = told(interp, ASN_856)  # BSN01 = 14, advance notification: an original
    assert (first.type, first.relation, first.summary, first.thread, first.refers_to) == (
        "shipment.delayed", "new", SHIPPED, ASN_THREAD, None)


@pytest.mark.parametrize("code", ["01", "03"])
def test_cancel_retracts_the_post_in_force_once(interp: Interpreter, code: str) -> None:
    (first,) = told(interp, ASN_856)
    cancel = interchange(ASN_856, 2, BSN=_bsn(code))
    (undo,) = told(interp, cancel)
    assert undo == Told(
        "asn.cancelled", "retraction",
        f"PO 99999817 from Widget Co: ASN 829716 {'cancelled' if code == '01' else 'deleted'} "
        "by the supplier (it said: shipped 30 pcs, sent 6 Dec)", ASN_THREAD, first.id, undo.id)
    # the same cancellation again, or in another interchange, says nothing more
    assert told(interp, cancel) == []
    assert told(interp, interchange(ASN_856, 3, BSN=_bsn(code))) == []


def test_a_replace_updates_the_story_and_says_what_changed(interp: Interpreter) -> None:
    (first,) = told(interp, ASN_856)
    replace = interchange(ASN_856, 2, BSN=_bsn("05")).replace(b"SN1*2*6*EA", b"SN1*2*4*EA")
    (update,) = told(interp, replace)
    assert update == Told("shipment.dispatched", "update",
                          "PO 99999817 from Widget Co: ASN 829716 replaced — shipped 30 → 28 of "
                          "34 pcs", ASN_THREAD, first.id, update.id)
    # a change (04) that moves the ship date by a day is another update, of the replacement
    change = interchange(replace, 3, BSN=_bsn("04")).replace(b"DTM*011*20111206",
                                                             b"DTM*011*20111207")
    (again,) = told(interp, change)
    assert (again.relation, again.refers_to, again.summary) == (
        "update", update.id, "PO 99999817 from Widget Co: ASN 829716 changed — sent 7 Dec "
        "(was 6 Dec)")
    # a cancel now retracts the post in force: the last version
    (undo,) = told(interp, interchange(ASN_856, 4, BSN=_bsn("01")))
    assert (undo.relation, undo.refers_to) == ("retraction", again.id)


@pytest.mark.parametrize(("code", "what"), [("07", "duplicate"), ("06", "confirmation"),
                                            ("00", "original re-sent unchanged"),
                                            ("05", "replace that changes nothing")])
def test_a_copy_of_a_known_story_posts_nothing(interp: Interpreter, code: str,
                                               what: str) -> None:
    told(interp, ASN_856)
    assert told(interp, interchange(ASN_856, 2, BSN=_bsn(code))) == [], what


def test_a_duplicate_of_a_story_never_received_is_told(interp: Interpreter) -> None:
    """We never got the original: the duplicate carries the news, once."""
    assert brief(told(interp, interchange(ASN_856, 2, BSN=_bsn("07")))) == [
        ("shipment.delayed", "new", SHIPPED)]


def test_cancel_of_an_asn_never_received(interp: Interpreter) -> None:
    (undo,) = told(interp, interchange(ASN_856, 2, BSN=_bsn("01")))
    assert (undo.type, undo.relation, undo.refers_to, undo.summary) == (
        "asn.cancelled", "retraction", None,
        "PO 99999817 from Widget Co: ASN 829716 cancelled by the supplier; not seen here "
        "before")


def test_cancel_to_be_reissued_then_the_reissue(interp: Interpreter) -> None:
    (first,) = told(interp, ASN_856)
    (undo,) = told(interp, interchange(ASN_856, 2, BSN=_bsn("17")))
    assert undo.refers_to == first.id
    assert undo.summary == ("PO 99999817 from Widget Co: ASN 829716 cancelled, to be reissued "
                            "by the supplier (it said: shipped 30 pcs, sent 6 Dec)")
    (reissued,) = told(interp, interchange(ASN_856, 3, BSN=_bsn("18")))
    assert (reissued.type, reissued.relation, reissued.refers_to, reissued.summary,
            reissued.thread) == ("shipment.delayed", "update", undo.id, SHIPPED, ASN_THREAD)


def test_an_unknown_purpose_code_is_an_original_with_a_warning_and_a_note(
        interp: Interpreter) -> None:
    with structlog.testing.capture_logs() as logs:
        (event,) = events(interp, interchange(ASN_856, 2, BSN=_bsn("ZZ")))
    assert [(entry["log_level"], entry["event"], entry["code"]) for entry in logs] == [
        ("warning", "supply_unknown_purpose", "ZZ")]
    assert (event.type, event.relation) == ("shipment.delayed", "new")
    assert event.fields["note"] == "Unknown purpose code 'ZZ': read as an original document."
    assert event.fields["purpose_code"] == "ZZ"
    # the note is the post's body (shown under the summary by sinks that show bodies)
    assert event.fields["body"] == event.fields["note"]


def test_desadv_message_function_codes(interp: Interpreter) -> None:
    """BGM 1225 of the DESADV: 9 original, 5 replace, 7 duplicate, 1 cancellation."""
    first = told(interp, DESADV)
    thread = "supply/ASN 0001234 from SUPPLIER1:14"
    assert [(p.type, p.relation, p.thread) for p in first] == [
        ("shipment.delayed", "new", thread), ("shipment.dispatched", "new",
                                              "supply/ASN 0001235 from SUPPLIER1:14"),
        ("asn.mismatch", "update", "supply/ASN 0001235 from SUPPLIER1:14")]
    replace = edifact(DESADV, "DES0002", BGM="BGM+351+0001234+5").replace(
        b"DTM+17:20261202", b"DTM+17:20261205")
    update = told(interp, replace)
    assert [(p.type, p.relation, p.refers_to, p.summary) for p in update] == [
        ("shipment.delayed", "update", first[0].id,
         "PO 4500012 from Acme: ASN 0001234 replaced — ETA 2 Dec → 5 Dec, 3 days later; now 6 "
         "days later than promised")]
    assert told(interp, edifact(DESADV, "DES0003", BGM="BGM+351+0001234+7")) == []
    cancel = told(interp, edifact(DESADV, "DES0004", BGM="BGM+351+0001234+1"))
    assert [(p.type, p.relation, p.refers_to, p.summary) for p in cancel] == [
        ("asn.cancelled", "retraction", update[0].id,
         "PO 4500012 from Acme: ASN 0001234 cancelled by the supplier (it said: shipped 120 "
         "pcs, arriving 5 Dec)")]


def test_a_cancel_is_an_undo_of_the_earlier_post_in_activity_streams(
        interp: Interpreter) -> None:
    (first,) = events(interp, ASN_856)
    (undo,) = events(interp, interchange(ASN_856, 2, BSN=_bsn("01")))
    activity = _post(undo).as_activity()
    assert activity["type"] == "Undo"
    assert activity["inReplyTo"] == f"urn:floorstream:post:{first.id}"
    assert activity["object"]["id"] == f"urn:floorstream:post:{first.id}"
    assert activity["context"] == f"urn:floorstream:thread:{ASN_THREAD}"


def _post(e: Event) -> Post:
    return Post.model_validate({
        "id": e.id, "type": e.type, "source": e.source, "subject": e.subject,
        "summary": phrase(e), "occurred_at": e.occurred_at, "thread": e.thread,
        "relation": e.relation, "refers_to": e.refers_to})
