"""Progress of long work as log lines: done / total, rate and ETA every few seconds.

A first start that reads a 300,000-row table, a snapshot, a prune or a replay can take
minutes; without a word between start and end nobody can tell working from hung. Work that
may take long counts what it did through a :class:`Progress`, which logs one line at most
every ``every`` seconds (and one at the end)::

    progress = Progress(self.context.log, "erp_baseline_progress", total=rows, table="orders")
    for row in rows:
        ...
        progress.advance()
    progress.finish()

Plugins log through ``self.context.log``; the host's command line adds a bar on a terminal
(``floorstream.progress``) on top of the same counting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "format_eta"]


class Progress:
    """Counts done units of a job and logs ``event`` with ``done``, ``total``, ``percent``,
    ``rate`` (units per second since the start), ``eta_s`` and the extra ``fields``.

    ``total`` may be unknown (None), or learnt later (:meth:`set_total`). ``on_update`` is
    called with :meth:`snapshot` whenever a line is due (the host's progress bar). Cheap to
    call per unit: a clock read, and a log line only every ``every`` seconds.
    """

    def __init__(self, log: Any, event: str, total: int | None = None, *,
                 every: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 on_update: Callable[[dict[str, Any]], None] | None = None,
                 **fields: Any) -> None:
        self.log = log
        self.event = event
        self.total = total
        self.every = every
        self.clock = clock
        self.on_update = on_update
        self.fields = fields
        self.done = 0
        self.started = clock()
        self._next = self.started + every
        self.lines = 0  # progress lines logged (tests, and finish's choice of wording)
        self.finished = False

    def set_total(self, total: int | None) -> None:
        self.total = total

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every
            self._emit(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """What a line says: done, total, percent, rate (per second), eta_s, elapsed_s."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        total = self.total
        percent = eta = None
        if total:
            percent = round(min(100.0, 100.0 * self.done / total), 1)
            if rate > 0:
                eta = round(max(0, total - self.done) / rate, 1)
        return {"done": self.done, "total": total, "percent": percent,
                "rate": round(rate, 1), "eta_s": eta, "elapsed_s": round(elapsed, 1)}

    def _emit(self, now: float) -> None:
        state = self.snapshot(now)
        self.lines += 1
        self.log.info(self.event, **state, **self.fields)
        if self.on_update is not None:
            self.on_update(state)

    def finish(self, **fields: Any) -> dict[str, Any]:
        """One closing line (``<event>`` with ``finished=True``); returns the snapshot."""
        if self.finished:
            return self.snapshot()
        self.finished = True
        now = self.clock()
        state = self.snapshot(now)
        state["eta_s"] = 0 if self.total else None
        self.log.info(self.event, **state, finished=True, **self.fields, **fields)
        if self.on_update is not None:
            self.on_update({**state, "finished": True})
        return state


def format_eta(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
