"""``display:``: how the plant reads times in posts.

Floorstream keeps every time in UTC; people read their plant's clock. ``display.timezone``
is the zone posts show times in ("planned start 25 Nov 2026 10:15 CET", "no data since
08:14 CET"), always with the zone's abbreviation, so a post forwarded to another site or
read next to a UTC log is never an hour off unnoticed.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from floorstream.plugin.zones import TimeZoneName

__all__ = ["DisplaySettings"]


class DisplaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName | None = Field(
        default=None,
        description="IANA zone of the times in posts, e.g. Europe/Berlin, shown with its "
                    "abbreviation (CET, CEST). Default: ERP times in the source's own "
                    "time_zone (Odoo: UTC), machine times in UTC, each labelled")

    @property
    def zone(self) -> tzinfo | None:
        """The zone posts show times in; None: each time in its source's own zone."""
        return None if self.timezone is None else ZoneInfo(self.timezone)
