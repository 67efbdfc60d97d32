"""ERP correlation that waits (issue 11, item 4).

An ASN for a PO the ERP does not have (yet) posts once, "unmatched", and no "shipped" post; it
waits in the source's memory (with an expiry, listed by ``floorstream supply pending``) and is
matched when the PO appears, as an update of its thread. On SQLite and PostgreSQL, in the
interpreter and through a daemon with the folder transport and the command line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from floorstream.adapters.supply.memory import Memory
from floorstream.cli import main
from floorstream.store.store import Store
from support import DaemonRunner, wait_for
from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import DESADV, Clock, Told, interpreter, told

UNKNOWN = DESADV[:DESADV.index(b"UNH+2")].replace(b"4500012", b"4599999") + \
    b"UNZ+1+DES0001'\n"
THREAD = "supply/ASN 0001234 from SUPPLIER1:14"
WAITING = ("ASN 0001234 refers to PO 4599999, which is not in the ERP (yet): waiting up to 14 "
           "days for it")
EXPIRED = ("ASN 0001234 for PO 4599999 expired unmatched after 3 days: the PO never appeared "
           "in the ERP")
MATCHED = ("PO 4599999 from Acme is now in the ERP: ASN 0001234 shipped 120 of 200 pcs, "
           "arriving 2 Dec — 3 days after the promised date")


def insert_po(url: str, name: str = "4599999") -> None:
    """The PO replicates into the ERP: header and one line, 200 EA promised 29 Nov."""
    engine = create_engine(url)
    now, promised = datetime(2026, 11, 21), datetime(2026, 11, 29)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO purchase_order (id, name, vendor_code, state, date_order, date_planned,"
            " create_date, write_date) VALUES (3, :name, 'V100', 'purchase', :now, :p, :now,"
            " :now)"), {"name": name, "now": now, "p": promised})
        conn.execute(text(
            "INSERT INTO purchase_order_line (id, order_id, line_no, product_code,"
            " vendor_product_code, name, product_qty, uom, price_unit, date_planned,"
            " deletion_flag, create_date, write_date) VALUES (9, 3, 10, 'P-10', 'A-10',"
            " 'bracket', 200, 'EA', 1.5, :p, '', :now, :now)"), {"now": now, "p": promised})
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def erp_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (f"sqlite:///{tmp_path}/erp.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    create_purchasing(url)
    return url


def test_unknown_po_posts_once_waits_and_is_matched_when_it_appears(erp_url: str) -> None:
    clock = Clock()
    memory = Memory(clock=clock)
    interp = interpreter(erp_url, memory=memory, recheck_every=60.0)
    (unmatched,) = told(interp, UNKNOWN)
    assert unmatched == Told("asn.mismatch", "new", WAITING, THREAD, None, unmatched.id)
    [(_key, item)] = memory.pending_items()
    assert (item["po"], item["asn"], item["until"] - item["since"]) == (
        "4599999", "0001234", 14 * 86_400)
    # another document of the source before the PO exists: the ASN keeps waiting, silently
    clock.now += 120
    assert [p.summary for p in told(interp, x12_214(1, [("AF", "NS", "20261121", "0800")]))
            ] == ["Carrier ABF: shipment PRO7781 (PO 4500012) departed (pick-up location, "
                  "21 Nov)"]
    insert_po(erp_url)
    # the next document (any) finds the PO: the ASN is matched, as an update of its thread
    clock.now += 120
    posts = told(interp, x12_214(2, [("X6", "NS", "20261122", "0800")]))
    matched = posts[0]
    assert matched == Told("shipment.delayed", "update", MATCHED, THREAD, unmatched.id,
                           matched.id)
    assert len(posts) == 2 and posts[1].thread != THREAD  # the 214's own milestone follows
    assert memory.pending_items() == []
    # the same ASN again: known, nothing new
    assert told(interp, UNKNOWN) == []


def test_the_match_is_checked_no_more_often_than_configured(erp_url: str) -> None:
    clock = Clock()
    interp = interpreter(erp_url, memory=Memory(clock=clock), recheck_every=300.0)
    told(interp, UNKNOWN)
    insert_po(erp_url)
    clock.now += 100
    assert told(interp, x12_214(1, [("AF", "NS", "20261121", "0800")]))[0].thread != THREAD
    clock.now += 250  # 350 s after the ASN: due now
    assert told(interp, x12_214(2, [("X6", "NS", "20261122", "0800")]))[0].summary == MATCHED


def test_a_waiting_asn_expires(erp_url: str) -> None:
    clock = Clock()
    memory = Memory(clock=clock)
    interp = interpreter(erp_url, memory=memory, pending_for=3 * 86_400.0, recheck_every=0.0)
    (unmatched,) = told(interp, UNKNOWN)
    assert unmatched.summary.endswith("waiting up to 3 days for it")
    clock.now += 3 * 86_400 + 1
    insert_po(erp_url)
    # the wait is over, and that is said in the ASN's thread (an update of "unmatched"), once
    expired, status = told(interp, x12_214(1, [("AF", "NS", "20261121", "0800")]))
    assert expired == Told("asn.expired", "update", EXPIRED, THREAD, unmatched.id, expired.id)
    assert status.thread != THREAD
    assert memory.pending_items() == []
    assert told(interp, x12_214(2, [("X6", "NS", "20261122", "0800")]))[0].thread != THREAD


def test_a_cancel_ends_the_wait(erp_url: str) -> None:
    memory = Memory()
    interp = interpreter(erp_url, memory=memory, recheck_every=0.0)
    (unmatched,) = told(interp, UNKNOWN)
    cancel = UNKNOWN.replace(b"BGM+351+0001234+9", b"BGM+351+0001234+1").replace(
        b"DES0001", b"DES0002")
    (undo,) = told(interp, cancel)
    assert (undo.type, undo.relation, undo.refers_to, undo.thread) == (
        "asn.cancelled", "retraction", unmatched.id, THREAD)
    assert memory.pending_items() == []
    insert_po(erp_url)
    assert told(interp, x12_214(1, [("AF", "NS", "20261121", "0800")]))[0].thread != THREAD


def _drop(inbox: Path, name: str, raw: bytes) -> None:
    temp = inbox.parent / (name + ".tmp")
    temp.write_bytes(raw)
    temp.replace(inbox / name)


def test_through_a_daemon_and_the_pending_listing(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    erp = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(erp)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = _daemon_config(tmp_path, inbox)
    path = tmp_path / "floorstream.yaml"
    path.write_text(config)
    runner = DaemonRunner(config)
    with runner.start():
        _drop(inbox, "desadv.edi", UNKNOWN)
        runner.wait_posts(1)
        wait_for(lambda: not (inbox / "desadv.edi").exists())
    assert main(["supply", "pending", "-c", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SOURCE", "PO", "ASN", "WAITING", "SINCE", "EXPIRES", "THREAD"]
    assert out[1].split()[:3] == ["supply", "4599999", "0001234"]
    assert out[1].endswith(THREAD)
    insert_po(erp)
    with runner.start():
        # any later document of the source makes it look the PO up again
        _drop(inbox, "214.edi", x12_214(1, [("AF", "NS", "20261121", "0800")]))
        runner.wait_posts(3)
    store = Store.open(runner.store_url)
    try:
        story = store.thread(THREAD)
    finally:
        store.close()
    assert [(p.relation, p.summary) for p in story] == [("new", WAITING), ("update", MATCHED)]
    assert story[1].refers_to == story[0].id
    assert story[1].as_activity()["inReplyTo"] == f"urn:floorstream:post:{story[0].id}"
    assert main(["supply", "pending", "-c", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "no ASN is waiting for its PO"


def _daemon_config(tmp_path: Path, inbox: Path, **keys: str) -> str:
    extra = "".join(f"    {k}: {v}\n" for k, v in keys.items())
    return f"""
