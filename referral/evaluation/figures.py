"""The figures of the evaluation, each computed by the database (PROCESS.md, *Evaluation*).

Every function takes a `Scope` (period, district, school) and returns plain numbers. Neither the
number of queries nor the amount of data read grows with the history: the figures sum the monthly
aggregates of aggregates.py (refreshed first if anything changed), plus the cut months of a free
period computed live. A referral belongs to the period in which it was submitted, to the district
responsible for it now (after a transfer: the receiving one) and to its school. A consultation
belongs to the period in which it was requested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, and_, case, cast, false, func, or_, select

from ..cases.models import Referral
from ..cases.process import OPEN_STATES, State
from ..extensions import db
from ..organisation.models import District, School
from ..timeutil import utcnow
from . import aggregates
from .aggregates import COARSE, DURATIONS, TRANSFER


@dataclass(frozen=True)
class Scope:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    district_ids: tuple[int, ...] | None = None  # None: all districts
    school_id: int | None = None
    exclude_districts: tuple[int, ...] = ()


def _source(kinds, scope: Scope, grain: str = "best", by_month: bool = False):
    aggregates.refresh()
    return aggregates.source(kinds, scope, utcnow(), grain, by_month)


def _by_key(kinds: tuple[str, ...], scope: Scope) -> dict[tuple[str, str], int]:
    rows = _source(kinds, scope)
    return {
        (kind, key): int(n)
        for kind, key, n in db.session.execute(
            select(rows.c.kind, rows.c.key, func.sum(rows.c.n)).group_by(rows.c.kind, rows.c.key)
        ).all()
        if n  # from running totals, a key without rows in the period sums to 0
    }


# --- Counts ------------------------------------------------------------------------------------


def per_month(scope: Scope) -> dict[str, tuple[int, int]]:
    """{month: (referrals, consultations)} for every month with either."""
    rows = _source(("referrals", "consultations"), scope, by_month=True)
    found: dict[str, list[int]] = {}
    for kind, month, n in db.session.execute(
        select(rows.c.kind, rows.c.month, func.sum(rows.c.n)).group_by(rows.c.kind, rows.c.month)
    ).all():
        found.setdefault(month, [0, 0])[0 if kind == "referrals" else 1] = int(n)
    return {m: (found[m][0], found[m][1]) for m in sorted(found)}


def _place_counts(scope: Scope, grain: str, column: str):
    rows = _source(("referrals", "consultations"), scope, grain)
    place = rows.c[column]
    return (
        select(
            place.label("place"),
            func.sum(case((rows.c.kind == "referrals", rows.c.n), else_=0)).label("r"),
            func.sum(case((rows.c.kind == "consultations", rows.c.n), else_=0)).label("c"),
        )
        .group_by(place)
        .subquery()
    )


def per_school(scope: Scope) -> list[tuple[str, str, int, int]]:
    """(district, school, referrals, consultations) for each school in scope, also those with none."""
    counts = _place_counts(scope, "school", "school_id")
    statement = (
        select(District.name, School.name, func.coalesce(counts.c.r, 0), func.coalesce(counts.c.c, 0))
        .join(District, School.district_id == District.id)
        .outerjoin(counts, counts.c.place == School.id)
        .order_by(District.name, School.name)
    )
    if scope.district_ids is not None:
        statement = statement.where(School.district_id.in_(scope.district_ids))
    if scope.school_id is not None:
        statement = statement.where(School.id == scope.school_id)
    return [(d, s, int(r), int(c)) for d, s, r, c in db.session.execute(statement).all()]


def per_district(scope: Scope) -> list[tuple[str, int, int]]:
    counts = _place_counts(scope, "district", "district_id")
    statement = (
        select(District.name, func.coalesce(counts.c.r, 0), func.coalesce(counts.c.c, 0))
        .outerjoin(counts, counts.c.place == District.id)
        .order_by(District.name)
    )
    if scope.district_ids is not None:
        statement = statement.where(District.id.in_(scope.district_ids))
    return [(d, int(r), int(c)) for d, r, c in db.session.execute(statement).all()]


def per_urgency(scope: Scope) -> dict[str, int]:
    return {key: n for (_, key), n in _by_key(("urgency",), scope).items()}


def consultations_per_urgency(scope: Scope) -> dict[str, int]:
    return {key: n for (_, key), n in _by_key(("c_urgency",), scope).items()}


def per_category(scope: Scope) -> dict[str, tuple[int, int]]:
    """{category: (referrals, consultations)}; a referral with two categories counts in both."""
    found = _by_key(("category", "c_category"), scope)
    keys = {key for _, key in found}
    return {key: (found.get(("category", key), 0), found.get(("c_category", key), 0)) for key in keys}


def _school_cross(kind: str, scope: Scope, column: str) -> dict[tuple[str, str], int]:
    rows = _source((kind,), scope, "school", by_month=column == "month")
    by = rows.c[column]
    found = db.session.execute(
        select(School.name, by, func.sum(rows.c.n))
        .join(School, School.id == rows.c.school_id)
        .group_by(School.name, by)
        .having(func.sum(rows.c.n) > 0)
    ).all()
    return {(school, value): int(n) for school, value, n in found}


def school_by_month(scope: Scope) -> dict[tuple[str, str], int]:
    return _school_cross("referrals", scope, "month")


def school_by_category(scope: Scope) -> dict[tuple[str, str], int]:
    return _school_cross("category", scope, "key")


def assessment_results(scope: Scope) -> dict[str, int]:
    return {key: n for (_, key), n in _by_key(("result",), scope).items()}


def recommendations(scope: Scope) -> dict[str, int]:
    return {key: n for (_, key), n in _by_key(("recommendation",), scope).items()}


def transfers(scope: Scope) -> list[tuple[str, str, int]]:
    """(from district, to district, count) of transfers made in the period, touching the scope."""
    rows = _source((TRANSFER,), scope, "district")
    source, target = District.__table__.alias("source"), District.__table__.alias("target")
    found = db.session.execute(
        select(source.c.name, target.c.name, func.sum(rows.c.n))
        .select_from(rows)
        .join(source, source.c.id == cast(rows.c.key, Integer))
        .join(target, target.c.id == rows.c.district_id)
        .group_by(source.c.name, target.c.name)
        .having(func.sum(rows.c.n) != 0)
        .order_by(source.c.name, target.c.name)
    ).all()
    return [(a, b, int(n)) for a, b, n in found]


# --- Shares and times --------------------------------------------------------------------------


@dataclass
class KeyFigures:
    referrals: int = 0
    consultations: int = 0
    ack_due: int = 0  # acknowledged, or overdue without (the denominator of "in time")
    ack_in_time: int = 0
    feedback_due: int = 0
    feedback_in_time: int = 0
    with_feedback: int = 0
    confirmed: int = 0
    consulted: int = 0
    informed: int = 0
    ack_hours: tuple = (None, None)  # (median, 90th percentile) calendar hours
    ack_working_hours: tuple = (None, None)
    feedback_days: tuple = (None, None)  # calendar days
    feedback_working_days: tuple = (None, None)  # working days (of 24 hours)
    ack_n: int = 0
    feedback_n: int = 0


def key_figures(scope: Scope, now: datetime) -> KeyFigures:
    found = {kind: n for (kind, _), n in _by_key((*aggregates.REFERRAL_COUNTS, "consultations"), scope).items()}
    # What depends on the clock: referrals whose deadline is still running at `now` are not yet
    # "due". Counted live over the partial indexes of the waiting ones (a handful, not the history).
    conditions = [
        Referral.state != State.DRAFT,
        Referral.submitted_at >= scope.start,
        Referral.submitted_at < scope.end,
        *aggregates.Raw(None, scope.district_ids, scope.exclude_districts, scope.school_id).place(
            Referral.district_id, Referral.school_id
        ),
    ]
    waiting_ack = and_(Referral.acknowledged_at.is_(None), Referral.acknowledge_due_at >= now)
    waiting_feedback = and_(Referral.feedback_at.is_(None), Referral.feedback_due_at >= now)
    ack_waiting, feedback_waiting = db.session.execute(
        select(
            func.count().filter(waiting_ack),
            func.count().filter(waiting_feedback),
        ).where(*conditions, or_(waiting_ack, waiting_feedback))
    ).one()
    get = found.get
    figures = KeyFigures(
        referrals=get("referrals", 0),
        consultations=get("consultations", 0),
        ack_due=get("acknowledged", 0) + get("unacknowledged", 0) - (ack_waiting or 0),
        ack_in_time=get("ack_in_time", 0),
        feedback_due=get("feedback", 0) + get("awaiting", 0) - (feedback_waiting or 0),
        feedback_in_time=get("feedback_in_time", 0),
        with_feedback=get("feedback", 0),
        confirmed=get("confirmed", 0),
        consulted=get("consulted", 0),
        informed=get("informed", 0),
    )
    times = _percentiles(scope)
    figures.ack_n, figures.ack_hours = times["ack"]
    figures.ack_working_hours = times["ack_w"][1]
    figures.feedback_n, figures.feedback_days = times["fb"]
    figures.feedback_working_days = times["fb_w"][1]
    return figures


def _rank(total: int, percent: int) -> int:
    """Nearest rank: the value at rank ⌈p·n⌉."""
    return (total * percent + 99) // 100


def _walk(histogram: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding `rank` (1-based) of a sorted histogram, and the rank within that bucket."""
    seen = 0
    for bucket, n in histogram:
        if seen + n >= rank:
            return bucket, rank - seen
        seen += n
    raise ValueError("rank beyond the histogram")


