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

The watermark is never persisted and never feeds a window with wall-clock time: wall time only
ever *closes* a window early, it never stamps or places an event.
"""

from __future__ import annotations

__all__ = ["Watermark", "due"]


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
        self.lags[subject] = high - at

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
