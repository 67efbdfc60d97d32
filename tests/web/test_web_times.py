"""Times on the pages: the plant's clock with its zone, and a date with no time of day
shown as the day it names (it arrives as midnight UTC: "01:00 CET" was a time nobody gave)."""

from __future__ import annotations

from datetime import UTC, datetime

from floorstream.web.views import environment


def test_a_date_without_a_time_is_shown_as_its_day_on_any_clock() -> None:
    when = environment("Europe/Berlin").filters["when"]
    assert when(datetime(2011, 12, 6, tzinfo=UTC)) == "06 Dec 2011"
    this_year = datetime.now(UTC).year
    assert when(datetime(this_year, 12, 6, tzinfo=UTC)) == "06 Dec"
    # a real time, even one second past midnight, is a time on the plant's clock
    assert when(datetime(2011, 12, 6, 0, 0, 1, tzinfo=UTC)) == "06 Dec 2011 01:00:01 CET"
    assert when(datetime(2011, 7, 6, 13, 5, tzinfo=UTC)) == "06 Jul 2011 15:05:00 CEST"
