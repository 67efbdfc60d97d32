"""SAP change documents (CDHDR/CDPOS) with ALPHA numbers and the plant's clock.

Order and material numbers are stored ALPHA-padded (``000001000123``) and shown, matched and
routed without the zeros (``1000123``): ``alpha:`` for display, ``row_attrs`` for routes and
other sources (an MES or an EDI partner writes ``1000123``). CDHDR ``UDATE``/``UTIME`` are the
app server's local time: read in ``time_zone`` and converted to UTC once (winter, summer, and
the hour that occurs twice in October).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from floorstream.adapters.erp.alpha import alpha_in, alpha_out, canonical
from floorstream.adapters.erp.auditlogs import sap_time
from support.erp import now_sql

from .idioms_support import IdiomRun, config, create, execute, post_lines, sql

DDL = """
CREATE TABLE production_order (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL UNIQUE, product_code {vtext} NOT NULL,
    state {vtext} NOT NULL, write_date {ts} NOT NULL);
CREATE TABLE change_header (
    objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL, changenr {vtext} NOT NULL,
    username {vtext} NOT NULL, udate {vtext} NOT NULL, utime {vtext} NOT NULL, tcode {vtext},
    change_ind {vtext} NOT NULL, PRIMARY KEY (objectclas, objectid, changenr));
CREATE TABLE change_item (
    objectclas {vtext} NOT NULL, objectid {vtext} NOT NULL, changenr {vtext} NOT NULL,
    tabname {vtext} NOT NULL, tabkey {vtext} NOT NULL, fname {vtext} NOT NULL,
    chngind {vtext} NOT NULL, unit_old TEXT, unit_new TEXT, cuky_old TEXT, cuky_new TEXT,
    value_new TEXT, value_old TEXT,
    PRIMARY KEY (objectclas, objectid, changenr, tabname, tabkey, fname, chngind))
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap s4
    time_zone: Europe/Berlin
    table: production_order
    key: name
    mode: audit
    audit: {{style: sap, object: ORDER}}
    alpha: [name, product_code]
    subject: "{{{{ row.name }}}}"
    track: [state, product_code]
    labels: {{product_code: material}}
    row_attrs: {{order: name, material: product_code}}
routes:
  - match: {{attrs: {{order: "1000123"}}}}
    teams: [line-3]
