"""Session locks on the store: PostgreSQL advisory locks, MariaDB/MySQL ``GET_LOCK``.

Both belong to the database session that took them, so they end with it: a daemon killed
with SIGKILL closes its socket, the server ends the session and the lock is free at once. A
daemon cut off from the store by the network is a different case: the server keeps the
session until it notices, so the lock connection is told to give up on its own side first.
The server ends it after ``server_idle`` seconds without a statement (PostgreSQL
``idle_session_timeout``, MariaDB ``wait_timeout``) and the client times out reads after
``client_timeout``; the fleet pings far more often than either (see
:class:`floorstream.fleet.coordinator.Fleet`).

Names: PostgreSQL advisory locks are per database and keyed by a signed 64-bit number, a hash
of the lock's kind and name. ``GET_LOCK`` names are server-wide (at most 64 characters), so
the database's name is hashed in too: two stores on one MariaDB server never share a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

__all__ = ["LockSession", "holders", "limit_idle_transactions", "mysql_name", "pg_key"]

LockId = tuple[str, str]  # (kind, name): ("source", "line1"), ("daemon", "<id>")


def pg_key(kind: str, name: str) -> int:
    """The advisory lock key of (kind, name): a signed 64-bit hash, the same in every daemon."""
    digest = hashlib.blake2b(f"floorstream.fleet:{kind}:{name}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def mysql_name(database: str, kind: str, name: str) -> str:
    """The ``GET_LOCK`` name of (kind, name) in ``database`` (42 characters)."""
    digest = hashlib.blake2b(f"{database}\x1f{kind}\x1f{name}".encode(), digest_size=20)
    return "fs." + digest.hexdigest()[:39]


def _is_pg(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def holders(conn: Connection, locks: Sequence[LockId]) -> dict[LockId, str | None]:
    """Who holds each lock now: the session id (PostgreSQL backend pid, MariaDB connection
    id) or None. Read through any connection to the store; takes no lock itself."""
    if not locks:
        return {}
    if _is_pg(conn):
        keys = {pg_key(kind, name): (kind, name) for kind, name in locks}
        rows = conn.execute(text(
            "SELECT classid::bigint, objid::bigint, pid FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"))
        found: dict[LockId, str | None] = dict.fromkeys(locks)
        for classid, objid, pid in rows:
            key = int.from_bytes(((int(classid) << 32) | int(objid)).to_bytes(8, "big"),
                                 "big", signed=True)
            lock = keys.get(key)
            if lock is not None:
                found[lock] = str(pid)
        return found
    database = conn.execute(text("SELECT DATABASE()")).scalar_one()
    result: dict[LockId, str | None] = {}
    for start in range(0, len(locks), 200):
        chunk = locks[start:start + 200]
        columns = ", ".join(f"IS_USED_LOCK(:n{i})" for i in range(len(chunk)))
        params = {f"n{i}": mysql_name(database, kind, name)
                  for i, (kind, name) in enumerate(chunk)}
        row = conn.execute(text(f"SELECT {columns}"), params).one()
        for lock, session in zip(chunk, row, strict=True):
            result[lock] = None if session is None else str(session)
    return result


def limit_idle_transactions(engine: Engine, seconds: float) -> None:
    """Have the server end a session of ``engine`` whose transaction sits idle for
    ``seconds`` (PostgreSQL ``idle_in_transaction_session_timeout``, MariaDB
    ``idle_transaction_timeout``; MySQL has neither and keeps its default).

    Why: a commit cut off mid-transaction by a partition keeps its ``FOR SHARE`` lock on the
    lease rows (:mod:`floorstream.fleet.fence`) until the server ends that session, and a
    taker's epoch bump waits for it; without this the server may wait for TCP keepalive
    (hours). floorstream's own transactions on the store are short (a batch's commit, a
    delivery claim), far below ``seconds``. Applies to connections opened from now on; the
    pool is emptied so none is left without it.
    """
    millis, whole = int(seconds * 1000), max(1, math.ceil(seconds))

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if engine.dialect.name == "postgresql":
                cursor.execute(f"SET idle_in_transaction_session_timeout = {millis}")
            else:
                # a statement cut off half-sent, or results nobody reads: bounded too
                cursor.execute(f"SET SESSION net_read_timeout = {whole}")
                cursor.execute(f"SET SESSION net_write_timeout = {whole}")
                with contextlib.suppress(Exception):  # MySQL: no such variable
                    cursor.execute(f"SET SESSION idle_transaction_timeout = {whole}")
        finally:
            cursor.close()
        dbapi_connection.commit()  # (a SET in a transaction rolled back would be undone)

    event.listen(engine, "connect", on_connect)
    engine.pool.dispose()


class LockSession:
    """One connection of its own that holds this daemon's session locks.

    Not thread-safe: one thread (the fleet's) uses it. Every method raises
    :class:`sqlalchemy.exc.DBAPIError` when the session is gone; the caller then treats
    every lock as lost, :meth:`close`\\ s and connects again.
    """

    def __init__(self, url: str, *, client_timeout: float, server_idle: float) -> None:
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.backend == "postgresql":
            # libpq: give up on a dead peer after client_timeout (tcp_user_timeout, ms)
            connect_args = {"connect_timeout": max(1, math.ceil(client_timeout)),
                            "tcp_user_timeout": int(client_timeout * 1000),
                            "keepalives": 1, "keepalives_idle": 1,
                            "keepalives_interval": 1, "keepalives_count": 3}
        else:
            connect_args = {"connect_timeout": max(1, math.ceil(client_timeout)),
                            "read_timeout": max(1, math.ceil(client_timeout)),
                            "write_timeout": max(1, math.ceil(client_timeout))}
        self.server_idle = server_idle
        self._engine: Engine = create_engine(url, poolclass=NullPool,
                                             isolation_level="AUTOCOMMIT",
                                             connect_args=connect_args)
        self._conn: Connection | None = None
        self._database = ""
        #: the session's id on the server (what :func:`holders` reports for its locks)
        self.session: str | None = None

    @property
    def open(self) -> bool:
        return self._conn is not None

    def connect(self) -> str:
        """Open the session; returns its id."""
        self.close()
        conn = self._engine.connect()
        try:
            if self.backend == "postgresql":
                conn.execute(text(f"SET idle_session_timeout = {int(self.server_idle * 1000)}"))
                conn.execute(text("SET tcp_keepalives_idle = 1"))
                conn.execute(text("SET tcp_keepalives_interval = 1"))
                conn.execute(text("SET tcp_keepalives_count = 3"))
                session = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            else:
                conn.execute(text(f"SET SESSION wait_timeout = "
                                  f"{max(1, math.ceil(self.server_idle))}"))
                session = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
                self._database = conn.execute(text("SELECT DATABASE()")).scalar_one()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.session = str(session)
        return self.session

    def _connection(self) -> Connection:
        if self._conn is None:
            raise DBAPIError("lock session", {}, Exception("the lock session is not open"))
        return self._conn

    def ping(self) -> None:
        """A round trip: the session (and with it every lock) is still there."""
        self._connection().execute(text("SELECT 1"))

    def try_lock(self, kind: str, name: str) -> bool:
        conn = self._connection()
        if self.backend == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                               {"k": pg_key(kind, name)}).scalar()
        else:
            got = conn.execute(text("SELECT GET_LOCK(:n, 0)"),
                               {"n": mysql_name(self._database, kind, name)}).scalar()
        return bool(got)

    def unlock(self, kind: str, name: str) -> None:
        conn = self._connection()
        if self.backend == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": pg_key(kind, name)})
        else:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"),
                         {"n": mysql_name(self._database, kind, name)})

    def held(self, locks: Iterable[LockId]) -> dict[LockId, str | None]:
        """:func:`holders` read through this session."""
        return holders(self._connection(), list(locks))

    def abort(self) -> None:
        """Cut the session's socket from another thread, so a call hanging on a dead network
        (the peer's kernel still ACKs, or no error comes for minutes) returns with an error
        at once. Best effort: the owner's next call fails, and it then closes the session."""
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(Exception):
            raw: Any = conn.connection.dbapi_connection
            sock = getattr(raw, "_sock", None)  # PyMySQL
            if sock is None and hasattr(raw, "pgconn"):  # psycopg 3: the libpq socket's fd
                sock = socket.socket(fileno=os.dup(raw.pgconn.socket))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()
                return
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Drop the session (and so every lock it held)."""
        conn, self._conn, self.session = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def dispose(self) -> None:
        self.close()
        self._engine.dispose()
