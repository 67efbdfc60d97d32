"""A store-and-forward flush as one post: "backfilled 60 values 08:00–09:00 (max Temperature
90 °C)".

An edge node that lost its broker keeps its readings and sends them when it is back, flagged
``is_historical`` (or simply with their old timestamps). They are history, not news: put
through the detectors they would raise limit alarms an hour late and flip states that have
long moved on; posted one by one they would bury the feed. So a *burst* of them per subject
(node or device) is summed up here — how many values, the time they span, each metric's
maximum — and becomes one ``metric.backfilled`` post when the burst ends: a live message of the
same subject arrives, the subject's node or device dies, or nothing more came for ``quiet``
seconds.

An open burst is part of the source's checkpoint (:meth:`Backfill.dump`), committed with each
historical message it absorbed before that message is acked: a crash neither loses the burst
nor posts it twice (its post id derives from the position of its first message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from floorstream.plugin import phrasing

__all__ = ["Backfill", "Burst", "summary"]

_MAX_METRICS = 50  # maxima kept per burst (the summary names the first two)


@dataclass
class Burst:
    node: str  # the node's session key (group/node)
    position: str  # the first message's position: the post's id derives from it
    attrs: dict[str, str]
    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    maxima: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # of the metrics in maxima
    at: float = 0.0  # monotonic time of the last value (not saved: a loaded burst is old)

    def add(self, values: list[tuple[str, Any, int | None]], now: float) -> None:
        for name, value, ms in values:
            self.count += 1
            if ms is not None:
                self.first_ms = ms if self.first_ms is None else min(self.first_ms, ms)
                self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
            if isinstance(value, int | float) and not isinstance(value, bool) and \
                    value == value:  # NaN is no maximum
                old = self.maxima.get(name)
                if (old is None and len(self.maxima) < _MAX_METRICS) or (
                        old is not None and value > old):
                    self.maxima[name] = float(value)
        self.at = now

    def dump(self) -> dict[str, Any]:
        return {"node": self.node, "position": self.position, "attrs": self.attrs,
                "count": self.count, "first_ms": self.first_ms, "last_ms": self.last_ms,
                "maxima": self.maxima, "units": self.units}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Burst:
        return cls(node=str(data["node"]), position=str(data["position"]),
                   attrs=dict(data.get("attrs") or {}), count=int(data.get("count") or 0),
                   first_ms=data.get("first_ms"), last_ms=data.get("last_ms"),
                   maxima={str(k): float(v) for k, v in (data.get("maxima") or {}).items()},
                   units={str(k): str(v) for k, v in (data.get("units") or {}).items()})


class Backfill:
    """The open bursts of one source, by subject."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self.bursts: dict[str, Burst] = {}

    def add(self, subject: str, node: str, position: str, attrs: dict[str, str],
            values: list[tuple[str, Any, int | None]], now: float,
            units: dict[str, str] | None = None) -> None:
        burst = self.bursts.get(subject)
        if burst is None:
            burst = self.bursts[subject] = Burst(node, position, dict(attrs))
        burst.add(values, now)
        if units:
            for name in burst.maxima:
                if name in units:
                    burst.units[name] = units[name]

    def close(self, subject: str) -> Burst | None:
        return self.bursts.pop(subject, None)

    def close_node(self, node: str) -> list[tuple[str, Burst]]:
        """Every burst of a node and its devices (the node died)."""
        subjects = [s for s, b in self.bursts.items() if b.node == node]
        return [(s, self.bursts.pop(s)) for s in subjects]

    def expired(self, now: float) -> list[tuple[str, Burst]]:
        done = [s for s, b in self.bursts.items() if b.at + self.quiet <= now]
        return [(s, self.bursts.pop(s)) for s in done]

    def next_deadline(self) -> float | None:
        if not self.bursts:
            return None
        return min(b.at for b in self.bursts.values()) + self.quiet

    def dump(self) -> dict[str, Any]:
        return {subject: burst.dump() for subject, burst in self.bursts.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.bursts = {str(s): Burst.load(b) for s, b in data.items()}


def _clock(ms: int, day: bool) -> str:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.strftime("%-d %b %H:%M" if day else "%H:%M")


def summary(subject: str, burst: Burst) -> str:
    """"Press07: backfilled 60 values 08:00–09:00 UTC (max Temp 90 °C, max Speed 1200)"."""
    text = f"{subject}: backfilled {burst.count} value{'s' if burst.count != 1 else ''}"
    if burst.first_ms is not None and burst.last_ms is not None:
        day = (burst.last_ms - burst.first_ms) >= 86_400_000 or \
            _clock(burst.first_ms, True)[:-6] != _clock(burst.last_ms, True)[:-6]
        first, last = _clock(burst.first_ms, day), _clock(burst.last_ms, day)
        text += f" {first}–{last} UTC" if first != last else f" at {first} UTC"
    peaks = [f"max {name} {phrasing.quantity(value, burst.units.get(name, ''))}"
             for name, value in list(burst.maxima.items())[:2]]
    return text + (f" ({', '.join(peaks)})" if peaks else "")
