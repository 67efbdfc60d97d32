"""One time model for every window: event time, with a per-source watermark.

Detectors, settling, flap detection and flood windows decide on the time things happened at
the source (``Change.when``, ``Event.occurred_at``), so a replay, a backlog or a machine whose
clock is months off decide exactly as a live run does. Two things cannot wait for event time:

- a subject that went quiet never moves its own event time again, yet its open window must
  close. The :class:`Watermark` estimates the subject's event time *now* from the source's:
  the highest event time the source has shown, less how far this subject's clock was behind it
  at its last input (a machine whose clock is months off keeps its own offset);
- a whole source that went quiet (or a daemon just restarted, with no watermark yet) moves no
  event time at all: every window also closes once it has been open for its length in wall
  time (:func:`due`), so no window holds a post longer than its length.

The watermark never feeds a window with wall-clock time: wall time only ever *closes* a
window early, it never stamps or places an event. It is persisted with the source's state (a
state row of subject ``""``, :data:`STATE_KEY`, written with every commit of the source's
batches, so it is as old as the posts and checkpoints it goes with) and restored at start:
windows open at a stop close when the source's event time passes them, on the first ticks
after the restart, as they would have without the stop, and not only by the wall-clock rule.
Only the lags of the :data:`LAGS_KEPT` subjects seen last are kept: a subject with open
windows has been seen within their length, and one not kept has no lag (its clock is taken
to be the source's).
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["LAGS_KEPT", "STATE_KEY", "Watermark", "due"]

#: the detector-state key (subject "") of a source's persisted watermark
STATE_KEY = "watermark"
#: subjects whose lag is persisted, the most recently seen (a row of 40 kB at most; a plant
#: of 50 machines: 2 kB)
LAGS_KEPT = 1024


class Watermark:
    """The highest event time one source has shown, and each subject's lag behind it."""

    __slots__ = ("high", "lags")

    def __init__(self) -> None:
        #: the highest event time (epoch seconds) any input of the source carried
        self.high: float | None = None
        #: subject → how far its last input's event time was behind ``high`` at that moment
        self.lags: dict[str, float] = {}

    def observe(self, subject: str, at: float) -> None:
        """An input of ``subject`` that happened at ``at`` (epoch seconds, event time)."""
        high = self.high
        if high is None or at > high:
            self.high = high = at
        lags = self.lags
        lags.pop(subject, None)  # most recently seen last: what :meth:`dump` keeps
        lags[subject] = high - at

    def dump(self) -> dict[str, Any]:
        """The JSON state to persist: ``high`` and the lags of the subjects seen last."""
        lags = self.lags
        if len(lags) > LAGS_KEPT:
            for subject in list(itertools.islice(lags, len(lags) - LAGS_KEPT)):
                del lags[subject]  # (a lag not kept is 0: the source's own clock)
        return {"high": self.high, "lags": {s: round(lag, 3) for s, lag in lags.items()}}

    def restore(self, data: dict[str, Any] | None) -> None:
        """Take up a persisted :meth:`dump` (at start, before any input): what it knows is
        kept unless this process has already seen later input."""
        if not data or not isinstance(data.get("high"), int | float):
            return
        high = float(data["high"])
        if self.high is not None and self.high >= high:
            return
        lags = data.get("lags")
        restored = {str(s): float(v) for s, v in lags.items()
                    if isinstance(v, int | float)} if isinstance(lags, dict) else {}
        if self.high is not None:  # (input seen before the restore: rebase its lags)
            shift = high - self.high
            restored.update({s: lag + shift for s, lag in self.lags.items()})
        self.high, self.lags = high, restored

    def now(self, subject: str) -> float | None:
        """The subject's estimated event time now, or None while nothing is known."""
        high = self.high
        if high is None:
            return None
        return high - self.lags.get(subject, 0.0)


def due(end: float, opened_wall: float | None, length: float, event_now: float | None,
        wall_now: float) -> bool:
    """Whether a window ending at ``end`` (event time) is over: its end has passed in the
    subject's event time, or it has been open ``length`` seconds of wall time."""
    if event_now is not None and event_now >= end:
        return True
    return opened_wall is not None and wall_now - opened_wall >= length
