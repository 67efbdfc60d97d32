"""SAP status sets (JEST), one post per change, on SQLite, PostgreSQL and MariaDB.

An order's system status is a set of JEST rows; a confirmation turns PCNF off and CNF and
DLV on in one go. ``mode: status`` posts each object whose set changed once, naming what
was added and removed with the texts of TJ02T (system statuses, in the source's language,
the shipped English ones for codes the table lacks) and TJ30T (user statuses of the object's
profile in JSTO). The subject is the order number without ALPHA zeros; ``row_attrs`` carry it
to routes and other sources.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from .idioms_support import IdiomRun, config, create, execute, post_lines, sql

DDL = """
CREATE TABLE jest (
    objnr {vtext} NOT NULL, stat {vtext} NOT NULL, inact {vtext} NOT NULL DEFAULT ' ',
    chgnr {vtext} NOT NULL DEFAULT '001', PRIMARY KEY (objnr, stat));
CREATE TABLE tj02t (
    istat {vtext} NOT NULL, spras {vtext} NOT NULL, txt04 {vtext}, txt30 {vtext},
    PRIMARY KEY (istat, spras));
CREATE TABLE tj30t (
    stsma {vtext} NOT NULL, estat {vtext} NOT NULL, spras {vtext} NOT NULL, txt04 {vtext},
    txt30 {vtext});
CREATE TABLE jsto (objnr {vtext} PRIMARY KEY, stsma {vtext})
"""

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: sap ecc
    language: {language}
    table: jest
    mode: status
    row_attrs: {{order: object}}
routes:
  - match: {{attrs: {{order: "1000123"}}}}
    teams: [line-3]
"""

ORDER = "OR000001000123"


def _texts(engine: Engine) -> None:
    texts = [("I0001", "E", "CRTD", "Created"), ("I0002", "E", "REL", "Released"),
             ("I0009", "E", "CNF", "Confirmed"), ("I0010", "E", "PCNF", "Partially confirmed"),
             ("I0002", "D", "FREI", "Freigegeben"), ("I0001", "D", "EROF", "Eröffnet"),
             ("I0009", "D", "RÜCK", "Rückgemeldet"),
             ("I0010", "D", "TRÜC", "Teilrückgemeldet")]  # no I0012: shipped text for DLV
    execute(engine, "INSERT INTO tj02t VALUES (:i, :s, :a, :b)",
            *({"i": i, "s": s, "a": a, "b": b} for i, s, a, b in texts))
    execute(engine, "INSERT INTO tj30t VALUES (:p, 'E0002', :s, :a, :b)",
            {"p": "ZPP00001", "s": "E", "a": "QCOK", "b": "Quality approved"},
            {"p": "ZPP00002", "s": "E", "a": "PACK", "b": "Packed"},
            {"p": "ZPP00001", "s": "D", "a": "QFRG", "b": "Qualität freigegeben"})
    execute(engine, "INSERT INTO jsto VALUES (:o, 'ZPP00001')",
            {"o": ORDER})


def _set(engine: Engine, objnr: str, on: tuple[str, ...] = (), off: tuple[str, ...] = (),
         when: str | None = None) -> None:
    """One SAP transaction: statuses switched on (inserted or reactivated) and off, each
    row stamped with the object's next change number (CHGNR), as SAP's status management
    writes it (JCDS keeps the document of each number)."""
    with engine.begin() as conn:
        last = conn.execute(text(sql(engine, "SELECT max(chgnr) FROM jest WHERE objnr = :o")),
                            {"o": objnr}).scalar()
        nr = f"{int(last or 0) + 1:03d}"
        statements = [("DELETE FROM jest WHERE objnr = :o AND stat = :s",
                       {"o": objnr, "s": s}) for s in on]
        statements += [("INSERT INTO jest (objnr, stat, inact, chgnr) VALUES (:o, :s, ' ', :n)",
                        {"o": objnr, "s": s, "n": nr}) for s in on]
        statements += [("UPDATE jest SET inact = 'X', chgnr = :n WHERE objnr = :o AND stat = :s",
                        {"o": objnr, "s": s, "n": nr}) for s in off]
        if when is not None:  # the change document too (JCDS), at UDATE/UTIME ``when``
            statements += [("INSERT INTO jcds VALUES (:o, :s, :n, :i, :d, :t)",
                            {"o": objnr, "s": s, "n": nr, "i": i, "d": when[:8],
                             "t": when[8:]})
                           for s, i in [*((s, " ") for s in on), *((s, "X") for s in off)]]
        for statement, values in statements:
            conn.execute(text(sql(engine, statement)), values)


