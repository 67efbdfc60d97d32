"""Time zones as people write them in YAML: an IANA name (``Europe/Berlin``, ``UTC``).

One type for every config key that names a zone (a source's ``time_zone`` or ``timezone``,
``display.timezone``), so each says the same thing about a name the zone database does not
know, up front in ``floorstream check``.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

__all__ = ["TimeZoneName", "check_zone"]


def check_zone(value: str) -> str:
    """``value`` if the zone database knows it; ValueError otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: an IANA name such as Europe/Berlin, "
                         "America/Chicago or UTC") from None
    return value


#: a ``str`` config field holding an IANA zone name, checked when the config is read
TimeZoneName = Annotated[str, AfterValidator(check_zone)]
