"""ERP flags by their SQL type (issue 11, item 7), and the ERP tables the docs describe.

A PO-line deletion flag may be a real boolean (``deletion_flag boolean default false``), an
integer (0/1) or SAP's character indicator (``''`` active, ``'L'`` deleted, ``'S'``
blocked). Each is created on SQLite, PostgreSQL and MariaDB and read through the default
query: only the flagged line is deleted (before, ``bool(str(False))`` marked every line of a
boolean column deleted).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from floorstream.adapters.supply.correlation import deletion_flag

from .stories import brief, interpreter, told

ROOT = Path(__file__).parent.parent.parent

ASN = (b"po_number;po_line;supplier_item;qty;uom;ship_date\n"
       b"4500077;10;A-10;5;EA;2026-11-20\n4500077;20;A-20;5;EA;2026-11-20\n"
       b"4500077;30;A-30;5;EA;2026-11-20\n")

#: flag column type, (line 10 default, line 20, line 30) values
FLAGS = {
    "boolean": ("BOOLEAN NOT NULL DEFAULT FALSE", (None, "TRUE", "FALSE")),
    "integer": ("INTEGER NOT NULL DEFAULT 0", (None, "1", "0")),
    "character": ("CHAR(1) NOT NULL DEFAULT ''", (None, "'L'", "'S'")),
}


def _erp(url: str, column: str, values: tuple[str | None, ...]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE purchase_order (id INTEGER PRIMARY KEY, "
                          "name VARCHAR(40) NOT NULL, vendor_code VARCHAR(40) NOT NULL, "
                          "date_planned TIMESTAMP NULL)"))
        conn.execute(text("CREATE TABLE purchase_order_line (id INTEGER PRIMARY KEY, "
                          "order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, "
                          "vendor_product_code VARCHAR(40), product_qty NUMERIC(16,4) NOT NULL,"
                          " qty_received NUMERIC(16,4), uom VARCHAR(10) NOT NULL, "
                          f"date_planned TIMESTAMP NULL, deletion_flag {column})"))
        conn.execute(text("INSERT INTO purchase_order VALUES (1, '4500077', 'V100', :d)"),
                      {"d": datetime(2026, 11, 29)})
        for index, value in enumerate(values, start=1):
            flag = "" if value is None else ", deletion_flag"
            conn.execute(text(
                f"INSERT INTO purchase_order_line (id, order_id, line_no, vendor_product_code, "
                f"product_qty, uom, date_planned{flag}) VALUES ({index}, 1, {index * 10}, "
                f"'A-{index * 10}', 10, 'EA', :d{', ' + value if value else ''})"),
                {"d": datetime(2026, 11, 29)})
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url.replace("floorstream.db", "erp.db")


@pytest.mark.parametrize("kind", list(FLAGS))
def test_deletion_flags_by_sql_type(database: str, kind: str) -> None:
    column, values = FLAGS[kind]
    _erp(database, column, values)
    posts = told(interpreter(database), ASN, name="asn-77.csv")
    expected = [("shipment.dispatched", "new", "PO 4500077 from Acme: shipped 15 pcs, sent 20 "
                 "Nov"),
                ("asn.mismatch", "update", "ASN asn-77.csv refers to PO 4500077 line 20, which "
                 "is deleted in the ERP")]
    if kind == "character":  # SAP LOEKZ 'S': blocked, not deleted
        expected.append(("asn.mismatch", "update", "ASN asn-77.csv refers to PO 4500077 line "
                         "30, which is blocked in the ERP"))
    assert brief(posts) == expected


@pytest.mark.parametrize(("value", "meaning"), [
    (None, None), (False, None), (True, "deleted"), (0, None), (1, "deleted"),
    (Decimal("0"), None), (Decimal("1"), "deleted"), ("", None), (" ", None), ("L", "deleted"),
    ("X", "deleted"), ("S", "blocked"), ("N", None), ("false", None), ("0", None),
    ("true", "deleted"), (b"\x00", None), (b"\x01", "deleted")])
def test_flag_values(value: object, meaning: str | None) -> None:
    assert deletion_flag(value) == meaning


def test_the_docs_describe_the_erp_tables_and_cite_a_ddl_that_exists() -> None:
    docs = (ROOT / "docs" / "supply.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"[\w/.-]+\.sql", docs))
    assert "tests/supply/erp-subset-ddl.sql" in cited
    for path in cited:
        assert (ROOT / path).is_file(), path
    for column in ("deletion_flag", "alt_uom", "alt_factor", "line_no", "vendor_product_code"):
        assert column in docs