JCDS = """
CREATE TABLE jcds (
    objnr {vtext} NOT NULL, stat {vtext} NOT NULL, chgnr {vtext} NOT NULL,
    inact {vtext} NOT NULL, udate {vtext}, utime {vtext}, PRIMARY KEY (objnr, stat, chgnr))
"""


def test_status_sets_one_post_per_change(store_url: str, tmp_path: Path) -> None:
    engine = create(store_url, DDL)
    _texts(engine)
    _set(engine, ORDER, on=("I0001",))
    _set(engine, "QL000000001234", on=("I0001",))  # an inspection lot: not watched
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, language="en")))
    with run:
        run.start()
        _set(engine, ORDER, on=("I0002",), off=("I0001",))  # released
        run.wait_news(1)
        _set(engine, ORDER, on=("I0010",))  # partially confirmed
        run.wait_news(2)
        _set(engine, ORDER, on=("I0009", "I0012"), off=("I0010",))  # final confirmation
        run.wait_news(3)
        _set(engine, ORDER, on=("E0002",))  # a user status of the order's profile
        run.wait_news(4)
        _set(engine, "OR000001000124", on=("I0001",))  # a new order
        run.wait_news(5)
        _set(engine, "QL000000001234", on=("I0002",))  # not an order: nothing
        posts = run.behind(lambda: _set(engine, "OR000000009000", on=("I0001",)),
                           "9000: status CRTD (Created)")
        assert post_lines(posts) == [
            ("1000123: added REL (Released); removed CRTD (Created)",
             "record.status_changed", "1000123", "update"),
            ("1000123: added PCNF (Partially confirmed)", "record.status_changed", "1000123",
             "update"),
            ("1000123: added CNF (Confirmed), DLV (Delivered); removed PCNF (Partially "
             "confirmed)", "record.status_changed", "1000123", "update"),
            ("1000123: added QCOK (Quality approved)", "record.status_changed", "1000123",
             "update"),
            ("1000124: status CRTD (Created)", "record.status_changed", "1000124", "new"),
        ]
        third = posts[2]
        assert third.fields["statuses"] == ["REL", "CNF", "DLV"]
        assert [a["code"] for a in third.fields["added"]] == ["CNF", "DLV"]
        # the canonical order number, for routes and other sources
        assert "order:1000123" in third.tags
        assert third.teams == ("line-3",)
        assert posts[4].teams == ("planning",)
    # a restart reposts nothing; a change made while stopped is posted once
    _set(engine, ORDER, on=("I0045",))
    with run:
        run.start()
        posts = run.behind(lambda: _set(engine, "OR000000009000", on=("I0002",)),
                           "9000: added REL (Released)")
        assert [p.summary for p in posts[5:]] == [
            "1000123: added TECO (Technically completed)"]


def test_status_texts_in_the_sources_language(sqlite_url: str, tmp_path: Path) -> None:
    engine = create(sqlite_url, DDL)
    _texts(engine)
    _set(engine, ORDER, on=("I0002", "I0010"))
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=sqlite_url, language="de")))
    with run:
        run.start()
        _set(engine, ORDER, on=("I0009", "E0002"), off=("I0010",))
        posts = run.behind(lambda: _set(engine, "OR000000009000", on=("I0001",)),
                           "9000: status EROF (Eröffnet)")
        assert [p.summary for p in posts] == [
            "1000123: added RÜCK (Rückgemeldet), QFRG (Qualität freigegeben); removed TRÜC "
            "(Teilrückgemeldet)"]


def test_a_misnamed_status_column_pauses_the_table_with_a_problem_post(sqlite_url: str,
                                                                       tmp_path: Path) -> None:
    create(sqlite_url, DDL)
    source = SOURCE.format(url=sqlite_url, language="en").replace(
        "    mode: status\n", "    mode: status\n    status: {inactive: inactive}\n")
    run = IdiomRun(config(tmp_path / "fs.db", source))
    with run:
        run.start(ready=False)  # a paused table is never polled twice
        posts = run.wait_news(1)
        assert [(p.summary, p.type, p.teams) for p in posts] == [
            ("erp: table jest has no column inactive (status: object/status/inactive name "
             "JEST's columns); polling of jest is paused until the schema is fixed",
             "source.problem", ("admin",))]


