"""One thread per shipment; meaning, not bytes, decides duplicates (issue 11, items 2 and 3).

On the real 214, 315, IFTSTA, DCSA and 856 samples and variants of them: a later document
updates the story and says what changed; the same milestone re-reported in another interchange
posts nothing; an ETA posts only when it moves to another day or by the threshold (and then
says by how much, never "now due 11 Sep (was 11 Sep)"); an actual milestone resolves its
estimate; carrier documents join the ASN's thread through the references they share.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import (
    ASN_856,
    ASN_THREAD,
    DCSA,
    DESADV,
    IFTSTA,
    STATUS_214,
    STATUS_315,
    Told,
    brief,
    edifact,
    interpreter,
    told,
)
from .stories import x12 as interchange

THREAD_214 = "supply/shipment 0542550913"
WHO = "Carrier XXXX: shipment 0542550913 (PO 900169)"


def _eta(raw: bytes, control: int, when: bytes) -> bytes:
    """The 214 sample as another interchange whose AG (estimated delivery) is ``when``."""
    return interchange(raw, control).replace(b"AT7*AG*NS***20200911*1159", b"AT7*AG*NS***" + when)


def test_the_214_sample_is_one_story(tmp_path: Path) -> None:
    interp = interpreter()
    # the departure and the estimated delivery of one report: one post, not a second one a
    # moment later saying "expected 11 Sep"
    (departed,) = told(interp, STATUS_214)
    assert departed == Told("shipment.status_changed", "new",
                            f"{WHO} departed, trailer XXXX902577 (pick-up location, 10 Sep), "
                            "expected 11 Sep", THREAD_214, None, departed.id)


def test_the_same_milestones_in_another_interchange_post_nothing() -> None:
    interp = interpreter()
    told(interp, STATUS_214)
    assert told(interp, interchange(STATUS_214, 2)) == []
    # only the departure again, in a third interchange (without the estimate): still nothing
    only_departure = interchange(STATUS_214, 3).replace(
        b"LX*1\xe2\x80\xa6\nAT7*AG*NS***20200911*1159*ET\xe2\x80\xa6\n", b"")
    assert b"AT7*AG" not in only_departure
    assert told(interp, only_departure) == []


def test_an_eta_posts_only_when_it_moves_enough_and_says_by_how_much() -> None:
    interp = interpreter()
    (eta,) = told(interp, STATUS_214)  # departed, delivery expected 11 Sep 11:59
    assert told(interp, _eta(STATUS_214, 2, b"20200911*1219")) == []  # 20 minutes: no news
    (later,) = told(interp, _eta(STATUS_214, 3, b"20200911*1459"))  # 3 h from 11:59
    assert later == Told("shipment.delayed", "update",
                         f"{WHO}: ETA 11 Sep 11:59 → 14:59, 3 h later", THREAD_214, eta.id,
                         later.id)
    (next_day,) = told(interp, _eta(STATUS_214, 4, b"20200912*0900"))
    assert (next_day.type, next_day.relation, next_day.refers_to, next_day.summary) == (
        "shipment.delayed", "update", later.id, f"{WHO}: ETA 11 Sep → 12 Sep, 1 day later")
    (earlier,) = told(interp, _eta(STATUS_214, 5, b"20200911*1600"))
    assert (earlier.type, earlier.summary) == (
        "shipment.status_changed", f"{WHO}: ETA 12 Sep → 11 Sep, 1 day earlier")
    summaries = [earlier.summary, next_day.summary, later.summary]
    assert not any("(was" in s for s in summaries)


def test_the_eta_threshold_is_a_source_setting() -> None:
    interp = interpreter(eta_threshold=4 * 3600.0)
    told(interp, STATUS_214)
    assert told(interp, _eta(STATUS_214, 2, b"20200911*1459")) == []  # 3 h < 4 h
    assert [p.summary for p in told(interp, _eta(STATUS_214, 3, b"20200911*1630"))] == [
        f"{WHO}: ETA 11 Sep 11:59 → 16:30, 4 h 31 min later"]


def test_the_actual_delivery_resolves_the_estimate() -> None:
    interp = interpreter()
    told(interp, STATUS_214)
    (moved,) = told(interp, _eta(STATUS_214, 2, b"20200912*0900"))
    delivered = interchange(STATUS_214, 3).replace(b"AT7*AG*NS***20200911*1159",
                                                   b"AT7*D1*NS***20200913*1015")
    (done,) = told(interp, delivered)
    assert done == Told("shipment.delivered", "resolution",
                        f"{WHO} delivered (13 Sep), 1 day later than expected", THREAD_214,
                        moved.id, done.id)


def test_the_dcsa_sample_deduplicates_by_meaning() -> None:
    """The OpenAPI examples repeat events under other publishers: the repeated ISSU (Maersk),
    the repeated EST LOAD (Hapag-Lloyd), a second retraction of the same event and an event
    id sent twice post nothing."""
    interp = interpreter()
    posts = told(interp, DCSA)
    msc = "Carrier Mediterranean Shipping Company: shipment ABC123059"
    assert brief(posts) == [
        ("shipment.status_changed", "new",
         f"{msc} document issued, container APZU4812090 (19 Sep)"),
        ("shipment.status_changed", "update", "Carrier CMA CGM: shipment ABC123059 expected to "
         "be loaded at Port of Amsterdam 12 Nov"),
        ("shipment.status_changed", "update", "Carrier Evergreen Marine Corporation: shipment "
         "ABC123059 dropped off, container APZU4812090 (Port of Amsterdam, 12 Nov)"),
        ("shipment.status_changed", "new", "Carrier Zim Israel Navigation Company: shipment "
         "APNR7744962 picked up (container, 18 Mar)"),
        ("shipment.retracted", "retraction", "Carrier Hapag-Lloyd withdrew event "
         "957e4966-dad0-4111-9f8f-fb7216c43907, which was not seen here before"),
        ("shipment.status_changed", "update", "Carrier Maersk: shipment ABC123059 expected to "
         "arrive at Port of Amsterdam 12 Nov"),
        ("shipment.status_changed", "update", f"{msc} expected to arrive 12 Nov")]
    booking = [p for p in posts if p.thread == "supply/shipment ABC123059"]
    assert [p.refers_to for p in booking] == [None] + [p.id for p in booking[:-1]]
    assert told(interp, DCSA) == []  # the whole file again


def _dcsa(event_id: str, code: str, classifier: str, when: str, **meta: str) -> bytes:
    return json.dumps({"metadata": {"eventID": event_id, "eventType": "TRANSPORT",
                                    "publisher": {"partyName": "Maersk"}, **meta},
                       "payload": {"eventClassifierCode": classifier,
                                   "transportEventTypeCode": code, "eventDateTime": when,
                                   "transportCall": {"location": {
                                       "locationName": "Port of Amsterdam"}},
                                   "relatedDocumentReferences": [
                                       {"type": "BKG", "value": "ABC123059"}],
                                   "references": [{"type": "EQ", "value": "APZU4812090"}]}}
                      ).encode()


def test_dcsa_actual_arrival_resolves_the_estimate_and_a_retraction_undoes_a_post() -> None:
    interp = interpreter()
    posts = told(interp, DCSA)
    estimate = next(p for p in posts if "Carrier Maersk" in p.summary)
    (arrived,) = told(interp, _dcsa("act-1", "ARRI", "ACT", "2022-11-13T09:00:00+01:00"))
    assert arrived == Told(
        "shipment.status_changed", "resolution", "Carrier Maersk: shipment ABC123059 arrived, "
        "container APZU4812090 (Port of Amsterdam, 13 Nov), 1 day later than expected",
        "supply/shipment ABC123059", estimate.id, arrived.id)
    (departed,) = told(interp, _dcsa("act-2", "DEPA", "ACT", "2022-11-14T18:00:00+01:00"))
    assert (departed.relation, departed.refers_to) == ("update", arrived.id)
    withdraw = json.dumps({"metadata": {"eventID": "ret-1", "eventType": "TRANSPORT",
                                        "publisher": {"partyName": "Maersk"},
                                        "retractedEventID": "act-2"}}).encode()
    (undo,) = told(interp, withdraw)
    assert undo == Told("shipment.retracted", "retraction", "Carrier Maersk withdrew its "
                        "earlier update on shipment ABC123059 (event act-2)",
                        "supply/shipment ABC123059", departed.id, undo.id)
    assert told(interp, withdraw) == []
    # withdrawn, the departure is news again when the carrier reports it once more
    (again,) = told(interp, _dcsa("act-3", "DEPA", "ACT", "2022-11-14T18:00:00+01:00"))
    assert (again.type, again.relation, again.refers_to) == (
        "shipment.status_changed", "update", undo.id)


def test_iftsta_re_reported_then_cancelled() -> None:
    interp = interpreter()
    (status,) = told(interp, IFTSTA)  # the status and its estimate: one post
    thread = "supply/shipment ABCD224O4023815X"
    assert (status.relation, status.thread) == ("new", thread)
    assert status.summary == (
        "Carrier SENDER-COMP: shipment ABCD224O4023815X Rail Departed from In-Transit Locat, "
        "container TRHU4561222 (SYRACUSE, 19 Nov), expected 21 Nov")
    assert told(interp, edifact(IFTSTA, "2803571")) == []  # another interchange, same news
    (undo,) = told(interp, edifact(IFTSTA, "2803572", BGM="BGM+23+2BOG129382+1"))
    assert undo == Told("shipment.retracted", "retraction", "Carrier SENDER-COMP cancelled its "
                        "status report 2BOG129382 on shipment ABCD224O4023815X", thread,
                        status.id, undo.id)


def test_the_315_sample() -> None:
    (arrived,) = told(interpreter(), STATUS_315)
    assert (arrived.type, arrived.relation, arrived.summary, arrived.thread) == (
        "shipment.status_changed", "new",
        "Carrier GMCU: shipment GMCU6094137 arrived (vessel, LOCKBOURNE, 1 Sep)",
        "supply/shipment GMCU6094137")


@pytest.mark.parametrize(("pro", "how"), [(b"5787970539", "the ASN's carrier reference"),
                                          (b"0542550913", "the PO only")])
def test_a_carrier_report_joins_the_asn_story(tmp_path: Path, pro: bytes, how: str) -> None:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    interp = interpreter(url)
    (asn,) = told(interp, ASN_856)
    report = STATUS_214.replace(b"B10*0542550913", b"B10*" + pro).replace(
        b"L11*900169*PO", b"L11*99999817*PO")
    departed, eta = told(interp, report)
    assert (departed.thread, departed.relation, departed.refers_to) == (
        ASN_THREAD, "update", asn.id), how
    assert (eta.thread, eta.refers_to) == (ASN_THREAD, departed.id)


def test_the_carrier_eta_updates_the_asn_eta(tmp_path: Path) -> None:
    """The DESADV promised arrival on 2 Dec; the carrier's 214 says 5 Dec: one thread, and the
    update says by how much and how that compares with the promise."""
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    interp = interpreter(url)
    # the first message only: the second is another ASN for the same PO, and a report that
    # names only the PO joins the PO's latest ASN
    one = DESADV[:DESADV.index(b"UNH+2")] + b"UNZ+1+DES0001'\n"
    asn = told(interp, one)[0]
    (eta,) = told(interp, x12_214(1, [("AG", "NS", "20261205", "0900")]))
    assert eta == Told("shipment.delayed", "update", "Carrier ABF: shipment PRO7781 (PO 4500012):"
                       " ETA 2 Dec → 5 Dec, 3 days later; now 6 days later than promised",
                       asn.thread, asn.id, eta.id)
    (done,) = told(interp, x12_214(2, [("D1", "NS", "20261205", "1400")]))
    assert (done.type, done.relation, done.refers_to, done.summary) == (
        "shipment.delivered", "resolution", eta.id,
        "Carrier ABF: shipment PRO7781 (PO 4500012) delivered (5 Dec), as expected")


def test_a_replay_from_a_checkpoint_taken_before_the_file_makes_the_same_ids() -> None:
    from floorstream.adapters.supply.memory import Memory

    from .stories import Rows

    rows = Rows()
    memory = Memory(loader=rows.load)
    first = interpreter(memory=memory)
    told(first, STATUS_214)
    rows.commit(memory)
    restarted = rows.restart()
    posts = told(first, _eta(STATUS_214, 2, b"20200912*0900"))
    replay = told(interpreter(memory=restarted), _eta(STATUS_214, 2, b"20200912*0900"))
    assert replay == posts