store: sqlite:///{tmp_path}/fs.db
default_team: purchasing
sources:
  - name: supply
    adapter: supply.folder
    path: {inbox}
    settle: 0
    poll: 0.05
    recheck_every: 0s
    carriers: {{ABFS: ABF}}
    erp: {{url: "sqlite:///{tmp_path}/erp.db", supplier_names: {{V100: Acme}}, cache_s: 0}}
{extra}"""


def _thread(runner: DaemonRunner) -> list[tuple[str, str, str]]:
    store = Store.open(runner.store_url)
    try:
        return [(p.type, p.relation, p.summary) for p in store.thread(THREAD)]
    finally:
        store.close()


def test_an_idle_source_matches_the_po_when_it_appears(tmp_path: Path) -> None:
    """No file comes after the ASN: the folder's idle polls look the PO up again."""
    create_purchasing(f"sqlite:///{tmp_path}/erp.db")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    runner = DaemonRunner(_daemon_config(tmp_path, inbox))
    with runner.start():
        _drop(inbox, "desadv.edi", UNKNOWN)
        runner.wait_posts(1)
        insert_po(f"sqlite:///{tmp_path}/erp.db")
        runner.wait_posts(2)
        # sentinel: a carrier report after the match; once it is in, nothing else came
        _drop(inbox, "214.edi", x12_214(1, [("AF", "NS", "20261121", "0800")]))
        runner.wait_posts(3)
        thread = _thread(runner)
    assert thread == [("asn.mismatch", "new", WAITING), ("shipment.delayed", "update", MATCHED)]


