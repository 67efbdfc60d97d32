"""When a person's e-mail digest is due: hourly, or daily at a local time.

A digest covers what came since the last one and goes out at the end of each period. The end
of the period a moment falls in is a function of that moment and the person's choice only,
so every daemon computes the same one (the digest's id derives from it, see
:mod:`floorstream.delivery.personal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floorstream.delivery.policy import _clock

__all__ = ["EVERY", "Schedule"]

#: what a person may choose ("off": no digest, also when the config gives one)
EVERY = ("off", "hourly", "daily")


@dataclass(frozen=True)
class Schedule:
    every: str  # off | hourly | daily
    at: time = time(7, 0)  # a daily digest's local time
    zone: str = "UTC"

    @classmethod
    def parse(cls, every: str, at: str | None = None, zone: str | None = None) -> Schedule:
        """From the config's or a form's strings; ValueError says what is expected."""
        if every not in EVERY:
            raise ValueError(f"a digest is {', '.join(EVERY)}; got {every!r}")
        zone = zone or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}; expected a name such as "
                             "'Europe/Berlin' or 'UTC'") from None
        return cls(every, _clock(at) if at else time(7, 0), zone)

    @property
    def off(self) -> bool:
        return self.every == "off"

    @property
    def at_text(self) -> str:
        return self.at.strftime("%H:%M")

    def period_end(self, now: datetime) -> datetime | None:
        """The latest end of a period at or before ``now`` (aware UTC); None when off."""
        if self.off:
            return None
        local = now.astimezone(ZoneInfo(self.zone))
        if self.every == "hourly":
            end = local.replace(minute=0, second=0, microsecond=0)
        else:
            end = datetime.combine(local.date(), self.at, tzinfo=local.tzinfo)
            if end > local:
                end = datetime.combine(local.date() - timedelta(days=1), self.at,
                                       tzinfo=local.tzinfo)
        return end.astimezone(UTC)

    def describe(self) -> str:
        if self.off:
            return "no digest"
        return ("every hour" if self.every == "hourly"
                else f"daily at {self.at_text} {self.zone}")
