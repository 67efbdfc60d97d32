"""Odoo's tracking labels mapped back to selection keys, per model, language and release.

``mail_tracking_value`` keeps what the user saw: the *label* of a selection, in the user's
language ("En cours"). floorstream reads it back to the key (``progress``) from the
database's own ``ir_model_fields_selection`` (JSON per language from Odoo 16, ``ir_translation``
before), then the release's shipped tables, then the config's ``selection_keys`` / ``values``;
a label nobody knows is shown as it came, never dropped. The key is what ``row_attrs`` and
``values:`` work on; posts show the ERP's label (in ``language``). ``erp_version`` also says
what a column means (Odoo 17's ``date_start`` is the planned start, 16's the actual one).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from support.erp import now_sql

from .idioms_support import IdiomRun, config, create, execute, post_lines, sql

SHOP = """
CREATE TABLE mrp_production (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL, state {vtext} NOT NULL,
    product_qty {num} NOT NULL, date_start {ts}, create_date {ts} NOT NULL,
    write_date {ts} NOT NULL);
CREATE TABLE mail_message (
    id INTEGER PRIMARY KEY, model {vtext} NOT NULL, res_id INTEGER NOT NULL,
    message_type {vtext} NOT NULL, author_id INTEGER, date {ts} NOT NULL);
CREATE TABLE ir_model_fields (
    id INTEGER PRIMARY KEY, model {vtext} NOT NULL, name {vtext} NOT NULL,
    ttype {vtext} NOT NULL, tracking INTEGER)
"""

# Odoo 17: the field by field_id; labels as JSON per language (jsonb on PostgreSQL)
ODOO17 = """
CREATE TABLE mail_tracking_value (
    id INTEGER PRIMARY KEY, field_id INTEGER, old_value_char {vtext}, new_value_char {vtext},
    old_value_integer INTEGER, new_value_integer INTEGER, old_value_float {num},
    new_value_float {num}, old_value_datetime {ts}, new_value_datetime {ts},
    old_value_text TEXT, new_value_text TEXT, currency_id INTEGER,
    mail_message_id INTEGER NOT NULL);
CREATE TABLE ir_model_fields_selection (
    id INTEGER PRIMARY KEY, field_id INTEGER NOT NULL, value {vtext} NOT NULL,
    name {json} NOT NULL, sequence INTEGER)
"""

# Odoo ≤ 15: the field by `field`, monetary values apart, translations in ir_translation
ODOO15 = """
CREATE TABLE mail_tracking_value (
    id INTEGER PRIMARY KEY, field INTEGER, field_desc {vtext}, field_type {vtext},
    old_value_char {vtext}, new_value_char {vtext}, old_value_integer INTEGER,
    new_value_integer INTEGER, old_value_float {num}, new_value_float {num},
    old_value_monetary {num}, new_value_monetary {num}, old_value_datetime {ts},
    new_value_datetime {ts}, old_value_text TEXT, new_value_text TEXT,
    mail_message_id INTEGER NOT NULL);
CREATE TABLE ir_model_fields_selection (
    id INTEGER PRIMARY KEY, field_id INTEGER NOT NULL, value {vtext} NOT NULL,
    name {vtext} NOT NULL, sequence INTEGER);
CREATE TABLE ir_translation (
    id INTEGER PRIMARY KEY, name {vtext} NOT NULL, res_id INTEGER, lang {vtext},
    src TEXT, value TEXT, type {vtext})
"""

STATES = [("draft", "Draft", "Brouillon"), ("confirmed", "Confirmed", "Confirmé"),
          ("progress", "In Progress", "En cours"), ("to_close", "To Close", "À clôturer"),
          ("done", "Done", "Fait"), ("cancel", "Cancelled", "Annulé")]

SOURCE = """sources:
  - name: erp
    adapter: erp.table
    url: {url}
    interval: 100ms
    erp_version: {version}
{extra}    table: mrp_production
    mode: audit
    audit: {{style: odoo, object: mrp.production}}
    subject: "{{{{ row.name }}}}"
    track: [state, date_start]
    row_attrs: {{state: state}}
