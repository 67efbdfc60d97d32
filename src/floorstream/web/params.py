"""Query parameters shared by pages, the JSON API and the event stream."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query
from pydantic import BeforeValidator

from floorstream.model import Severity
from floorstream.web.queries import FeedFilter

__all__ = ["feed_filter", "safe_next"]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _blank_is_none(value: object) -> object:
    """An empty field of the feed's filter form (``since=&until=``, sent by every browser
    for the fields left blank) is no filter, not a malformed time."""
    return None if value == "" else value


#: a time filter; blank is none
Moment = Annotated[datetime | None, BeforeValidator(_blank_is_none)]


def feed_filter(
    severity: Annotated[str | None, Query(description="at least this severity",
                                          max_length=16)] = None,
    source: Annotated[str | None, Query(max_length=128)] = None,
    subject: Annotated[str | None, Query(max_length=255)] = None,
    type: Annotated[str | None, Query(description="event type, or a prefix ending in *",
                                      max_length=128)] = None,
    since: Annotated[Moment, Query(description="created at or after")] = None,
    until: Annotated[Moment, Query(description="created before")] = None,
    q: Annotated[str | None, Query(description="text in the summary or body",
                                   max_length=200)] = None,
) -> FeedFilter:
    """The feed filters from the query string; an empty parameter is no filter."""
    level = None
    if severity:
        try:
            level = Severity.parse(severity)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    try:
        since_at, until_at = _aware(since), _aware(until)
        if since_at is not None:
            since_at.astimezone(UTC)
        if until_at is not None:
            until_at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise HTTPException(422, f"time out of range: {exc}") from None
    return FeedFilter(severity=level, source=source or None, subject=subject or None,
                      type=type or None, since=since_at, until=until_at, text=q or None)


def safe_next(value: str | None, default: str = "/") -> str:
    """Where to go after a form: a path on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value
