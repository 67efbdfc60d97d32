"""SQLite's WAL checkpoints on a thread of their own, not inside the pipeline's commits.

In WAL mode SQLite copies the log back into the database file ("checkpoints") by itself,
inside whichever commit pushes the log past 1,000 pages, and that commit then waits for the
copy and two ``fsync`` calls. At a steady stream with QoS 1 (a small commit every few
milliseconds) that was every few hundred commits, and those commits were the slow tail:
commit p99 4.3-4.6 ms with SQLite checkpointing inside them, 1.5-2.3 ms without, and up to
94 ms for one commit on this machine's disk (``bench/commit_latency.py``). A late commit
holds the acks and the posts of its batch, so the tail of the commit is the tail of the
daemon's latency.

While the daemon's pipeline runs, the writer's connections therefore do not checkpoint
(``PRAGMA wal_autocheckpoint=0``) and this thread does, a second after commits (at most one
checkpoint, two ``fsync`` calls, a second: fewer than SQLite's own at a fast drain), with its
own connection and a ``PASSIVE`` checkpoint: it copies what no reader still needs and never
blocks the writer. What a commit guarantees is unchanged: a committed transaction is in the
log, and the log is the database until it is copied. If the thread cannot keep up or fails,
the log grows instead of stalling anything; both are logged, counted and shown in
:meth:`WalCheckpointer.report`, and the next start checkpoints as SQLite always does.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from floorstream.logs import get_logger

__all__ = ["WalCheckpointer"]

log = get_logger(__name__)

#: pages in the log (4 KiB each) after a checkpoint above which the log is reported as growing:
#: a reader holding an old snapshot for long, or a checkpointer that falls behind
GROWING_PAGES = 100_000


class WalCheckpointer:
    """Checkpoints ``path``'s WAL from a daemon thread, ``delay`` seconds after a commit
    (:meth:`written`) — never while nothing is written, so an idle daemon does not wake."""

    def __init__(self, path: str, delay: float = 1.0) -> None:
        self.path = path
        self.delay = delay
        self._written = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        #: what health and metrics read
        self.checkpoints = 0
        self.failures = 0
        self.last_error: str | None = None
        self.longest_s = 0.0
        self.log_pages = 0  # pages in the log after the last checkpoint
        self.behind_pages = 0  # pages of it the last checkpoint could not copy (readers)
        self._growing_told = False

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="floorstream-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def written(self) -> None:
        """A commit added to the log (called by the writer after each commit: an
        ``Event.set``, no I/O)."""
        self._written.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after one last checkpoint of what was committed before."""
        self._stop.set()
        self._written.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._written.wait()
                self._stop.wait(self.delay)  # let the commits of a burst gather first
                self._written.clear()
                self.checkpoint()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def checkpoint(self) -> None:
        """One ``PASSIVE`` checkpoint; a failure is logged and counted, never raised (the log
        then grows until the next one succeeds)."""
        started = time.monotonic()
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, timeout=30,
                                                   check_same_thread=False,
                                                   isolation_level=None)
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            self.failures += 1
            if self.last_error != str(exc):
                log.warning("wal_checkpoint_failed", path=self.path, error=str(exc))
            self.last_error = str(exc)
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            return
        took = time.monotonic() - started
        self.checkpoints += 1
        self.longest_s = max(self.longest_s, took)
        self.last_error = None
        _busy, pages, copied = (int(v) for v in row)
        self.log_pages, self.behind_pages = max(0, pages), max(0, pages - copied)
        growing = self.behind_pages > GROWING_PAGES
        if growing and not self._growing_told:
            log.warning("wal_growing", path=self.path, log_pages=pages, not_copied=pages - copied,
                        hint="a reader holds an old snapshot of the SQLite store")
        self._growing_told = growing

    def report(self) -> dict[str, Any]:
        return {"checkpoints": self.checkpoints, "failures": self.failures,
                "last_error": self.last_error, "longest_s": round(self.longest_s, 4),
                "log_pages": self.log_pages, "not_copied_pages": self.behind_pages}