"""


class Shop:
    """An Odoo database with one manufacturing order, WH/MO/00042, in progress of being
    tracked by a French-speaking user."""

    def __init__(self, url: str, shape: str) -> None:
        self.engine = create(url, SHOP + ";" + shape.replace(
            "{json}", "JSONB" if url.startswith("postgresql") else "TEXT"))
        self.messages = 0
        now = now_sql(self.engine)
        execute(self.engine, "INSERT INTO mrp_production VALUES (42, 'WH/MO/00042', "
                f"'confirmed', 10, '2026-11-02 06:00:00', {now}, {now})")
        execute(self.engine, "INSERT INTO ir_model_fields VALUES (:i, 'mrp.production', :n, "
                ":t, 1)", {"i": 1, "n": "state", "t": "selection"},
                {"i": 2, "n": "date_start", "t": "datetime"})

    def track(self, res_id: int, field: object, by: str, old: object, new: object,
              kind: str = "char") -> None:
        """One tracked write: a notification message and its tracking value, committed
        together as Odoo does."""
        self.messages += 1
        m = self.messages
        now = now_sql(self.engine)
        with self.engine.begin() as conn:
            conn.execute(text(sql(self.engine, "INSERT INTO mail_message VALUES (:m, "
                                  f"'mrp.production', :r, 'notification', 7, {now})")),
                         {"m": m, "r": res_id})
            conn.execute(text(sql(self.engine, f"INSERT INTO mail_tracking_value (id, {by}, "
                                  f"old_value_{kind}, new_value_{kind}, mail_message_id) "
                                  "VALUES (:m, :f, :o, :n, :m)")),
                         {"m": m, "f": field, "o": old, "n": new})


def test_labels_in_any_language_come_back_as_keys(store_url: str, tmp_path: Path) -> None:
    shop = Shop(store_url, ODOO17)
    execute(shop.engine, "INSERT INTO ir_model_fields_selection VALUES (:i, 1, :v, :n, :i)",
            *({"i": i, "v": key, "n": json.dumps({"en_US": en, "fr_FR": fr})}
              for i, (key, en, fr) in enumerate(STATES, 1)))
    run = IdiomRun(config=config(tmp_path / "fs.db", SOURCE.format(
        url=store_url, version="odoo 17", extra="")))
    with run:
        run.start()
        shop.track(42, 1, "field_id", "Confirmé", "En cours")  # a French user
        shop.track(42, 1, "field_id", "En cours", "Contrôle qualité")  # a custom state
        shop.track(42, 2, "field_id", "2026-11-02 06:00:00", "2026-11-03 06:00:00",
                   "datetime")
        posts = run.behind(lambda: shop.track(9000, 1, "field_id", "Draft", "Done"),
                           "mrp_production:9000: status Draft → Done")
        assert post_lines(posts) == [
            ("WH/MO/00042: status Confirmed → In Progress", "record.field_changed",
             "WH/MO/00042", "new"),
            # a label nobody knows is kept as it came
            ("WH/MO/00042: status In Progress → Contrôle qualité", "record.field_changed",
             "WH/MO/00042", "new"),
            # Odoo 17's date_start is the planned start
            ("WH/MO/00042: planned start 2 Nov 2026 06:00 UTC → 3 Nov 2026 06:00 UTC",
             "record.field_changed", "WH/MO/00042", "new")]
        # routes and other sources match the key, not a translated label
        assert "state:progress" in posts[0].tags
        assert "state:Contrôle qualité" in posts[1].tags


def test_odoo15_translations_and_the_users_language(store_url: str, tmp_path: Path) -> None:
    shop = Shop(store_url, ODOO15)
    for i, (key, en, fr) in enumerate(STATES, 1):
        execute(shop.engine, "INSERT INTO ir_model_fields_selection VALUES (:i, 1, :v, :n, :i)",
                {"i": i, "v": key, "n": en})
        execute(shop.engine, "INSERT INTO ir_translation VALUES (:i, "
                "'ir.model.fields.selection,name', :i, 'fr_FR', :en, :fr, 'model')",
                {"i": i, "en": en, "fr": fr})
    run = IdiomRun(config=config(tmp_path / "fs.db", SOURCE.format(
        url=store_url, version="odoo 15", extra="    language: fr_FR\n")))
    with run:
        run.start()
        shop.track(42, 1, "field", "Confirmed", "In Progress")  # an English user
        shop.track(42, 1, "field", "En cours", "Fait")  # a French one
        shop.track(42, 2, "field", "2026-11-02 06:00:00", "2026-11-02 07:15:00", "datetime")
        posts = run.behind(lambda: shop.track(9000, 1, "field", "Draft", "Done"),
                           "mrp_production:9000: status Brouillon → Fait")
        # shown in the source's language, whatever language the user wrote in
        assert post_lines(posts) == [
            ("WH/MO/00042: status Confirmé → En cours", "record.field_changed",
             "WH/MO/00042", "new"),
            ("WH/MO/00042: status En cours → Fait", "record.field_changed",
             "WH/MO/00042", "new"),
            # up to 16 date_start is when work actually started
            ("WH/MO/00042: actual start 2 Nov 2026 06:00 UTC → 2 Nov 2026 07:15 UTC",
             "record.field_changed", "WH/MO/00042", "new")]
        states = [t for p in posts[:2] for t in p.tags if t.startswith("state:")]
        assert states == ["state:progress", "state:done"]


def test_config_map_when_the_database_has_no_selection_tables(store_url: str,
                                                              tmp_path: Path) -> None:
    """The shared test DDL's shape (``field_name``), no ir_* tables: the shipped English
    labels and the config's own map (a German user)."""
    shop = Shop(store_url, ODOO17.replace("field_id INTEGER,", "field_name {vtext},")
                .split(";")[0])
    extra = ("    selection_keys: {state: {In Bearbeitung: progress, Bestätigt: confirmed}}\n"
             "    values: {state: {progress: Running}}\n")
    run = IdiomRun(config=config(tmp_path / "fs.db", SOURCE.format(
        url=store_url, version="odoo 17", extra=extra)))
    with run:
        run.start()
        shop.track(42, "state", "field_name", "Bestätigt", "In Bearbeitung")
        shop.track(42, "state", "field_name", "In Progress", "To Close")
        shop.track(42, "state", "field_name", "To Close", "Abgenommen")
        posts = run.behind(lambda: shop.track(9000, "state", "field_name", "Draft", "Done"),
                           "mrp_production:9000: status Draft → Done")
        assert [p.summary for p in posts] == [
            "WH/MO/00042: status Confirmed → Running",  # values: wins over Odoo's label
            "WH/MO/00042: status Running → To Close",
            "WH/MO/00042: status To Close → Abgenommen"]
        assert [t for p in posts for t in p.tags if t.startswith("state:")] == [
            "state:progress", "state:to_close", "state:Abgenommen"]
