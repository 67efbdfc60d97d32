"""The change-log table and the triggers that fill it, for PostgreSQL, MySQL/MariaDB and SQLite.

``floorstream erp install-triggers`` runs these. Audit-mode tables (``style: floorstream``) get
row triggers that write the whole row before and after as JSON into ``fs_erp_changes``, one log
row per changed row, skipping updates that changed nothing. On PostgreSQL the triggers also
``pg_notify('floorstream_erp', table)``, and cursor-mode tables get a statement-level trigger
that only notifies, so the adapter polls at once instead of waiting for the interval.
Installing twice is harmless: every trigger is dropped and created again.
``floorstream erp uninstall-triggers`` removes them all again (:func:`uninstall_triggers`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.dialects import mysql

from floorstream.adapters.erp.auditlogs import LOG_TABLE
from floorstream.adapters.erp.config import TableConfig

__all__ = ["CHANNEL", "install_triggers", "installed_triggers", "log_table",
           "trigger_statements", "uninstall_statements", "uninstall_triggers"]

#: the LISTEN/NOTIFY channel the PostgreSQL triggers notify
CHANNEL = "floorstream_erp"

_LONG = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def log_table(metadata: MetaData, name: str = LOG_TABLE) -> Table:
    """``fs_erp_changes``: one row per changed row, whole rows as JSON text."""
    return Table(
        name, metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
               autoincrement=True),
        Column("table_name", String(128), nullable=False),
        Column("row_key", String(255), nullable=False),
        Column("op", String(1), nullable=False),
        Column("changed_at", DateTime, nullable=False),
        Column("tx", String(64)),
        Column("before_row", _LONG),
        Column("after_row", _LONG),
        Index(f"{name}_table_id", "table_name", "id"),
    )


def _q(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def trigger_statements(engine: Engine, tables: Sequence[TableConfig],
                       log: str = LOG_TABLE) -> list[str]:
    """The DDL that (re)creates the triggers of these tables on this database."""
    dialect = engine.dialect.name
    out: list[str] = []
    inspector = inspect(engine)
    if dialect == "postgresql":
        out += _pg_functions(log)
    for cfg in tables:
        audited = cfg.mode == "audit" and cfg.audit.style == "floorstream"
        if dialect == "postgresql":
            out += _pg_table(engine, cfg, audited)
        elif not audited:
            continue
        else:
            names = [c["name"] for c in inspector.get_columns(cfg.table)]
            if dialect in ("mysql", "mariadb"):
                out += _mysql_table(engine, cfg, names, log)
            elif dialect == "sqlite":
                out += _sqlite_table(engine, cfg, names, log)
            else:
                raise ValueError(f"no triggers for the {dialect} dialect; use cursor or "
                                 "snapshot mode")
    return out


def install_triggers(engine: Engine, tables: Sequence[TableConfig],
                     log: str = LOG_TABLE) -> list[str]:
    """Create the log table (if missing) and (re)create the triggers; returns the DDL run."""
    metadata = MetaData()
    log_table(metadata, log)
    metadata.create_all(engine)
    statements = trigger_statements(engine, tables, log)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    return statements


def installed_triggers(engine: Engine, log: str = LOG_TABLE) -> list[tuple[str, str]]:
    """(trigger, table) of every trigger ``install-triggers`` made in this database, whatever
    the config says now (a table dropped from it keeps its triggers until they go): on
    PostgreSQL those running floorstream's two functions, elsewhere those named ``fs_erp_…``
    that write the log."""
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "postgresql":
            rows = conn.execute(text(
                "SELECT t.tgname, c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE NOT t.tgisinternal AND p.proname IN ('fs_erp_capture', 'fs_erp_notify') "
                "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY c.relname, t.tgname"))
        elif dialect in ("mysql", "mariadb"):
            rows = conn.execute(text(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'fs\\_erp\\_%' "
                "AND ACTION_STATEMENT LIKE :log ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME"),
                {"log": f"%{log}%"})
        elif dialect == "sqlite":
            rows = conn.execute(text(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND name GLOB 'fs_erp_*' AND instr(sql, :log) > 0 ORDER BY tbl_name, name"),
                {"log": log})
        else:
            return []
        return [(str(name), str(table)) for name, table in rows]


def uninstall_statements(engine: Engine, *, log: str = LOG_TABLE,
                         drop_log: bool = False) -> list[str]:
    """The DDL that removes what ``install-triggers`` made: every trigger of
    :func:`installed_triggers`, on PostgreSQL the two functions, with ``drop_log`` the log
    table (its unread rows with it)."""
    dialect = engine.dialect.name
    out = []
    for trigger, table in installed_triggers(engine, log):
        if dialect == "postgresql":
            out.append(f"DROP TRIGGER IF EXISTS {_q(engine, trigger)} ON {_q(engine, table)}")
        else:
            out.append(f"DROP TRIGGER IF EXISTS {_q(engine, trigger)}")
    if dialect == "postgresql":
        out += ["DROP FUNCTION IF EXISTS fs_erp_capture()",
                "DROP FUNCTION IF EXISTS fs_erp_notify()"]
    if drop_log:
        out.append(f"DROP TABLE IF EXISTS {_q(engine, log)}")
    return out


def uninstall_triggers(engine: Engine, *, log: str = LOG_TABLE,
                       drop_log: bool = False) -> list[str]:
    """Run :func:`uninstall_statements` in one transaction (DDL is transactional on
    PostgreSQL and SQLite; on MySQL/MariaDB each statement commits by itself, and every one
    is ``IF EXISTS``, so running it again finishes the job). Returns the DDL run."""
    statements = uninstall_statements(engine, log=log, drop_log=drop_log)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    return statements


def _pg_functions(log: str) -> list[str]:
    return [
        f"""CREATE OR REPLACE FUNCTION fs_erp_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k text;
