"""Working-day arithmetic for the deadlines of PROCESS.md (NRW public holidays excluded)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import holidays
from sqlalchemy import and_, or_

from ..timeutil import local_to_utc, to_local

if TYPE_CHECKING:
    from .models import Referral


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


# --- Overdue ---------------------------------------------------------------------------------


class Late(enum.StrEnum):
    """What a referral can be overdue with (PROCESS.md, *Deadlines*)."""

    ACKNOWLEDGE = "acknowledge"  # the district confirms receipt
    FEEDBACK = "feedback"  # the school is owed feedback


@dataclass(frozen=True)
class OverdueRule:
    condition: Any  # SQL condition on `Referral`, for lists, counts and reminders
    applies: Callable[[Referral], bool]  # the same for one loaded referral


def overdue(now: datetime, *late: Late) -> OverdueRule:
    """The one statement of "overdue at `now`" (with `late`: only for those deadlines; without: any).

    An acknowledgement is overdue while the referral waits in SUBMITTED past `acknowledge_due_at`;
    feedback is overdue while the referral is open past `feedback_due_at`."""
    from .models import Referral  # the models import the process module, which imports this one
    from .process import OPEN_STATES, State

    rules: dict[Late, tuple[Any, Callable[[Referral], bool]]] = {
        Late.ACKNOWLEDGE: (
            and_(Referral.state == State.SUBMITTED, Referral.acknowledge_due_at < now),
            lambda r: r.state is State.SUBMITTED and r.acknowledge_due_at is not None and r.acknowledge_due_at < now,
        ),
        Late.FEEDBACK: (
            and_(Referral.state.in_(OPEN_STATES), Referral.feedback_due_at < now),
            lambda r: r.state in OPEN_STATES and r.feedback_due_at is not None and r.feedback_due_at < now,
        ),
    }
    chosen = [rules[kind] for kind in (late or tuple(Late))]
    conditions = [condition for condition, _ in chosen]
    predicates = [predicate for _, predicate in chosen]
    return OverdueRule(
        condition=conditions[0] if len(conditions) == 1 else or_(*conditions),
        applies=lambda referral: any(predicate(referral) for predicate in predicates),
    )
