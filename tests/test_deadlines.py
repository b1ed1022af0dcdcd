"""Deadlines in working days, NRW public holidays excluded (PROCESS.md, *Deadlines*)."""

from datetime import date, datetime

import pytest

from referral.cases import process
from referral.cases.vocabulary import Urgency
from referral.kernel.deadlines import end_of_nth_working_day, is_working_day, working_days_between
from referral.kernel.settings import DEADLINE_DEFAULTS
from referral.timeutil import local_to_utc

SETTINGS = DEADLINE_DEFAULTS


def local(*args) -> datetime:
    return local_to_utc(datetime(*args))


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 26), True),  # Thursday
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 12, 25), False),  # Christmas
        (date(2026, 12, 24), True),  # Christmas Eve is no public holiday
        (date(2027, 5, 27), False),  # Fronleichnam: a holiday in NRW, not everywhere in Germany
        (date(2027, 11, 1), False),  # Allerheiligen: NRW
        (date(2027, 10, 31), False),  # Sunday anyway
        (date(2026, 11, 18), True),  # Buß- und Bettag: only in Saxony
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 29), False),  # Easter Monday
    ],
)
def test_working_days_follow_nrw_holidays(day, working):
    assert is_working_day(day) is working


def test_acknowledge_within_one_working_day_ends_with_that_day():
    # Thursday morning → due at the end of Friday.
    due = process.acknowledge_due(local(2026, 11, 26, 9, 30), Urgency.URGENT, SETTINGS)
    assert due == local(2026, 11, 28, 0, 0)


def test_acknowledge_over_christmas_skips_holidays_and_weekend():
    # Thursday 24 Dec: 25th and 26th are holidays, 27th Sunday → Monday 28th.
    due = process.acknowledge_due(local(2026, 12, 24, 15, 0), Urgency.CLARIFY, SETTINGS)
    assert due == local(2026, 12, 29, 0, 0)


def test_acknowledge_before_allerheiligen():
    # Friday 29 Oct 2027 → Monday 1 Nov is a holiday in NRW → due end of Tuesday 2 Nov.
    due = process.acknowledge_due(local(2027, 10, 29, 12, 0), Urgency.URGENT, SETTINGS)
    assert due == local(2027, 11, 3, 0, 0)


def test_acute_is_two_clock_hours_even_at_night():
    received = local(2026, 12, 25, 22, 15)
    assert process.acknowledge_due(received, Urgency.ACUTE, SETTINGS) == local(2026, 12, 26, 0, 15)


def test_feedback_within_ten_working_days_over_christmas_and_new_year():
    # Submitted Mon 21 Dec 2026. Working days: 22, 23, 24, 28, 29, 30, 31 Dec, 2027: 1 Jan is a
    # holiday, so 4, 5, 6 Jan → the 10th working day is Wed 6 Jan.
    due = process.feedback_due(local(2026, 12, 21, 10, 0), SETTINGS)
    assert due == local(2027, 1, 7, 0, 0)


def test_settings_change_the_deadline():
    settings = dict(SETTINGS, feedback_working_days=3)
    assert process.feedback_due(local(2026, 11, 23, 8, 0), settings) == local(2026, 11, 27, 0, 0)


def test_working_days_between_counts_only_working_days():
    assert working_days_between(local(2026, 12, 23, 9, 0), local(2026, 12, 29, 9, 0)) == 3


def test_due_dates_are_stored_on_submission(world):
    from . import factories

    referral = factories.referral_in(process.State.SUBMITTED, world.teacher, world.asd, now=local(2026, 11, 26, 9, 0))
    assert referral.acknowledge_due_at == local(2026, 11, 28, 0, 0)
    assert referral.feedback_due_at == end_of_nth_working_day(local(2026, 11, 26, 9, 0), 10)
