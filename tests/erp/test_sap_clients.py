"""SAP clients (MANDT): one database, several clients, only the configured one is posted.

An SAP system holds production (client 100) and a training client (200) in the same tables,
told apart by the first key column ``MANDT``; the same order number exists in both. A source
with ``client: '100'`` reads every table that has a ``mandt`` column for that client only:
JEST status sets, the user status texts and profiles (TJ30T, JSTO, which are per client;
TJ02T is not), and snapshot/cursor tables such as AUFK. A training user releasing "the same"
order is not a release on the shop floor. ``check`` warns when an SAP table with ``mandt``
is watched without ``client:``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from floorstream.adapters.erp.adapter import ErpTableAdapter
from floorstream.adapters.erp.config import ErpTableConfig, subject_environment
from floorstream.plugin.alpha import canonical

from .idioms_support import (
    POLLED,
    SAP_AUDIT_ORDERS,
    SAP_CHANGE_LOG,
    IdiomRun,
    config,
    create,
    execute,
    sql,
)

DDL = """
CREATE TABLE jest (
    mandt {vtext} NOT NULL, objnr {vtext} NOT NULL, stat {vtext} NOT NULL,
    inact {vtext} NOT NULL DEFAULT ' ', chgnr {vtext} NOT NULL DEFAULT '001',
    PRIMARY KEY (mandt, objnr, stat));
CREATE TABLE tj02t (
    istat {vtext} NOT NULL, spras {vtext} NOT NULL, txt04 {vtext}, txt30 {vtext},
    PRIMARY KEY (istat, spras));
CREATE TABLE tj30t (
    mandt {vtext} NOT NULL, stsma {vtext} NOT NULL, estat {vtext} NOT NULL,
    spras {vtext} NOT NULL, txt04 {vtext}, txt30 {vtext});
CREATE TABLE jsto (mandt {vtext} NOT NULL, objnr {vtext} NOT NULL, stsma {vtext},
    PRIMARY KEY (mandt, objnr))
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap ecc
    client: '100'
    table: jest
    mode: status
"""

ORDER = "OR000001000123"


def _set(engine: Engine, client: str, objnr: str, on: tuple[str, ...] = (),
         off: tuple[str, ...] = ()) -> None:
    """One SAP transaction in ``client``: statuses switched on and off under the object's
    next change number (CHGNR, counted per client as SAP does)."""
    with engine.begin() as conn:
        last = conn.execute(text(sql(
            engine, "SELECT max(chgnr) FROM jest WHERE mandt = :m AND objnr = :o")),
            {"m": client, "o": objnr}).scalar()
        at = {"m": client, "o": objnr, "n": f"{int(last or 0) + 1:03d}"}
        statements = [("DELETE FROM jest WHERE mandt = :m AND objnr = :o AND stat = :s",
                       {**at, "s": s}) for s in on]
        statements += [("INSERT INTO jest (mandt, objnr, stat, inact, chgnr) "
                        "VALUES (:m, :o, :s, ' ', :n)", {**at, "s": s}) for s in on]
        statements += [("UPDATE jest SET inact = 'X', chgnr = :n "
                        "WHERE mandt = :m AND objnr = :o AND stat = :s",
                        {**at, "s": s}) for s in off]
        for statement, values in statements:
            conn.execute(text(sql(engine, statement)), values)


def test_status_mode_reads_only_its_client(store_url: str, tmp_path: Path) -> None:
    engine = create(store_url, DDL)
    execute(engine, "INSERT INTO tj30t VALUES (:m, 'ZPP00001', 'E0002', 'E', :a, :b)",
            {"m": "100", "a": "QCOK", "b": "Quality approved"},
            {"m": "200", "a": "TRNG", "b": "Training exercise done"})
    execute(engine, "INSERT INTO jsto VALUES (:m, :o, 'ZPP00001')",
            {"m": "100", "o": ORDER}, {"m": "200", "o": ORDER})
    for client in ("100", "200"):
        _set(engine, client, ORDER, on=("I0001",))
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url)))
    with run:
        run.start()
        # the training client releases and confirms "the same" order, and creates one
        _set(engine, "200", ORDER, on=("I0002",), off=("I0001",))
        _set(engine, "200", ORDER, on=("I0009",))
        _set(engine, "200", "OR000000000777", on=("I0001",))
        # production releases it and sets the user status of its profile
        _set(engine, "100", ORDER, on=("I0002", "E0002"), off=("I0001",))
        posts = run.behind(lambda: _set(engine, "100", "OR000000009000", on=("I0001",)),
                           "9000: status CRTD (Created)")
        assert [p.summary for p in posts] == [
            "1000123: added REL (Released), QCOK (Quality approved); removed CRTD (Created)"]
        assert posts[0].fields["statuses"] == ["REL", "QCOK"]


AUFK = """
CREATE TABLE aufk (
    mandt {vtext} NOT NULL, aufnr {vtext} NOT NULL, auart {vtext}, ktext {vtext},
    werks {vtext}, PRIMARY KEY (mandt, aufnr))
"""

SNAPSHOT = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap ecc
    client: '100'
    table: aufk
    key: aufnr
    mode: snapshot
    alpha: [aufnr]
    track: [ktext]
    labels: {{ktext: description}}
    subject: "{{{{ row.aufnr | alpha }}}}"
"""


