"""Bytes → text and date helpers shared by the parsers."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floorstream.adapters.supply.formats.errors import ParseError

__all__ = ["EARLIEST", "LATEST", "decode", "decode_utf8", "edifact_date", "parse_date",
           "partner_zone", "plausible", "to_number", "zoneless"]

#: dates outside these years are unreadable: a year-1 or year-9999 date overflows as soon as
#: it is moved to UTC or stored, and no shipment is dated there
EARLIEST, LATEST = 1900, 2999

# X12 time codes (element 623: AT7-07, DTM04…) → UTC offset in hours. The …S and …D codes
# name standard or daylight time; ET, CT, MT, PT, AT, NT are the *local* time of that zone,
# standard or daylight as the date falls (_LOCAL_ZONES); these offsets are their fallback
# when the system has no time-zone database
_ZONES = {"UT": 0, "GM": 0, "Z": 0, "UTC": 0, "ET": -5, "ES": -5, "ED": -4, "CT": -6, "CS": -6,
          "CD": -5, "MT": -7, "MS": -7, "MD": -6, "PT": -8, "PS": -8, "PD": -7, "AT": -4,
          "AS": -4, "AD": -3, "HT": -10, "NT": -3.5}
_LOCAL_ZONES = {"ET": "America/New_York", "CT": "America/Chicago", "MT": "America/Denver",
                "PT": "America/Los_Angeles", "AT": "America/Halifax", "NT": "America/St_Johns"}


#: the partner's own zone while one file is parsed (a source's ``timezone``): X12's ``LT``
#: (local time) and times sent without any zone are read in it
_PARTNER: ContextVar[tzinfo | None] = ContextVar("partner_zone", default=None)
#: while parsing: the local times (``LT``) read as UTC for want of a partner zone
_GUESSED: ContextVar[list[str] | None] = ContextVar("guessed_zones", default=None)


@contextmanager
def partner_zone(zone: tzinfo | None) -> Iterator[list[str]]:
    """Parse in ``zone`` (the source's ``timezone``, or None: UTC as before). Yields the list
    of the local times read as UTC meanwhile, for the file's warning."""
    guessed: list[str] = []
    tokens = _PARTNER.set(zone), _GUESSED.set(guessed)
    try:
        yield guessed
    finally:
        _PARTNER.reset(tokens[0])
        _GUESSED.reset(tokens[1])


def zoneless(when: datetime) -> datetime:
    """A naive date *and time* as sent without a zone: in the partner's zone while
    :func:`partner_zone` says one, else UTC (a date alone is a day: give it UTC yourself)."""
    partner = _PARTNER.get()
    return when.replace(tzinfo=UTC) if partner is None else _in_zone(when, partner)


def _in_zone(when: datetime, zone: tzinfo) -> datetime:
    """The wall time ``when`` in ``zone``, as the fixed offset it had there that day (so a
    later astimezone or comparison cannot move it to another offset)."""
    offset = when.replace(tzinfo=zone).utcoffset()
    return when.replace(tzinfo=timezone(offset) if offset is not None else zone)


@functools.cache
def _local_zone(code: str) -> tzinfo | None:
    name = _LOCAL_ZONES.get(code)
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def decode(raw: bytes) -> str:
    """UTF-8 when it is (the U+2026 terminator needs it), else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_utf8(raw: bytes, what: str) -> str:
    """UTF-8 or a :class:`ParseError` naming the first bad byte (JSON must be UTF-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{what} is not UTF-8: byte 0x{raw[exc.start]:02x} ({exc.reason})",
                         offset=exc.start) from None


def plausible(when: datetime | None) -> datetime | None:
    """``when`` if it is an aware datetime between :data:`EARLIEST` and :data:`LATEST` (in
    UTC too), else None: a date that cannot be trusted costs the post its date."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        utc = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if not EARLIEST <= utc.year <= LATEST or not EARLIEST <= when.year <= LATEST:
        return None
    return when


def parse_date(date: str, time: str = "", zone: str = "") -> datetime | None:
    """``YYYYMMDD``/``YYMMDD`` (+ ``HHMM[SS]``) in the given X12 time code → aware datetime.

    ``LT`` (local time) and a time without a code are in the partner's zone while
    :func:`partner_zone` says one (the source's ``timezone``); otherwise, and for unknown
    codes, UTC (an ``LT`` read so is noted for the file's warning). An unreadable date gives
    None, because a bad date must cost the post its date, not the shipment its post.
    """
    date, time = date.strip(), time.strip()
    try:
        if len(date) == 8 and date.isascii() and date.isdigit():  # the usual CCYYMMDD
            day = datetime(int(date[:4]), int(date[4:6]), int(date[6:]))  # (strptime: 4x)
        elif len(date) == 6:
            day = datetime.strptime(date, "%y%m%d")
        elif len(date) == 8:
            day = datetime.strptime(date, "%Y%m%d")
        elif len(date) == 12:
            return parse_date(date[:8], date[8:], zone)
        else:
            return None
        if len(time) >= 4 and time[:4].isdigit():
            day = day.replace(hour=int(time[:2]), minute=int(time[2:4]),
                              second=int(time[4:6]) if time[4:6].isdigit() else 0)
    except ValueError:
        return None
    code = zone.strip().upper()
    if code in ("LT", "") and len(time) >= 4 and time[:4].isdigit():
        # the partner's local time (a date alone stays a day, as everywhere)
        partner = _PARTNER.get()
        if partner is not None:
            return plausible(_in_zone(day, partner))
        if code == "LT":  # local to a place we do not know: UTC, said in a warning
            guessed = _GUESSED.get()
            if guessed is not None:
                guessed.append(f"{date} {time}")
    local = _local_zone(code)
    if local is not None:  # "11:59 ET" on 11 Sep is EDT (UTC-4), on 11 Dec EST (UTC-5)
        return plausible(_in_zone(day, local))
    hours = _ZONES.get(code, 0)
    return plausible(day.replace(tzinfo=timezone(timedelta(hours=hours)) if hours else UTC))


#: UN/EDIFACT 2379 date formats that carry a time zone after the digits (303 = 203 + ZZZ);
#: 205 writes it as ZHHMM
_EDIFACT_ZONED = {"205": 12, "301": 10, "302": 12, "303": 12, "304": 14}
#: the others read here, by their digit count; a century-less year is 20YY
_EDIFACT_PLAIN = {"101": 6, "102": 8, "201": 10, "202": 12, "203": 12, "204": 14}
_ZONE_WORDS = {"UTC": 0, "GMT": 0, "UT": 0, "Z": 0}


def edifact_date(value: str, fmt: str = "") -> datetime | None:
    """A DTM C507 value in its 2379 format → aware datetime (UTC when the format has no zone).

    Partners send 204 (seconds) and 303 (``202611281000+01``, ``…1000UTC``) besides 102/203;
    read by length alone, those lost the post its date (a DESADV's ship date and ETA vanished,
    and its replacement then said "sent 20 Nov (was ?)"). Unknown formats fall back to the
    length-based :func:`parse_date`.
    """
    value, fmt = value.strip(), fmt.strip()
    if fmt == "10" and len(value) == 13 and value[8:9].upper() == "T":
        return parse_date(value[:8], value[9:])
    digits = _EDIFACT_ZONED.get(fmt) or _EDIFACT_PLAIN.get(fmt)
    if digits is None or len(value) < digits or not value[:digits].isdigit():
        return parse_date(value)
    stamp, zone = value[:digits], value[digits:]
    if fmt in _EDIFACT_PLAIN and zone:
        return parse_date(value)
    if len(stamp) in (6, 10) or (len(stamp) == 12 and fmt in ("202", "302")):
        stamp = "20" + stamp  # YY… formats: this century
    when = parse_date(stamp[:8], stamp[8:])
    if when is None or not zone:
        return when
    offset = _zone_offset(zone)
    if offset is None:
        return when  # an unknown zone reads as UTC, like an X12 time code we do not know
    return plausible(when.replace(tzinfo=timezone(offset)))


def _zone_offset(zone: str) -> timedelta | None:
    """``+01``, ``-0530``, ``UTC`` → the offset; None for anything else."""
    zone = zone.strip().upper()
    if zone in _ZONE_WORDS:
        return timedelta(hours=_ZONE_WORDS[zone])
    sign = {"+": 1, "-": -1}.get(zone[:1])
    rest = zone[1:]
    if sign is None or not rest.isdigit() or len(rest) not in (2, 4):
        return None
    hours, minutes = int(rest[:2]), int(rest[2:] or 0)
    if hours > 14 or minutes > 59:
        return None
    return sign * timedelta(hours=hours, minutes=minutes)


def to_number(text: str) -> float | None:
    """A finite number, or None (``nan``, ``inf`` and ``1e999`` are not quantities)."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
