"""The next trading day, from the exchange calendar."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import ingest
from pipeline.calendar import next_trading_day


@pytest.mark.parametrize(
    ("day", "next_day"),
    [
        ("2018-12-31", "2019-01-02"),  # New Year's Day
        ("2019-04-18", "2019-04-22"),  # Good Friday, then the weekend
        ("2021-12-30", "2021-12-31"),  # New Year's Day 2022 is a Saturday: not made up on the Friday
        ("2022-06-17", "2022-06-21"),  # Juneteenth (from 2022) on a Sunday: the Monday
        ("2024-11-27", "2024-11-29"),  # Thanksgiving
        ("2012-10-26", "2012-10-31"),  # Hurricane Sandy: closed two days, unscheduled
        ("2018-12-04", "2018-12-06"),  # President George H. W. Bush's day of mourning
        ("2018-12-31 16:00", "2019-01-02"),  # a time of day is ignored
    ],
)
def test_the_next_trading_day_skips_weekends_holidays_and_unscheduled_closures(day, next_day):
    assert next_trading_day(pd.Timestamp(day)) == pd.Timestamp(next_day)


@pytest.mark.parametrize(("day", "next_day"), [("1880-06-04", "1880-06-07"), ("2150-12-24", "2150-12-28")])
def test_dates_outside_the_usual_span_still_skip_weekends_and_holidays(day, next_day):
    assert next_trading_day(pd.Timestamp(day)) == pd.Timestamp(next_day)


def test_the_calendar_reproduces_twenty_years_of_sp500_trading_days():
    days = pd.DatetimeIndex(ingest.load_sample("sp500")["ds"])
    assert days[0] == pd.Timestamp("1999-01-04") and days[-1] == pd.Timestamp("2018-12-31")
    missed = [
        day.date().isoformat()
        for day, following in zip(days[:-1], days[1:], strict=True)
        if next_trading_day(day) != following
    ]
    # The unscheduled closures too (9/11, the national days of mourning, Hurricane Sandy).
    assert missed == []
