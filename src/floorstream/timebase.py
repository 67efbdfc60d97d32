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
state row of subject ``""``, :data:`STATE_KEY`, written with the commits of the source's
batches, so it is as old as the posts and checkpoints it goes with) and restored at start:
windows open at a stop close when the source's event time passes them, on the first ticks
after the restart, as they would have without the stop, and not only by the wall-clock rule.

What is persisted is ``high`` and the *offsets*: the lags of more than :data:`LAG_SLACK`, of
the :data:`LAGS_KEPT` subjects seen last. A lag below a minute is what a machine's reporting
interval looks like when its clock agrees with the others' (it spoke a little before the
latest input), so after a restart such a subject runs on the source's clock; a machine whose
clock is months off, or a backlogged one, keeps its offset. So the row stays small (a plant
whose clocks agree: a few bytes; 10 kB at most) and costs no copy per batch: it is kept up to
date as inputs arrive and written as it is at each commit.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LAGS_KEPT", "LAG_SLACK", "STATE_KEY", "Watermark", "due"]

#: the detector-state key (subject "") of a source's persisted watermark
STATE_KEY = "watermark"
#: lags persisted at most, of the subjects seen last (a first start reading old rows of an ERP
#: table fills them all: every commit then writes them, 10 kB)
LAGS_KEPT = 256
#: lags up to this many seconds are not persisted (a reporting interval, not a clock offset)
LAG_SLACK = 60.0


class Watermark:
    """The highest event time one source has shown, and each subject's lag behind it."""

    __slots__ = ("high", "lags", "offsets", "saved")

    def __init__(self) -> None:
        #: the highest event time (epoch seconds) any input of the source carried
        self.high: float | None = None
        #: subject → how far its last input's event time was behind ``high`` at that moment
        self.lags: dict[str, float] = {}
        #: the lags beyond :data:`LAG_SLACK`, most recently seen last (what is persisted)
        self.offsets: dict[str, float] = {}
        #: the persisted form, updated in place (see :meth:`dump`)
        self.saved: dict[str, Any] = {"high": None, "lags": self.offsets}

    def observe(self, subject: str, at: float) -> None:
        """An input of ``subject`` that happened at ``at`` (epoch seconds, event time)."""
        high = self.high
        if high is None or at > high:
            self.high = high = at
        lag = self.lags[subject] = high - at
        offsets = self.offsets
        if lag > LAG_SLACK or -lag > LAG_SLACK:
            offsets.pop(subject, None)  # most recently seen last
            offsets[subject] = lag
            if len(offsets) > LAGS_KEPT:
                del offsets[next(iter(offsets))]
        elif offsets and subject in offsets:
            del offsets[subject]

    def dump(self) -> dict[str, Any]:
        """The JSON state to persist: ``high`` and the offsets. The same dict each time, its
        offsets the live ones: serialised by the commit that writes it, never copied."""
        self.saved["high"] = self.high
        return self.saved

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
        self.offsets.clear()
        self.offsets.update((s, lag) for s, lag in list(restored.items())[-LAGS_KEPT:]
                            if abs(lag) > LAG_SLACK)

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