def test_snapshot_of_an_sap_table_reads_only_its_client(sqlite_url: str,
                                                        tmp_path: Path) -> None:
    """AUFK's key is (MANDT, AUFNR): without the client the two rows of one order number
    would take turns as "the" row, and each poll would post a change between them."""
    engine = create(sqlite_url, AUFK)
    insert = "INSERT INTO aufk VALUES (:m, :n, 'PP01', :t, '1000')"
    execute(engine, insert, {"m": "100", "n": "000001000123", "t": "Pump housing"},
            {"m": "200", "n": "000001000123", "t": "Training order"},
            {"m": "100", "n": "000000009000", "t": "marker"})
    run = IdiomRun(config(tmp_path / "fs.db", SNAPSHOT.format(url=sqlite_url)))
    with run:
        run.start()
        execute(engine, "UPDATE aufk SET ktext = 'Renamed in training' WHERE mandt = '200'")
        execute(engine, insert, {"m": "200", "n": "000001000999", "t": "Training only"})
        execute(engine, "DELETE FROM aufk WHERE mandt = '200' AND aufnr = '000001000123'")
        execute(engine, "UPDATE aufk SET ktext = 'Pump housing rev B' WHERE mandt = '100'")
        posts = run.behind(
            lambda: execute(engine, "UPDATE aufk SET ktext = 'seen' WHERE aufnr = :n",
                            {"n": "000000009000"}),
            f"9000: description marker → seen{POLLED}")
        assert [(p.subject, p.type, p.fields.get("after")) for p in posts] == [
            ("1000123", "record.field_changed", "Pump housing rev B")]


def test_check_warns_about_an_sap_table_read_without_its_client(sqlite_url: str) -> None:
    engine = create(sqlite_url, AUFK)
    engine.dispose()
    base = {"name": "erp", "adapter": "erp.table", "url": sqlite_url, "table": "aufk",
            "key": "aufnr", "mode": "snapshot"}
    warnings = ErpTableAdapter.check(ErpTableConfig.model_validate(base))
    assert any("aufk has SAP's client column mandt but the source names no client" in w
               for w in warnings), warnings
    held = ErpTableAdapter.check(ErpTableConfig.model_validate({**base, "client": "100"}))
    assert not any("client" in w for w in held), held


def test_the_alpha_filter_names_an_object_as_row_attrs_do() -> None:
    """The subject template's ``alpha`` filter is the plugin API's ``alpha_out``: a CHAR
    value with its padding (``'000001000123 '``) gives the same ``1000123`` an attr does."""
    template = subject_environment().from_string("{{ row.aufnr | alpha }}")
    for stored in ("000001000123", "000001000123 ", "1000123"):
        assert template.render(row={"aufnr": stored}) == canonical(stored) == "1000123"
    assert template.render(row={"aufnr": "A-100"}) == "A-100"


CHANGE_DOCUMENTS = """
CREATE TABLE aufk (
    mandt {vtext} NOT NULL, aufnr {vtext} NOT NULL, ktext {vtext}, PRIMARY KEY (mandt, aufnr));
""" + SAP_CHANGE_LOG

AUDIT = SAP_AUDIT_ORDERS


class Documents:
    """CDHDR/CDPOS of several clients in one database: each client counts its own change
    numbers, so client 200's document 0000000001 is another edit than client 100's."""

    def __init__(self, url: str) -> None:
        self.engine = create(url, CHANGE_DOCUMENTS)
        self.numbers: dict[str, int] = {}

    def change(self, client: str, order: str, old: str, new: str) -> None:
        self.numbers[client] = self.numbers.get(client, 0) + 1
        values = {"m": client, "o": order, "nr": f"{self.numbers[client]:010d}",
                  "old": old, "new": new}
        with self.engine.begin() as conn:
            conn.execute(text(sql(self.engine, "INSERT INTO change_header VALUES (:m, 'ORDER', "
                                  ":o, :nr, 'TRAINEE', '20261125', '101500', 'CO02', 'U')")),
                         values)
            conn.execute(text(sql(self.engine, "INSERT INTO change_item VALUES (:m, 'ORDER', "
                                  ":o, :nr, 'AUFK', :o, 'KTEXT', 'U', :old, :new)")), values)


def test_audit_mode_reads_only_its_clients_change_documents(store_url: str,
                                                            tmp_path: Path) -> None:
    """CDHDR/CDPOS carry the client in MANDANT: a training client's change document with the
    same order number and the same change number is not posted, and its items never mix
    into production's document."""
    docs = Documents(store_url)
    execute(docs.engine, "INSERT INTO aufk VALUES (:m, :n, :t)",
            {"m": "100", "n": "000001000123", "t": "Pump housing rev B"},
            {"m": "200", "n": "000001000123", "t": "Training order"},
            {"m": "100", "n": "000000009000", "t": "seen"})
    run = IdiomRun(config(tmp_path / "fs.db", AUDIT.format(url=store_url)))
    with run:
        run.start()
        docs.change("200", "000001000123", "Pump housing", "Training order")
        docs.change("200", "000001000777", "", "Training only")
        docs.change("100", "000001000123", "Pump housing", "Pump housing rev B")
        posts = run.behind(lambda: docs.change("100", "000000009000", "marker", "seen"),
                           "9000: description marker → seen")
        assert [(p.subject, p.summary) for p in posts] == [
            ("1000123", "1000123: description Pump housing → Pump housing rev B")]


def test_check_warns_about_change_documents_read_without_a_client(sqlite_url: str) -> None:
    Documents(sqlite_url).engine.dispose()
    base = {"name": "erp", "adapter": "erp.table", "url": sqlite_url, "table": "aufk",
            "key": "aufnr", "mode": "audit", "audit": {"style": "sap", "object": "ORDER"},
            "erp_version": "sap ecc"}
    warnings = ErpTableAdapter.check(ErpTableConfig.model_validate(base))
    assert any("change documents change_header have SAP's client column mandant but the "
               "source names no client" in w for w in warnings), warnings
    held = ErpTableAdapter.check(ErpTableConfig.model_validate({**base, "client": "100"}))
    assert not any("client" in w for w in held), held
