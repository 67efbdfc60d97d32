"""Engineering units as edge nodes write them (``engUnit``: ``degC``, ``DEG C``, ``C``) → as
people read them in a post (``°C``), and the readable name of a Sparkplug metric.

The table is data: a unit it does not know is shown as the node wrote it (trimmed), never
guessed at, never converted.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LABEL_PREFIX", "UNITS", "metric_label", "normalise_unit"]

#: the decoder's ``units`` keys of a birth's ``displayName`` properties: this prefix and the
#: metric's name (one dict for both, filled only for named metrics with properties: births;
#: a metric name never holds NUL)
LABEL_PREFIX: Final = "\x00label:"

#: spellings (compared case-insensitively, without spaces, dots and underscores) → unit
UNITS: Final[dict[str, str]] = {
    "°c": "°C", "degc": "°C", "degreec": "°C", "degreesc": "°C", "degcelsius": "°C",
    "celsius": "°C", "c": "°C", "ºc": "°C", "℃": "°C",
    "°f": "°F", "degf": "°F", "degreef": "°F", "degreesf": "°F", "fahrenheit": "°F",
    "f": "°F", "ºf": "°F", "℉": "°F",
    "k": "K", "kelvin": "K",
    "%": "%", "pct": "%", "percent": "%",
    "bar": "bar", "mbar": "mbar", "psi": "psi", "pa": "Pa", "kpa": "kPa", "mpa": "MPa",
    "rpm": "rpm", "1/min": "rpm", "min-1": "rpm", "min^-1": "rpm",
    "mm/s": "mm/s", "m/s": "m/s", "m/min": "m/min", "hz": "Hz", "khz": "kHz",
    "a": "A", "amp": "A", "amps": "A", "ma": "mA", "v": "V", "volt": "V", "volts": "V",
    "kv": "kV", "w": "W", "kw": "kW", "kwh": "kWh", "wh": "Wh", "mw": "MW",
    "l/min": "l/min", "lpm": "l/min", "m3/h": "m³/h", "m³/h": "m³/h",
    "kg": "kg", "g": "g", "t": "t", "mm": "mm", "m": "m", "µm": "µm", "um": "µm",
    "n·m": "N·m", "n": "N", "kn": "kN", "s": "s", "ms": "ms", "h": "h",
}


def normalise_unit(raw: str) -> str:
    """``degC`` → ``°C``; an unknown unit as given (trimmed); "" for nothing."""
    text = raw.strip()
    if not text:
        return ""
    key = text.casefold().replace(" ", "").replace("_", "").replace(".", "")
    return UNITS.get(key, text)


def metric_label(name: str, display_name: str | None = None) -> str:
    """What people call a metric: its ``displayName`` property when the birth gave one, else
    the last element of its path (``Process/Temperature`` → ``Temperature``)."""
    if display_name and display_name.strip():
        return display_name.strip()
    return name.rsplit("/", 1)[-1].strip() or name