def test_several_changes_between_two_polls_say_their_steps_were_not_seen(
        store_url: str, tmp_path: Path) -> None:
    """Released, then partially confirmed, then confirmed while no poll ran: the post
    compares the sets (REL → REL CNF DLV) and says two steps happened in between, never
    that PCNF was skipped in one step. A JEST whose writer keeps no change numbers cannot
    tell one step from several: its posts say intermediate states may be missing."""
    engine = create(store_url, DDL)
    _texts(engine)
    _set(engine, ORDER, on=("I0001",))
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, language="en")))
    with run:
        run.start()
    _set(engine, ORDER, on=("I0002",), off=("I0001",))  # released
    _set(engine, ORDER, on=("I0010",))  # partially confirmed
    _set(engine, ORDER, on=("I0009", "I0012"), off=("I0010",))  # finally confirmed
    with run:
        run.start()
        _set(engine, ORDER, on=("I0045",))  # one change, one poll: no note
        run.wait_news(2)
        # a writer that leaves CHGNR alone (a view, a copy): no way to count the steps
        execute(engine, "UPDATE jest SET inact = 'X' WHERE objnr = :o AND stat = 'I0045'",
                {"o": ORDER})
        posts = run.behind(lambda: _set(engine, "OR000000009000", on=("I0001",)),
                           "9000: status CRTD (Created)")
        assert [p.summary for p in posts] == [
            "1000123: added REL (Released), CNF (Confirmed), DLV (Delivered); removed CRTD "
            "(Created) (3 status changes since the last poll; intermediate states not seen: "
            "polled every 100 ms)",
            "1000123: added TECO (Technically completed)",
            "1000123: removed TECO (Technically completed) (intermediate states may be "
            "missing: polled every 100 ms)"]
        assert posts[0].fields["intermediate_unseen"] is True
        assert posts[0].fields["changes"] == 3
        assert "intermediate_unseen" not in posts[1].fields
        assert posts[2].fields["changes"] is None


def test_status_change_documents_give_each_step_in_order(store_url: str,
                                                         tmp_path: Path) -> None:
    """With JCDS, three changes made while no poll ran are three posts, in order, each at
    its document's time (UDATE/UTIME in the source's time_zone, UTC here); an object whose
    documents are not all there (archived) falls back to one post that says so."""
    engine = create(store_url, DDL + ";" + JCDS)
    _texts(engine)
    other = "OR000001000124"
    _set(engine, ORDER, on=("I0001",), when="20261125080000")
    _set(engine, other, on=("I0001",), when="20261125080000")
    run = IdiomRun(config(tmp_path / "fs.db", SOURCE.format(url=store_url, language="en")))
    with run:
        run.start()
    _set(engine, ORDER, on=("I0002",), off=("I0001",), when="20261125091500")
    _set(engine, ORDER, on=("I0010",), when="20261125101500")
    _set(engine, ORDER, on=("I0009", "I0012"), off=("I0010",), when="20261125111500")
    _set(engine, other, on=("I0002",), off=("I0001",), when="20261125091500")
    _set(engine, other, on=("I0009",), when="20261125101500")
    execute(engine, "DELETE FROM jcds WHERE objnr = :o AND chgnr = '002'", {"o": other})
    with run:
        run.start()
        posts = run.behind(lambda: _set(engine, "OR000000009000", on=("I0001",)),
                           "9000: status CRTD (Created)")
        assert [p.summary for p in posts] == [
            "1000123: added REL (Released); removed CRTD (Created)",
            "1000123: added PCNF (Partially confirmed)",
            "1000123: added CNF (Confirmed), DLV (Delivered); removed PCNF (Partially "
            "confirmed)",
            "1000124: added REL (Released), CNF (Confirmed); removed CRTD (Created) (2 status "
            "changes since the last poll; intermediate states not seen: polled every 100 ms)"]
        assert [p.occurred_at.hour for p in posts[:3] if p.occurred_at] == [9, 10, 11]
        assert [p.fields.get("change_number") for p in posts] == [2, 3, 4, None]
