"""Periods of the evaluation: month, quarter, school year (NRW: 1 August to 31 July) or free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ..timeutil import local_to_utc

MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


@dataclass(frozen=True)
class Period:
    first: date  # local days, inclusive
    last: date
    label: str

    @property
    def start(self) -> datetime:
        return local_to_utc(datetime.combine(self.first, time.min))

    @property
    def end(self) -> datetime:
        return local_to_utc(datetime.combine(self.last + timedelta(days=1), time.min))


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def month(year: int, m: int) -> Period:
    return Period(date(year, m, 1), _month_end(year, m), f"{MONTHS[m - 1]} {year}")


def quarter(year: int, q: int) -> Period:
    return Period(date(year, 3 * q - 2, 1), _month_end(year, 3 * q), f"{q}. Quartal {year}")


def school_year(start_year: int) -> Period:
    return Period(
        date(start_year, 8, 1), date(start_year + 1, 7, 31), f"Schuljahr {start_year}/{str(start_year + 1)[2:]}"
    )


def containing(kind: str, day: date) -> Period:
    if kind == "month":
        return month(day.year, day.month)
    if kind == "quarter":
        return quarter(day.year, (day.month - 1) // 3 + 1)
    return school_year(day.year if day.month >= 8 else day.year - 1)


def before(kind: str, period: Period) -> Period:
    """The period of the same kind just before (free periods: the same number of days)."""
    if kind in ("month", "quarter", "school_year"):
        return containing(kind, period.first - timedelta(days=1))
    length = period.last - period.first
    last = period.first - timedelta(days=1)
    first = last - length
    return Period(first, last, f"{first:%d.%m.%Y}–{last:%d.%m.%Y}")


def free(first: date, last: date) -> Period:
    return Period(first, last, f"{first:%d.%m.%Y}–{last:%d.%m.%Y}")