BEGIN
  IF TG_OP = 'UPDATE' AND OLD IS NOT DISTINCT FROM NEW THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN k := to_jsonb(OLD) ->> TG_ARGV[0];
  ELSE k := to_jsonb(NEW) ->> TG_ARGV[0]; END IF;
  INSERT INTO "{log}" (table_name, row_key, op, changed_at, tx, before_row, after_row)
  VALUES (TG_TABLE_NAME, k, left(TG_OP, 1), clock_timestamp() AT TIME ZONE 'UTC',
          txid_current()::text,
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD)::text END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW)::text END);
  PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION fs_erp_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
  RETURN NULL;
END $$""",
    ]


def _pg_table(engine: Engine, cfg: TableConfig, audited: bool) -> list[str]:
    t = _q(engine, cfg.table)
    capture, notify = _q(engine, f"fs_erp_{cfg.table}"), _q(engine, f"fs_erp_notify_{cfg.table}")
    out = [f"DROP TRIGGER IF EXISTS {capture} ON {t}", f"DROP TRIGGER IF EXISTS {notify} ON {t}"]
    if audited:
        key = cfg.key.replace("'", "''")
        out.append(f"CREATE TRIGGER {capture} AFTER INSERT OR UPDATE OR DELETE ON {t} "
                   f"FOR EACH ROW EXECUTE FUNCTION fs_erp_capture('{key}')")
    else:
        out.append(f"CREATE TRIGGER {notify} AFTER INSERT OR UPDATE OR DELETE ON {t} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION fs_erp_notify()")
    return out


def _json_args(engine: Engine, names: Sequence[str], side: str) -> str:
    return ", ".join(f"'{n}', {side}.{_q(engine, n)}" for n in names)


def _mysql_table(engine: Engine, cfg: TableConfig, names: Sequence[str], log: str) -> list[str]:
    t, lg, key = _q(engine, cfg.table), _q(engine, log), _q(engine, cfg.key)
    out = []
    tx = "CONCAT(CONNECTION_ID(), '@', NOW(6))"  # one statement's rows share it
    cols = "(table_name, row_key, op, changed_at, tx, before_row, after_row)"
    name = cfg.table.replace("'", "''")
    for op, event in (("I", "INSERT"), ("U", "UPDATE"), ("D", "DELETE")):
        trigger = _q(engine, f"fs_erp_{cfg.table}_{op.lower()}")
        old = f"JSON_OBJECT({_json_args(engine, names, 'OLD')})" if op != "I" else "NULL"
        new = f"JSON_OBJECT({_json_args(engine, names, 'NEW')})" if op != "D" else "NULL"
        row = "OLD" if op == "D" else "NEW"
        insert = (f"INSERT INTO {lg} {cols} VALUES ('{name}', CAST({row}.{key} AS CHAR), "
                  f"'{op}', UTC_TIMESTAMP(6), {tx}, {old}, {new})")
        body = (f"BEGIN IF NOT ({old} <=> {new}) THEN {insert}; END IF; END" if op == "U"
                else insert)
        out.append(f"DROP TRIGGER IF EXISTS {trigger}")
        out.append(f"CREATE TRIGGER {trigger} AFTER {event} ON {t} FOR EACH ROW {body}")
    return out


def _sqlite_table(engine: Engine, cfg: TableConfig, names: Sequence[str], log: str) -> list[str]:
    t, lg, key = _q(engine, cfg.table), _q(engine, log), _q(engine, cfg.key)
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"  # stable within one statement: a tx marker
    cols = "(table_name, row_key, op, changed_at, tx, before_row, after_row)"
    name = cfg.table.replace("'", "''")
    out = []
    for op, event in (("I", "INSERT"), ("U", "UPDATE"), ("D", "DELETE")):
        trigger = _q(engine, f"fs_erp_{cfg.table}_{op.lower()}")
        old = f"json_object({_json_args(engine, names, 'OLD')})" if op != "I" else "NULL"
        new = f"json_object({_json_args(engine, names, 'NEW')})" if op != "D" else "NULL"
        row = "OLD" if op == "D" else "NEW"
        when = f" WHEN {old} IS NOT {new}" if op == "U" else ""
        out.append(f"DROP TRIGGER IF EXISTS {trigger}")
        out.append(f"CREATE TRIGGER {trigger} AFTER {event} ON {t} FOR EACH ROW{when} BEGIN "
                   f"INSERT INTO {lg} {cols} VALUES ('{name}', CAST({row}.{key} AS TEXT), "
                   f"'{op}', {now}, {now}, {old}, {new}); END")
    return out
