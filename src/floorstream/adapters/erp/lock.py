"""One active poller per ERP source across daemons: a PostgreSQL session advisory lock.

Two daemons run on the same config for availability; both polling the same tables would
double the load on the ERP and race on the checkpoint. The lock is taken with
``pg_try_advisory_lock`` on a connection of its own, keyed by a hash of the source name, so
it lives exactly as long as that session: a daemon that dies (kill -9, host lost) loses its
connection and with it the lock, and a standby that asks again takes over. The holder checks
its lock connection now and then; if that connection broke (a database restart), the lock
may already belong to another daemon, so it stops polling until it holds the lock again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

__all__ = ["SourceLock", "lock_key"]


def lock_key(source: str) -> int:
    """The advisory lock id of a source: a signed 64-bit hash, the same in every daemon."""
    digest = hashlib.blake2b(f"floorstream.erp:{source}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SourceLock:
    """``held()`` says whether this daemon may poll; it (re)tries the lock when it may not."""

    def __init__(self, url: str, source: str, *, retry: float, check: float = 1.0) -> None:
        self.key = lock_key(source)
        self.retry = retry
        self.check = check
        self._engine: Engine = create_engine(url, poolclass=NullPool,
                                             isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._held = False
        self._next = 0.0  # monotonic time of the next try (standby) or check (holder)
        #: times this daemon took the lock (the first start included)
        self.acquired = 0
        #: why the last try failed, when it was the database rather than another daemon
        self.error: str | None = None

    def held(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return self._held
        self._next = now + (self.check if self._held else self.retry)
        try:
            if self._held:
                assert self._conn is not None
                self._conn.execute(text("SELECT 1"))  # the lock lives as long as this session
            else:
                if self._conn is None:
                    self._conn = self._engine.connect()
                got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                         {"k": self.key}).scalar()
                self.error = None
                if got:
                    self._held = True
                    self.acquired += 1
                    self._next = now + self.check
        except DBAPIError as exc:
            self.error = str(exc.orig or exc).strip()
            self._drop()
        return self._held

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        if self._conn is not None and self._held:
            with contextlib.suppress(DBAPIError):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop()
        self._engine.dispose()
