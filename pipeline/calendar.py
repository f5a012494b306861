"""Trading days: the New York Stock Exchange's sessions, from the `exchange_calendars` library.

Its XNYS calendar knows the regular holidays and the unscheduled closures (9/11, national days
of mourning, Hurricane Sandy) that a hand-written holiday list misses. Every data set this
project ships trades there.
"""

from __future__ import annotations

import functools
import warnings

import pandas as pd

EXCHANGE = "XNYS"
# The span one calendar covers. The library's default is about 20 years back to 1 year ahead
# of today, shorter than the shipped 1999-2018 data; listing 1885-2100 takes 0.15 s, once.
FIRST, LAST = pd.Timestamp("1885-01-01"), pd.Timestamp("2100-12-31")


@functools.cache
def _calendar(start: pd.Timestamp, end: pd.Timestamp):
    import exchange_calendars  # 0.5 s: only where a date is asked for

    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads `Series.values` of dates with a time zone, which pandas
        # 3.1 deprecates; the sessions are right, and the warning is not this project's to fix.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray that drops timezone")
        return exchange_calendars.get_calendar(EXCHANGE, start=start, end=end)


def next_trading_day(day) -> pd.Timestamp:
    """The first NYSE session after `day` (a date, any time of day ignored)."""
    following = pd.Timestamp(day).normalize() + pd.Timedelta(days=1)
    if FIRST <= following <= LAST - pd.Timedelta(days=30):
        calendar = _calendar(FIRST, LAST)
    else:  # outside the usual span: a calendar around the date itself
        calendar = _calendar(following - pd.Timedelta(days=31), following + pd.Timedelta(days=366))
    return calendar.date_to_session(following, direction="next")


def next_trading_days(day, count: int) -> list[pd.Timestamp]:
    """The first `count` NYSE sessions after `day`, in order."""
    days = [next_trading_day(day)]
    while len(days) < count:
        days.append(next_trading_day(days[-1]))
    return days