def _percentiles(scope: Scope) -> dict[str, tuple[int, tuple]]:
    """{measure: (n, (median, 90th percentile))} of the four durations, in tenths of an hour or day.

    Two queries whatever the data: the coarse histograms locate each percentile's coarse bucket,
    then only the fine buckets inside those are read."""
    rows = _source([f"{name}:c" for name in DURATIONS], scope)
    coarse: dict[str, list[tuple[int, int]]] = {name: [] for name in DURATIONS}
    for kind, bucket, n in db.session.execute(
        select(rows.c.kind, rows.c.bucket, func.sum(rows.c.n))
        .group_by(rows.c.kind, rows.c.bucket)
        .order_by(rows.c.kind, rows.c.bucket)
    ).all():
        if n:
            coarse[kind.split(":")[0]].append((int(bucket), int(n)))
    wanted: dict[tuple[str, int], tuple[int, int]] = {}  # (measure, percent) → (coarse bucket, rank in it)
    totals = {name: sum(n for _, n in histogram) for name, histogram in coarse.items()}
    for name, histogram in coarse.items():
        for percent in (50, 90):
            if totals[name]:
                wanted[name, percent] = _walk(histogram, _rank(totals[name], percent))
    fine = _source([f"{name}:f" for name in DURATIONS], scope)
    ranges = [
        and_(fine.c.kind == f"{name}:f", fine.c.bucket.between(b * COARSE, b * COARSE + COARSE - 1))
        for (name, _), (b, _) in wanted.items()
    ]
    found: dict[str, list[tuple[int, int]]] = {name: [] for name in DURATIONS}
    for kind, bucket, n in db.session.execute(
        select(fine.c.kind, fine.c.bucket, func.sum(fine.c.n))
        .where(or_(false(), *ranges))
        .group_by(fine.c.kind, fine.c.bucket)
        .order_by(fine.c.kind, fine.c.bucket)
    ).all():
        if n:
            found[kind.split(":")[0]].append((int(bucket), int(n)))
    result: dict[str, tuple[int, tuple]] = {}
    for name in DURATIONS:
        values = []
        for percent in (50, 90):
            if (name, percent) not in wanted:
                values.append(None)
                continue
            b, rank = wanted[name, percent]
            inside = [(bucket, n) for bucket, n in found[name] if bucket // COARSE == b]
            values.append(round(_walk(inside, rank)[0] / 10, 1))
        result[name] = (totals[name], tuple(values))
    return result


# --- Now -----------------------------------------------------------------------------------------


def overdue_now(scope: Scope, now: datetime, limit: int = 100) -> tuple[int, list[tuple[str, str, datetime]]]:
    """How many referrals are overdue now (whatever the period), and the first `limit`: number, what, due."""
    # For an open referral, `deadlines.overdue` is exactly "its running deadline (`inbox_due`) has passed":
    # said so, the condition is a range of ix_referral_open_due, read in order up to `limit` (the
    # rule's OR of two deadlines made the planner read and sort every overdue referral).
    due = Referral.inbox_due
    conditions = [
        due < now,
        Referral.state.in_(OPEN_STATES),
        # inbox_due falls back to the acknowledgement deadline; overdue is only the running one.
        or_(Referral.state == State.SUBMITTED, Referral.feedback_due_at.is_not(None)),
    ]
    if scope.district_ids is not None:
        conditions.append(Referral.district_id.in_(scope.district_ids))
    if scope.school_id is not None:
        conditions.append(Referral.school_id == scope.school_id)
    total = db.session.scalar(select(func.count()).select_from(Referral).where(*conditions))
    what = case((Referral.state == State.SUBMITTED, "Eingangsbestätigung"), else_="Rückmeldung")
    rows = db.session.execute(
        select(Referral.number, what, due).where(*conditions).order_by(due, Referral.id).limit(limit)
    ).all()
    return total, [tuple(r) for r in rows]
