"""Units of measure (issue 11, item 5): quantities are compared in the PO line's unit.

PO 4500012 of the supply tests' ERP orders line 10 = 200 EA and line 20 = 50 EA. A supplier
CSV ships 6 EA of line 10 and 2 CS of line 20: without a conversion the post lists both
amounts in their units and flags the line, never "8 pcs"; with a conversion (the source's
``units:`` map, or conversion columns of the ERP query) both are counted in pieces. Codes that
are the same unit (EA, PCE, C62) need no conversion. Over- and under-shipment tolerances are
source settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from floorstream.adapters.supply.correlation import DEFAULT_QUERY
from support.erp import create_purchasing

from .stories import brief, events, interpreter, told

MIXED = (b"po_number;po_line;supplier_item;qty;uom;ship_date\n"
         b"4500012;10;A-10;6;EA;2026-11-20\n4500012;20;A-20;2;CS;2026-11-20\n")


@pytest.fixture
def erp(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    return url


def test_without_a_conversion_the_units_are_listed_and_the_line_flagged(erp: str) -> None:
    posts = told(interpreter(erp), MIXED, name="asn-7.csv")
    assert brief(posts) == [
        ("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 6 pcs + 2 cases, sent 20 "
         "Nov"),
        ("asn.mismatch", "update", "ASN asn-7.csv ships 2 cases of PO 4500012 line 20, ordered "
         "in pcs: no conversion from CS to EA is configured")]
    assert posts[1].refers_to == posts[0].id
    assert not any("8 pcs" in p.summary or " 8 " in p.summary for p in posts)


def test_a_configured_conversion_counts_in_the_po_unit(erp: str) -> None:
    posts = told(interpreter(erp, units={"CS": {"EA": 12}}), MIXED, name="asn-7.csv")
    assert brief(posts) == [
        ("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 30 of 250 pcs, sent 20 "
         "Nov")]


def test_a_conversion_from_the_erp_query(erp: str) -> None:
    """The query may return an alternative unit of the line and its factor (SAP MARM, an Odoo
    UoM category, a pack-size column): 1 alt_uom = alt_factor of uom."""
    query = DEFAULT_QUERY.replace(
        "l.deletion_flag AS deletion_flag",
        "l.deletion_flag AS deletion_flag, CASE WHEN l.line_no = 20 THEN 'CS' END AS alt_uom, "
        "CASE WHEN l.line_no = 20 THEN 10 END AS alt_factor")
    posts = told(interpreter(erp, query=query), MIXED, name="asn-7.csv")
    assert brief(posts) == [
        ("shipment.dispatched", "new", "PO 4500012 from Acme: shipped 26 of 250 pcs, sent 20 "
         "Nov")]


def test_codes_of_the_same_unit_need_no_conversion(erp: str) -> None:
    same = MIXED.replace(b";2;CS;", b";4;PCE;").replace(b";6;EA;", b";6;C62;")
    assert [p.summary for p in told(interpreter(erp), same, name="asn-8.csv")] == [
        "PO 4500012 from Acme: shipped 10 of 250 pcs, sent 20 Nov"]


def test_without_an_erp_amounts_in_different_units_are_not_summed() -> None:
    assert [p.summary for p in told(interpreter(None), MIXED, name="asn-7.csv")] == [
        "PO 4500012: shipped 6 pcs + 2 cases, sent 20 Nov"]


def test_over_shipment_tolerance(erp: str) -> None:
    over = MIXED.replace(b";2;CS;", b";55;EA;")  # 55 of the 50 ordered on line 20: +10 %
    strict = told(interpreter(erp), over, name="asn-9.csv")
    assert [p.summary for p in strict][1:] == [
        "ASN asn-9.csv ships 55 pcs of PO 4500012 line 20, more than the 50 ordered"]
    tolerant = told(interpreter(erp, over_tolerance=0.10), over, name="asn-9.csv")
    assert [p.type for p in tolerant] == ["shipment.dispatched"]


def test_under_shipment_tolerance(erp: str) -> None:
    """240 of 250: partial (news for planning, a notice) unless 4 % short is within the
    tolerance."""
    short = MIXED.replace(b";6;EA;", b";190;EA;").replace(b";2;CS;", b";50;EA;")
    (partial,) = events(interpreter(erp), short, name="asn-10.csv")
    assert (partial.severity.label, partial.fields["partial"]) == ("notice", True)
    (complete,) = events(interpreter(erp, under_tolerance=0.05), short, name="asn-10.csv")
    assert (complete.severity.label, complete.fields["partial"]) == ("info", False)
