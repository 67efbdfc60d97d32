"""Numbers and dates as a Frappe site writes them, read back into typed values.

Frappe's ``tabVersion`` keeps what ``get_formatted`` shows, in the site's own formats (System
Settings ``number_format``, ``date_format``, ``time_format``): ``"1,000.000"``,
``"1.000,000"``, ``"25-11-2026"``, ``"25-11-2026 14:30:05"``, ``"₹ 1,000.00"``. This module
turns them back into :class:`~decimal.Decimal`, :class:`~datetime.date` and
:class:`~datetime.datetime`, so a post says "quantity 500 → 1000" and a template compares
numbers. With the field's type known (``tabDocField``) only that type is tried; without it a
value must match the site's format exactly (a group or decimal separator in the right
places, a full date) to be read as a number or a date: ``"00123"`` or ``"v1.2.3"`` stay text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["SiteFormats", "parse_value"]

#: Frappe's number formats → (decimal separator, group separator); frappe.utils
_NUMBER_FORMATS: dict[str, tuple[str, str]] = {
    "#,###.##": (".", ","), "#.###,##": (",", "."), "# ###.##": (".", " "),
    "# ###,##": (",", " "), "#'###.##": (".", "'"), "#, ###.##": (".", ", "),
    "#,##,###.##": (".", ","), "#,###.###": (".", ","), "#.###": ("", "."),
    "#,###": ("", ","), "#.########": (".", ""),
}
_NUMERIC = frozenset({"Int", "Float", "Currency", "Percent", "Rating"})
_SYMBOLS = r"[^\w\s\d.,'\-+]{1,3}"  # ₹ $ € % …: no letters, digits or separators


def _separators(number_format: str) -> tuple[str, str]:
    known = _NUMBER_FORMATS.get(number_format)
    if known is not None:
        return known
    # an unlisted format: the last separator before a final run of #'s is the decimal one
    # when it differs from the one before it ("#.###,##"), else it groups ("#.###")
    seps = re.findall(r"[^#]+", number_format)
    if not seps:
        return ".", ""
    if len(seps) >= 2 and seps[-1] != seps[-2]:
        return seps[-1], seps[-2]
    return "", seps[0]


@dataclass(frozen=True)
class SiteFormats:
    """A site's number, date and time formats (Frappe notation)."""

    number: str = "#,###.##"
    date: str = "dd-mm-yyyy"
    time: str = "HH:mm:ss"

    def __post_init__(self) -> None:
        decimal, group = _separators(self.number)
        g, d = re.escape(group), re.escape(decimal)
        if group:
            body = rf"\d{{1,3}}(?:{g}\d{{2,3}})*" if self.number.startswith("#,##,") else \
                rf"\d{{1,3}}(?:{g}\d{{3}})*"
            body = rf"(?:{body}|\d+)"
        else:
            body = r"\d+"
        frac = rf"(?:{d}\d+)?" if decimal else ""
        number = rf"(?P<num>[-+]?{body}{frac})"
        object.__setattr__(self, "_decimal", decimal)
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_number_re", re.compile(
            rf"^\s*(?:{_SYMBOLS}\s?)?{number}(?:\s?{_SYMBOLS})?\s*$"))
        parts = re.fullmatch(r"(dd|mm|yyyy)(\W)(dd|mm|yyyy)\2(dd|mm|yyyy)", self.date)
        order, sep = (("dd", "mm", "yyyy"), "-") if parts is None else \
            ((parts.group(1), parts.group(3), parts.group(4)), parts.group(2))
        sizes = {"dd": r"(?P<dd>\d{1,2})", "mm": r"(?P<mm>\d{1,2})", "yyyy": r"(?P<yyyy>\d{4})"}
        day = re.escape(sep).join(sizes[p] for p in order)
        object.__setattr__(self, "_date_re", re.compile(
            rf"^\s*{day}(?:[ T](?P<H>\d{{1,2}}):(?P<M>\d{{2}})(?::(?P<S>\d{{2}})"
            rf"(?:\.(?P<f>\d{{1,6}}))?)?)?\s*$"))

    def number_of(self, text: str, strict: bool) -> Decimal | None:
        """``"1,000.000"`` → ``Decimal("1000.000")``; None when it is not a number here.
        ``strict``: the type is unknown, so a bare digit string (a code such as ``00123``)
        is not taken for a number."""
        match = self._number_re.match(text)  # type: ignore[attr-defined]
        if match is None:
            return None
        raw = match.group("num")
        decimal, group = self._decimal, self._group  # type: ignore[attr-defined]
        if strict and not ((group and group in raw) or (decimal and decimal in raw)):
            return None
        if group:
            raw = raw.replace(group, "")
        if decimal:
            raw = raw.replace(decimal, ".")
        try:
            return Decimal(raw)
        except InvalidOperation:
            return None

    def date_of(self, text: str) -> dt.date | dt.datetime | None:
        """``"25-11-2026"`` → a date; ``"25-11-2026 14:30:05"`` → a datetime; else None."""
        match = self._date_re.match(text)  # type: ignore[attr-defined]
        if match is None:
            return None
        try:
            day = dt.date(int(match.group("yyyy")), int(match.group("mm")), int(match.group("dd")))
            if match.group("H") is None:
                return day
            micro = (match.group("f") or "0").ljust(6, "0")
            return dt.datetime(day.year, day.month, day.day, int(match.group("H")),
                            int(match.group("M")), int(match.group("S") or 0), int(micro))
        except ValueError:
            return None


def parse_value(value: Any, formats: SiteFormats, fieldtype: str | None = None) -> Any:
    """A tabVersion value as the typed value it was: numbers, dates and datetimes by the
    field's type (``tabDocField.fieldtype``) or, unknown, by an exact match of the site's
    formats; anything else (and every non-string) unchanged."""
    if not isinstance(value, str) or not value.strip():
        return value
    if fieldtype is not None:
        if fieldtype in _NUMERIC:
            number = formats.number_of(value, strict=False)
            if number is None:
                return value
            return int(number) if fieldtype == "Int" and number == number.to_integral() \
                else number
        if fieldtype in ("Date", "Datetime"):
            parsed = formats.date_of(value)
            return value if parsed is None else parsed
        if fieldtype == "Check":
            return value.strip() in ("1", "Yes", "yes", "true")
        return value
    parsed_date = formats.date_of(value)
    if parsed_date is not None:
        return parsed_date
    number = formats.number_of(value, strict=True)
    return value if number is None else number
