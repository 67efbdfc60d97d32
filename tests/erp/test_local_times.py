"""Timestamps stored without a zone are read in the ERP's own convention.

Odoo writes every datetime in UTC whatever its users' zone; Frappe/ERPNext, SAP tables and
plain databases write the site's local time. A cursor row's ``write_date``/``modified`` is
the post's "when it happened": read as UTC, a Frappe site in Berlin had every post an hour
(in summer two) in the future. The source's ``time_zone`` now applies to naive cursor values
and Frappe's tabVersion times, except on Odoo, which stays UTC even when ``time_zone`` names
the plant's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from .idioms_support import POLLED, IdiomRun, config, create, execute

DDL = """
CREATE TABLE work_order (
    id INTEGER PRIMARY KEY, name {vtext}, state {vtext}, modified {ts})
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    {version}
    time_zone: Europe/Berlin
    table: work_order
    cursor: modified
    track: [state]
    subject: "{{{{ row.name }}}}"
"""


@pytest.mark.parametrize(("version", "hour"), [("", 9), ("erp_version: odoo 17", 10)])
def test_naive_cursor_times_are_read_in_the_erps_zone(sqlite_url: str, tmp_path: Path,
                                                      version: str, hour: int) -> None:
    engine = create(sqlite_url, DDL)
    insert = "INSERT INTO work_order VALUES (:i, :n, 'draft', :m)"
    execute(engine, insert, {"i": 1, "n": "WO-1", "m": datetime(2026, 11, 25, 9, 0)},
            {"i": 9000, "n": "WO-9000", "m": datetime(2026, 11, 25, 9, 0)})
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=sqlite_url, version=version)))
    with run:
        run.start()
        # 10:15 on the wall clock in Berlin (CET, UTC+1) for a local-time ERP; for Odoo the
        # same stored value is 10:15 UTC
        execute(engine, "UPDATE work_order SET state = 'done', modified = :m WHERE id = 1",
                {"m": datetime(2026, 11, 25, 10, 15)})
        posts = run.behind(
            lambda: execute(engine, "UPDATE work_order SET state = 'seen', modified = :m "
                                    "WHERE id = 9000", {"m": datetime(2026, 11, 25, 10, 16)}),
            f"WO-9000: state draft → seen{POLLED}")
        assert [p.summary for p in posts] == [f"WO-1: state draft → done{POLLED}"]
        assert posts[0].occurred_at == datetime(2026, 11, 25, hour, 15, tzinfo=UTC)


PLANNED = """
CREATE TABLE work_order (
    id INTEGER PRIMARY KEY, name {vtext}, state {vtext}, date_start {ts}, modified {ts})
"""

DISPLAYED = """{display}sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    {version}
    time_zone: Europe/Berlin
    table: work_order
    cursor: modified
    track: [state, date_start]
    labels: {{date_start: planned start}}
    subject: "{{{{ row.name }}}}"
"""


@pytest.mark.parametrize(("version", "display", "expected"), [
    # Odoo stores UTC: on the plant's clock, labelled, in winter and in summer
    ("erp_version: odoo 17", "display: {timezone: Europe/Berlin}\n",
     "planned start 25 Nov 2026 10:15 CET → 15 Jul 2026 11:15 CEST"),
    # no display zone: each time in the zone the ERP stores it in, labelled
    ("erp_version: odoo 17", "", "planned start 25 Nov 2026 09:15 UTC → 15 Jul 2026 09:15 UTC"),
    ("", "", "planned start 25 Nov 2026 09:15 CET → 15 Jul 2026 09:15 CEST"),
    # a local-time ERP in Berlin read by a plant in Chicago
    ("", "display: {timezone: America/Chicago}\n",
     "planned start 25 Nov 2026 02:15 CST → 15 Jul 2026 02:15 CDT"),
])
def test_erp_times_in_posts_are_shown_on_the_plants_clock(
        sqlite_url: str, tmp_path: Path, version: str, display: str, expected: str) -> None:
    """``display.timezone``: a datetime column's before and after are shown in the plant's
    zone with its abbreviation, never as UTC that reads like local time."""
    engine = create(sqlite_url, PLANNED)
    insert = "INSERT INTO work_order VALUES (:i, :n, 'draft', :s, :m)"
    execute(engine, insert, {"i": 1, "n": "WO-1", "s": datetime(2026, 11, 25, 9, 15),
                             "m": datetime(2026, 11, 25, 9, 0)},
            {"i": 9000, "n": "WO-9000", "s": None, "m": datetime(2026, 11, 25, 9, 0)})
    run = IdiomRun(config(tmp_path / "fs.db", DISPLAYED.format(
        url=sqlite_url, version=version, display=display)))
    with run:
        run.start()
        execute(engine, "UPDATE work_order SET date_start = :s, modified = :m WHERE id = 1",
                {"s": datetime(2026, 7, 15, 9, 15), "m": datetime(2026, 11, 25, 10, 15)})
        posts = run.behind(
            lambda: execute(engine, "UPDATE work_order SET state = 'seen', modified = :m "
                                    "WHERE id = 9000", {"m": datetime(2026, 11, 25, 10, 16)}),
            f"WO-9000: state draft → seen{POLLED}")
        assert [p.summary for p in posts] == [f"WO-1: {expected}{POLLED}"]


def test_check_names_an_unknown_display_zone(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from floorstream.cli import main

    path = tmp_path / "fs.yaml"
    path.write_text("display: {timezone: Europe/Berlinn}\n", encoding="utf-8")
    assert main(["check", "-c", str(path)]) != 0
    said = capsys.readouterr()
    assert "display.timezone" in said.out + said.err
    assert "unknown time zone 'Europe/Berlinn'" in said.out + said.err
