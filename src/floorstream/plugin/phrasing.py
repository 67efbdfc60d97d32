"""How numbers, units and durations read in a post: ``92 °C``, ``42 min``, ``2 h 5 min``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["duration", "number", "quantity", "value"]


def number(v: float | int | Decimal) -> str:
    """Plain decimal without noise: 92.0 → 92, 71.346 → 71.35, 0.00123 → 0.00123."""
    if isinstance(v, bool):
        return str(v).lower()
    f = float(v)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    if abs(f) >= 1:
        return f"{f:.2f}".rstrip("0").rstrip(".")
    return f"{f:.3g}"


def quantity(v: Any, unit: str = "") -> str:
    """A value with its unit: ``92 °C``, ``45%``."""
    text = value(v)
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "°", "‰") else f"{text} {unit}"


def value(v: Any) -> str:
    """Any field value as people read it (None → "(empty)")."""
    if v is None or v == "":
        return "(empty)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float | Decimal):
        return number(v)
    if isinstance(v, datetime):
        return v.strftime("%-d %b %Y %H:%M")
    if isinstance(v, date):
        return v.strftime("%-d %b %Y")
    return str(v)


def duration(seconds: float) -> str:
    """30 s, 1 min 50 s, 4 min, 2 h 5 min, 3 d 4 h: under 10 min to 5 s, else rounded to the
    nearest of the smallest unit shown. A stop of 1 min 50 s once read "1 min": the rest was
    cut off, nearly half the time for short stops, which are the common ones.
    """
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 600:  # to 5 s: a tick's jitter (61 s) is not worth "1 min 1 s"
        s = (s + 2) // 5 * 5
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    minutes = (s + 30) // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod((s + 1800) // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