"""

ORDER = "000001000123"


class Plant:
    def __init__(self, url: str) -> None:
        self.engine = create(url, DDL)
        self.number = 0
        execute(self.engine, "INSERT INTO production_order VALUES (1, :n, "
                f"'000000000000004711', 'CRTD', {now_sql(self.engine)})", {"n": ORDER})

    def change(self, objectid: str, when: tuple[str, str], fname: str, old: str,
               new: str) -> None:
        """One change document, header and item committed together as SAP does."""
        self.number += 1
        nr = f"{self.number:010d}"
        with self.engine.begin() as conn:
            conn.execute(text(sql(self.engine, "INSERT INTO change_header VALUES ('ORDER', :o, "
                                  ":nr, 'AMILLER', :d, :t, 'CO02', 'U')")),
                         {"o": objectid, "nr": nr, "d": when[0], "t": when[1]})
            conn.execute(text(sql(self.engine, "INSERT INTO change_item (objectclas, objectid, "
                                  "changenr, tabname, tabkey, fname, chngind, value_old, "
                                  "value_new) VALUES ('ORDER', :o, :nr, 'AFKO', :o, :f, 'U', "
                                  ":old, :new)")),
                         {"o": objectid, "nr": nr, "f": fname,
                          "old": old.ljust(20), "new": new.ljust(20)})  # CHAR fields


def test_alpha_numbers_and_the_plants_clock(store_url: str, tmp_path: Path) -> None:
    plant = Plant(store_url)
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url)))
    with run:
        run.start()
        plant.change(ORDER, ("20261125", "101500"), "state", "CRTD", "REL")  # CET, UTC+1
        plant.change(ORDER, ("20260715", "101500"), "product_code", "000000000000004711",
                     "000000000000004712")  # CEST, UTC+2
        plant.change(ORDER, ("20261025", "025930"), "state", "REL", "TECO")  # occurs twice
        posts = run.behind(lambda: plant.change("000000009000", ("20261125", "120000"),
                                                "state", "CRTD", "REL"),
                           "9000: state CRTD → REL")
        assert post_lines(posts) == [
            ("1000123: state CRTD → REL", "record.field_changed", "1000123", "new"),
            ("1000123: material 4711 → 4712", "record.field_changed", "1000123", "new"),
            ("1000123: state REL → TECO", "record.field_changed", "1000123", "new")]
        assert [p.occurred_at for p in posts] == [
            datetime(2026, 11, 25, 9, 15, tzinfo=UTC), datetime(2026, 7, 15, 8, 15, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 59, 30, tzinfo=UTC)]  # the first 02:59:30, CEST
        # routes and other sources meet the canonical numbers
        assert [p.teams for p in posts] == [("line-3",)] * 3
        assert {"order:1000123", "material:4712", "by:AMILLER"} <= set(posts[1].tags)


def test_alpha_conversion() -> None:
    assert alpha_out("000001000123") == "1000123"
    assert alpha_out("0000") == "0"
    assert alpha_out("A-100 ") == "A-100"  # not all digits: SAP leaves it alone
    assert alpha_out(None) is None
    assert alpha_in("1000123", 12) == "000001000123"
    assert alpha_in(1000123, 12) == "000001000123"
    assert alpha_in("A-100", 12) == "A-100"
    assert alpha_in("1234567890123", 12) == "1234567890123"  # too long: as it is
    assert canonical("000001000123") == canonical("1000123") == canonical(" 1000123") \
        == "1000123"


@pytest.mark.parametrize(("udate", "utime", "expected"), [
    ("20261125", "101500", datetime(2026, 11, 25, 9, 15, tzinfo=UTC)),
    ("20260329", "023000", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # skipped hour
    ("00000000", "000000", None),  # SAP's initial date
    ("2026112", "101500", None),
])
def test_sap_time(udate: str, utime: str, expected: datetime | None) -> None:
    from zoneinfo import ZoneInfo

    assert sap_time(udate, utime, ZoneInfo("Europe/Berlin")) == expected


def test_a_missing_change_log_is_a_problem_post_not_an_outage(store_url: str,
                                                             tmp_path: Path) -> None:
    """Audit style sap on a database without CDHDR (a view not created, a wrong
    ``header_table``): one source.problem naming the table, the table paused, instead of
    retrying "database unavailable" forever; ``check`` says it first."""
    from floorstream.adapters.erp.adapter import ErpTableAdapter
    from floorstream.adapters.erp.config import ErpTableConfig

    engine = create(store_url, "CREATE TABLE production_order (id INTEGER PRIMARY KEY, "
                    "name {vtext} NOT NULL, state {vtext} NOT NULL)")
    base = {"name": "erp", "adapter": "erp.table", "url": store_url,
            "table": "production_order", "key": "name", "mode": "audit",
            "audit": {"style": "sap", "object": "ORDER"}, "track": ["state"]}
    warnings = ErpTableAdapter.check(ErpTableConfig.model_validate(base))
    assert [w for w in warnings if "audit log" in w] == [
        "audit log table change_header of table production_order does not exist (audit "
        "style sap)", "audit log table change_item of table production_order does not "
        "exist (audit style sap)"]
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url)))
    with run:
        run.start(ready=False)
        (problem,) = run.wait_news(1)
        assert (problem.type, problem.teams) == ("source.problem", ("admin",))
        assert problem.summary == (
            "erp: audit log table change_header does not exist (audit style sap of table "
            "production_order); polling of production_order is paused until the schema is "
            "fixed")
    engine.dispose()
