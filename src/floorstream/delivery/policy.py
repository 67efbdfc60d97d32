"""When a team wants a post: at once, in the next digest, or after quiet hours.

A team config says which severity goes out at once (``immediate: warning``), how the rest is
bundled (``digest: 1h`` or shift changes ``digest: "06:00,14:00,22:00"``) and when nobody wants
to be disturbed (``quiet_hours: "22:00-06:00"``: only immediate posts then). The policy turns
that into one number per outbox row: the time it may be released. That time is computed from
the post's creation time only, so every worker and every daemon computes the same digest
window for the same post, and posts of one window share one release time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floorstream.model import Severity
from floorstream.plugin.durations import parse_duration

__all__ = ["TeamPolicy", "parse_quiet_hours", "parse_shifts"]

_CLOCK = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


def _clock(text: str) -> time:
    match = _CLOCK.match(text)
    if not match:
        raise ValueError(f"expected a time of day as HH:MM, got {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_shifts(text: str) -> tuple[time, ...]:
    """``"06:00,14:00,22:00"`` → sorted times of day."""
    times = sorted({_clock(part) for part in text.split(",") if part.strip()})
    if not times:
        raise ValueError("expected shift times such as '06:00,14:00,22:00'")
    return tuple(times)


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """``"22:00-06:00"`` → (start, end); the span may cross midnight."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"expected quiet hours as HH:MM-HH:MM, got {text!r}")
    span = (_clock(start), _clock(end))
    if span[0] == span[1]:
        raise ValueError("quiet hours must not start and end at the same time")
    return span


@dataclass(frozen=True)
class TeamPolicy:
    """A team's delivery policy; :meth:`release_at` is the whole of it."""

    immediate: Severity = Severity.INFO
    digest_every: float | None = None  # seconds
    shifts: tuple[time, ...] = ()
    quiet: tuple[time, time] | None = None
    zone: tzinfo = UTC

    @classmethod
    def parse(cls, immediate: str = "info", digest: str | None = None,
              quiet_hours: str | None = None, timezone: str = "UTC") -> TeamPolicy:
        """Build from the team config's strings; raises ValueError with what is expected."""
        every: float | None = None
        shifts: tuple[time, ...] = ()
        if digest:
            if ":" in digest:
                shifts = parse_shifts(digest)
            else:
                every = parse_duration(digest)
                if every < 60:
                    raise ValueError(f"a digest interval below one minute ({digest!r}) is not "
                                     "a digest; leave digest unset to send at once")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}; expected a name such as "
                             "'Europe/Berlin' or 'UTC'") from None
        return cls(immediate=Severity.parse(immediate), digest_every=every, shifts=shifts,
                   quiet=parse_quiet_hours(quiet_hours) if quiet_hours else None, zone=zone)

    @property
    def holds_anything(self) -> bool:
        return bool(self.digest_every or self.shifts or self.quiet)

    def release_at(self, severity: Severity, created_at: datetime) -> datetime | None:
        """None: send now. Otherwise the time (aware UTC) the post may go out in a digest."""
        if severity >= self.immediate or not self.holds_anything:
            return None
        local = created_at.astimezone(self.zone)
        if self.digest_every:
            release = self._next_interval(local)
        elif self.shifts:
            release = self._next_shift(local)
        elif self._quiet_at(local):
            release = local
        else:
            return None
        if self._quiet_at(release):
            release = self._quiet_end(release)
        return release.astimezone(UTC)

    def _next_interval(self, local: datetime) -> datetime:
        """The next multiple of the interval counted from local midnight (hourly → :00)."""
        assert self.digest_every is not None
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (local - midnight).total_seconds()
        steps = int(elapsed // self.digest_every) + 1
        release = midnight + timedelta(seconds=steps * self.digest_every)
        return min(release, midnight + timedelta(days=1))

    def _next_shift(self, local: datetime) -> datetime:
        for shift in self.shifts:
            candidate = local.replace(hour=shift.hour, minute=shift.minute, second=0,
                                      microsecond=0)
            if candidate > local:
                return candidate
        first = self.shifts[0]
        return (local + timedelta(days=1)).replace(hour=first.hour, minute=first.minute,
                                                   second=0, microsecond=0)

    def _quiet_at(self, local: datetime) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        now = local.time().replace(tzinfo=None)
        if start < end:
            return start <= now < end
        return now >= start or now < end

    def _quiet_end(self, local: datetime) -> datetime:
        assert self.quiet is not None
        end = self.quiet[1]
        candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate = (local + timedelta(days=1)).replace(hour=end.hour, minute=end.minute,
                                                            second=0, microsecond=0)
        return candidate