def test_an_idle_source_posts_the_expiry_once(tmp_path: Path) -> None:
    create_purchasing(f"sqlite:///{tmp_path}/erp.db")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    runner = DaemonRunner(_daemon_config(tmp_path, inbox, pending_for="1s"))
    with runner.start():
        _drop(inbox, "desadv.edi", UNKNOWN)
        runner.wait_posts(2)  # "unmatched", then (a second later, no file) "expired"
        _drop(inbox, "214.edi", x12_214(1, [("AF", "NS", "20261121", "0800")]))
        runner.wait_posts(3)  # the sentinel
        thread = _thread(runner)
    waiting = WAITING.replace("up to 14 days", "up to 0 days")
    assert thread == [("asn.mismatch", "new", waiting),
                      ("asn.expired", "update", "ASN 0001234 for PO 4599999 expired unmatched "
                                                "after 1 s: the PO never appeared in the ERP")]


def test_pending_listing_without_a_supply_source(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "floorstream.yaml"
    path.write_text(f"store: sqlite:///{tmp_path}/fs.db\ndefault_team: t\nsources: []\n")
    assert main(["supply", "pending", "-c", str(path)]) == 1
    assert "no supply source" in capsys.readouterr().err


def test_an_idle_inbox_matches_the_po_when_it_appears(tmp_path: Path) -> None:
    """The push inbox has no scan: it looks the waiting POs up once a second on its own."""
    from .test_http import _free_port, _post, _reachable

    erp = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(erp)
    port = _free_port()
    runner = DaemonRunner(f"""
store: sqlite:///{tmp_path}/fs.db
default_team: purchasing
sources:
  - name: supply
    adapter: supply.inbox
    port: {port}
    secret: s3cret
    recheck_every: 0s
    erp: {{url: "{erp}", supplier_names: {{V100: Acme}}, cache_s: 0}}
""")
    with runner.start():
        wait_for(lambda: _reachable(port))
        inbox = f"http://127.0.0.1:{port}/inbox"
        status, _answer = _post(inbox, UNKNOWN, {"X-Floorstream-Secret": "s3cret"})
        assert status == 200
        insert_po(erp)
        runner.wait_posts(2)  # nobody pushed anything since
        # sentinel: a report pushed after the match; once it is in, nothing else came
        status, _answer = _post(inbox, x12_214(1, [("AF", "NS", "20261121", "0800")]),
                                {"X-Floorstream-Secret": "s3cret"})
        assert status == 200
        runner.wait_posts(3)
        thread = _thread(runner)
    assert thread == [("asn.mismatch", "new", WAITING), ("shipment.delayed", "update", MATCHED)]
