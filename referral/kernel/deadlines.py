"""Working-day arithmetic for the deadlines of PROCESS.md (NRW public holidays excluded)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from ..timeutil import local_to_utc, to_local


@lru_cache(maxsize=64)
def _nrw_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DE", subdiv="NW", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _nrw_holidays(day.year)


def nth_working_day_after(day: date, n: int) -> date:
    """The n-th working day after `day` (n >= 1); `day` itself never counts."""
    current = day
    counted = 0
    while counted < n:
        current += timedelta(days=1)
        if is_working_day(current):
            counted += 1
    return current


def end_of_nth_working_day(start_utc: datetime, n: int) -> datetime:
    """Due at the end (24:00 local time) of the n-th working day after the local day of `start_utc`."""
    local_day = to_local(start_utc).date()
    due_day = nth_working_day_after(local_day, n)
    return local_to_utc(datetime.combine(due_day + timedelta(days=1), time.min))


def working_days_between(start_utc: datetime, end_utc: datetime) -> int:
    """Working days from the local day after `start_utc` up to and including the local day of `end_utc`."""
    day, end = to_local(start_utc).date(), to_local(end_utc).date()
    count = 0
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def working_minutes_between(start_utc: datetime, end_utc: datetime) -> int:
    """Minutes from `start_utc` to `end_utc` that fall on working days (local time; weekends and NRW
    public holidays do not count, every hour of a working day does). The evaluation's "working time"."""
    if end_utc <= start_utc:
        return 0
    total = 0
    day, last = to_local(start_utc).date(), to_local(end_utc).date()
    while day <= last:
        if is_working_day(day):
            # Aware datetimes in UTC for the subtraction: DST days have 23 or 25 hours.
            day_start = local_to_utc(datetime.combine(day, time.min))
            day_end = local_to_utc(datetime.combine(day + timedelta(days=1), time.min))
            lo, hi = max(start_utc, day_start), min(end_utc, day_end)
            if hi > lo:
                total += int((hi - lo).total_seconds() // 60)
        day += timedelta(days=1)
    return total
