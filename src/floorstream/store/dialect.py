"""The few statements that differ between SQLite, PostgreSQL and MariaDB: idempotent inserts
and upserts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import sqlite

# PostgreSQL's and MySQL's insert constructs are imported where a connection of theirs uses
# them: the PostgreSQL dialect package alone is 2.3 MB of a daemon that runs on SQLite

__all__ = ["insert_ignore", "upsert"]


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, silently skipping those that collide with a unique key."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql
        conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql
        # not INSERT IGNORE: that also turns NOT NULL violations and truncation into warnings
        # and writes '' or a cut value; a no-op update skips only the duplicate key
        column = next(iter(table.columns)).name
        my = mysql.insert(table)
        conn.execute(my.on_duplicate_key_update({column: table.c[column]}), rows)
    else:
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
           keys: Sequence[str]) -> None:
    """Insert rows or overwrite the non-key columns of existing ones."""
    if not rows:
        return
    columns = [c for c in rows[0] if c not in keys]
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql
        pg = postgresql.insert(table)
        conn.execute(pg.on_conflict_do_update(index_elements=list(keys),
                                              set_={c: pg.excluded[c] for c in columns}), rows)
    elif name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql
        my = mysql.insert(table)
        conn.execute(my.on_duplicate_key_update({c: my.inserted[c] for c in columns}), rows)
    else:
        lite = sqlite.insert(table)
        conn.execute(lite.on_conflict_do_update(index_elements=list(keys),
                                                set_={c: lite.excluded[c] for c in columns}), rows)
