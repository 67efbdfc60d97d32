"""SAP ALPHA in PO matching: ``4500012`` and ``0004500012`` are one purchase order.

An SAP replica stores EKKO-EBELN left-padded to ten digits; a partner's ASN or a carrier's
report may write the number either way. The PO lookup tries the number as written, then its
other ALPHA forms (``erp.po_alpha``, 10 by default), and stories meet on the canonical form.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from floorstream.plugin import alpha_in, alpha_out
from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import brief, interpreter, told

ASN = (b"po_number;po_line;supplier_item;qty;uom;ship_date\n"
       b"{po};10;A-10;120;EA;2026-11-20\n")


def _asn(po: str) -> bytes:
    return ASN.replace(b"{po}", po.encode())


def _erp(tmp_path: Path, stored: str) -> str:
    """The supply tests' ERP, with PO 4500012 stored as ``stored``."""
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE purchase_order SET name = :s WHERE name = '4500012'"),
                     {"s": stored})
    engine.dispose()
    return url


SHIPPED = ("PO {po} from Acme: shipped 120 of 200 pcs, sent 20 Nov")


def test_the_plugin_api_converts_as_sap_does() -> None:
    assert alpha_out("0004500012") == "4500012"
    assert alpha_out("0000") == "0"
    assert alpha_out("A-100") == "A-100"
    assert alpha_in("4500012", 10) == "0004500012"
    assert alpha_in("45000120001", 10) == "45000120001"  # too long: as it is


def test_an_asn_without_zeros_finds_the_po_sap_stores_with_them(tmp_path: Path) -> None:
    interp = interpreter(_erp(tmp_path, "0004500012"))
    assert brief(told(interp, _asn("4500012"), name="asn-7.csv")) == [
        ("shipment.dispatched", "new", SHIPPED.format(po="4500012"))]


def test_an_asn_with_zeros_finds_the_po_stored_without(tmp_path: Path) -> None:
    interp = interpreter(_erp(tmp_path, "4500012"))
    assert brief(told(interp, _asn("0004500012"), name="asn-7.csv")) == [
        ("shipment.dispatched", "new", SHIPPED.format(po="0004500012"))]


def test_without_po_alpha_only_the_number_as_written_matches(tmp_path: Path) -> None:
    url = _erp(tmp_path, "0004500012")
    interp = interpreter(url, po_alpha=None)
    [(kind, _relation, summary)] = brief(told(interp, _asn("4500012"), name="asn-7.csv"))
    assert (kind, summary) == ("asn.mismatch", "ASN asn-7.csv refers to PO 4500012, which is "
                               "not in the ERP (yet): waiting up to 14 days for it")


def test_a_report_naming_the_po_with_zeros_joins_the_asn_story(tmp_path: Path) -> None:
    interp = interpreter(_erp(tmp_path, "0004500012"))
    (asn,) = told(interp, _asn("4500012"), name="asn-7.csv")
    report = x12_214(1, [("AF", "NS", "20261121", "0800")], po="0004500012", pro="PRO9")
    (status,) = told(interp, report)
    assert (status.thread, status.relation) == (asn.thread, "update")
