"""tabVersion values as the typed values they were: the site's number and date formats.

Frappe writes ``get_formatted`` text into its Version log ("1,000.000", "25-11-2026"); the
format is the site's (System Settings, kept in ``tabSingles``), or the source's ``formats:``
when given, else Frappe's defaults (``#,###.##``, ``dd-mm-yyyy``). With ``tabDocField`` the
field's type decides; without it only an exact match of the format is taken for a number.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from floorstream.adapters.erp.formats import SiteFormats, parse_value

from .idioms_support import IdiomRun, config, create, execute, post_lines


@pytest.mark.parametrize(("number", "text", "expected"), [
    ("#,###.##", "1,000.000", Decimal("1000.000")),
    ("#,###.##", "-1,234,567.5", Decimal("-1234567.5")),
    ("#,###.##", "₹ 1,000.00", Decimal("1000.00")),
    ("#.###,##", "1.000,000", Decimal("1000.000")),
    ("#.###,##", "1.250,5 €", Decimal("1250.5")),
    ("# ###,##", "12 345,67", Decimal("12345.67")),
    ("#'###.##", "12'345.67", Decimal("12345.67")),
    ("#,##,###.##", "12,34,567.89", Decimal("1234567.89")),
    ("#.###", "1.000", Decimal("1000")),
])
def test_numbers_in_the_sites_format(number: str, text: str, expected: Decimal) -> None:
    assert parse_value(text, SiteFormats(number=number)) == expected


@pytest.mark.parametrize("text", ["00123", "v1.2.3", "1,00,0.5", "SKU-1,000", "12 pcs"])
def test_text_that_only_looks_like_a_number_stays_text(text: str) -> None:
    assert parse_value(text, SiteFormats()) == text


def test_dates_and_types() -> None:
    default = SiteFormats()
    assert parse_value("25-11-2026", default) == date(2026, 11, 25)
    assert parse_value("25-11-2026 14:30:05", default) == datetime(2026, 11, 25, 14, 30, 5)
    us = SiteFormats(date="mm/dd/yyyy")
    assert parse_value("11/25/2026", us) == date(2026, 11, 25)
    assert parse_value("31-02-2026", default) == "31-02-2026"  # no such day: kept as text
    # a known type decides: a Data field stays text, an Int is an int, a Check a bool
    assert parse_value("1,000", default, "Data") == "1,000"
    assert parse_value("1,000", default, "Int") == 1000
    assert parse_value("500", default, "Float") == Decimal("500")
    assert parse_value("1", default, "Check") is True
    assert parse_value(0, default) == 0  # falsy values arrive unformatted


DDL = """
CREATE TABLE "tabWork Order" (
    name {vtext} PRIMARY KEY, qty {num} NOT NULL, drawing_rev {vtext},
    planned_start_date {ts}, docstatus INTEGER NOT NULL DEFAULT 0, modified {ts});
CREATE TABLE "tabVersion" (
    name {vtext} PRIMARY KEY, creation {ts} NOT NULL, owner {vtext} NOT NULL,
    ref_doctype {vtext} NOT NULL, docname {vtext} NOT NULL, data TEXT NOT NULL);
CREATE TABLE "tabSingles" (doctype {vtext} NOT NULL, field {vtext} NOT NULL, value TEXT);
CREATE TABLE "tabDocField" (
    parent {vtext} NOT NULL, fieldname {vtext} NOT NULL, fieldtype {vtext} NOT NULL,
    options TEXT)
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: frappe 15
{formats}    table: tabWork Order
    key: name
    mode: audit
    audit: {{style: frappe, object: Work Order}}
    subject: "{{{{ row.name }}}}"
    track: [qty, drawing_rev, planned_start_date]
    labels: {{qty: quantity, drawing_rev: drawing revision, planned_start_date: planned start}}
"""


def _site(url: str) -> object:
    engine = create(url, DDL)
    execute(engine, 'INSERT INTO "tabSingles" VALUES (\'System Settings\', :f, :v)',
            {"f": "number_format", "v": "#.###,##"}, {"f": "date_format", "v": "dd.mm.yyyy"},
            {"f": "time_format", "v": "HH:mm"})
    execute(engine, 'INSERT INTO "tabDocField" VALUES (\'Work Order\', :f, :t, NULL)',
            {"f": "qty", "t": "Float"}, {"f": "drawing_rev", "t": "Data"},
            {"f": "planned_start_date", "t": "Datetime"})
    execute(engine, "INSERT INTO \"tabWork Order\" (name, qty, drawing_rev) VALUES "
            "('MFG-WO-2026-00007', 1000, '1.200')")
    return engine


def _version(engine: object, n: int, docname: str, changed: list[list[object]]) -> None:
    execute(engine,  # type: ignore[arg-type]
            'INSERT INTO "tabVersion" VALUES (:v, :c, \'jane\', \'Work Order\', :d, :j)',
            {"v": f"v{n}", "c": datetime(2026, 11, 25, 10, 0, n, 5000), "d": docname,
             "j": json.dumps({"changed": changed})})


def test_the_sites_own_formats_and_field_types(store_url: str, tmp_path: Path) -> None:
    engine = _site(store_url)
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, formats="")))
    with run:
        run.start()
        _version(engine, 1, "MFG-WO-2026-00007", [
            ["qty", "1.000,000", "1.250,500"], ["drawing_rev", "1.200", "1.300"],
            ["planned_start_date", "25.11.2026 08:00", "26.11.2026 06:30"]])
        posts = run.behind(lambda: _version(engine, 2, "SENTINEL-1", [["qty", "1", "2"]]),
                           "SENTINEL-1: quantity 1 → 2")
        assert post_lines(posts) == [
            ("MFG-WO-2026-00007: quantity 1000 → 1250.5", "record.field_changed",
             "MFG-WO-2026-00007", "new"),
            # a Data field: "1.200" is a revision, not one thousand two hundred
            ("MFG-WO-2026-00007: drawing revision 1.200 → 1.300", "record.field_changed",
             "MFG-WO-2026-00007", "new"),
            ("MFG-WO-2026-00007: planned start 25 Nov 2026 08:00 UTC → 26 Nov 2026 06:30 UTC",
             "record.field_changed", "MFG-WO-2026-00007", "new")]


def test_formats_in_the_config_win(sqlite_url: str, tmp_path: Path) -> None:
    engine = _site(sqlite_url)
    formats = "    formats: {number: '#,###.##', date: mm/dd/yyyy}\n"
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=sqlite_url, formats=formats)))
    with run:
        run.start()
        _version(engine, 1, "MFG-WO-2026-00007", [["qty", "1,000.000", "1,250.500"],
                                                  ["planned_start_date", "11/25/2026 08:00",
                                                   "11/26/2026 06:30"]])
        posts = run.behind(lambda: _version(engine, 2, "SENTINEL-1", [["qty", "1", "2"]]),
                           "SENTINEL-1: quantity 1 → 2")
        assert [p.summary for p in posts] == [
            "MFG-WO-2026-00007: quantity 1000 → 1250.5",
            "MFG-WO-2026-00007: planned start 25 Nov 2026 08:00 UTC → 26 Nov 2026 06:30 UTC"]
