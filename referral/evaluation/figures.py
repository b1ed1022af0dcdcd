"""The figures of the evaluation, each computed by the database (PROCESS.md, *Evaluation*).

Every function takes a `Scope` (period, district, school) and returns plain numbers; the number of
queries does not depend on the amount of data. A referral belongs to the period in which it was
submitted, to the district responsible for it now (after a transfer: the receiving one) and to its
school. A consultation belongs to the period in which it was requested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, literal, or_, select

from ..cases.deadlines import overdue
from ..cases.models import Assessment, Feedback, Referral, ReferralCategory, SchoolAction, StateChange
from ..cases.process import Action, State
from ..cases.vocabulary import SchoolActionKind
from ..consultations.models import Consultation, ConsultationCategory
from ..consultations.process import ConsultationState
from ..extensions import db
from ..organisation.models import District, School


@dataclass(frozen=True)
class Scope:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    district_ids: tuple[int, ...] | None = None  # None: all districts
    school_id: int | None = None
    exclude_districts: tuple[int, ...] = ()


def month_of(column):
    """'2026-11': the local (Berlin) month of a UTC timestamp, in the database's own dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Europe/Berlin", func.timezone("UTC", column)), "YYYY-MM")
    # SQLite knows no time zones. Months start at local midnight, +2 h from April to October (summer
    # time) and +1 h otherwise; the clock changes never fall near a month's end, so the month of
    # "UTC + 2 h" tells which offset applies at that boundary.
    offset = case((func.strftime("%m", column, "+2 hours").between("04", "10"), "+2 hours"), else_="+1 hours")
    return func.strftime("%Y-%m", column, offset)


def _referrals(scope: Scope):
    conditions = [
        Referral.state != State.DRAFT,
        Referral.submitted_at >= scope.start,
        Referral.submitted_at < scope.end,
    ]
    if scope.district_ids is not None:
        conditions.append(Referral.district_id.in_(scope.district_ids))
    if scope.exclude_districts:
        conditions.append(Referral.district_id.not_in(scope.exclude_districts))
    if scope.school_id is not None:
        conditions.append(Referral.school_id == scope.school_id)
    return and_(*conditions)


def _consultations(scope: Scope):
    conditions = [Consultation.requested_at >= scope.start, Consultation.requested_at < scope.end]
    if scope.district_ids is not None:
        conditions.append(Consultation.district_id.in_(scope.district_ids))
    if scope.exclude_districts:
        conditions.append(Consultation.district_id.not_in(scope.exclude_districts))
    if scope.school_id is not None:
        conditions.append(Consultation.school_id == scope.school_id)
    return and_(*conditions)


# --- Counts ------------------------------------------------------------------------------------


def per_month(scope: Scope) -> dict[str, tuple[int, int]]:
    """{month: (referrals, consultations)} for every month with either."""
    month_r, month_c = month_of(Referral.submitted_at), month_of(Consultation.requested_at)
    referrals = dict(db.session.execute(select(month_r, func.count()).where(_referrals(scope)).group_by(month_r)).all())
    consultations = dict(
        db.session.execute(select(month_c, func.count()).where(_consultations(scope)).group_by(month_c)).all()
    )
    return {m: (referrals.get(m, 0), consultations.get(m, 0)) for m in sorted(set(referrals) | set(consultations))}


def per_school(scope: Scope) -> list[tuple[str, str, int, int]]:
    """(district, school, referrals, consultations) for each school in scope, also those with none."""
    referrals = (
        select(Referral.school_id, func.count().label("n"))
        .where(_referrals(scope))
        .group_by(Referral.school_id)
        .subquery()
    )
    consultations = (
        select(Consultation.school_id, func.count().label("n"))
        .where(_consultations(scope))
        .group_by(Consultation.school_id)
        .subquery()
    )
    statement = (
        select(District.name, School.name, func.coalesce(referrals.c.n, 0), func.coalesce(consultations.c.n, 0))
        .join(District, School.district_id == District.id)
        .outerjoin(referrals, referrals.c.school_id == School.id)
        .outerjoin(consultations, consultations.c.school_id == School.id)
        .order_by(District.name, School.name)
    )
    if scope.district_ids is not None:
        statement = statement.where(School.district_id.in_(scope.district_ids))
    if scope.school_id is not None:
        statement = statement.where(School.id == scope.school_id)
    return [tuple(row) for row in db.session.execute(statement).all()]


def per_district(scope: Scope) -> list[tuple[str, int, int]]:
    referrals = (
        select(Referral.district_id, func.count().label("n"))
        .where(_referrals(scope))
        .group_by(Referral.district_id)
        .subquery()
    )
    consultations = (
        select(Consultation.district_id, func.count().label("n"))
        .where(_consultations(scope))
        .group_by(Consultation.district_id)
        .subquery()
    )
    statement = (
        select(District.name, func.coalesce(referrals.c.n, 0), func.coalesce(consultations.c.n, 0))
        .outerjoin(referrals, referrals.c.district_id == District.id)
        .outerjoin(consultations, consultations.c.district_id == District.id)
        .order_by(District.name)
    )
    if scope.district_ids is not None:
        statement = statement.where(District.id.in_(scope.district_ids))
    return [tuple(row) for row in db.session.execute(statement).all()]


def per_urgency(scope: Scope) -> dict[str, int]:
    return {
        u.value: n
        for u, n in db.session.execute(
            select(Referral.urgency, func.count()).where(_referrals(scope)).group_by(Referral.urgency)
        ).all()
    }


def consultations_per_urgency(scope: Scope) -> dict[str, int]:
    return {
        u.value: n
        for u, n in db.session.execute(
            select(Consultation.urgency, func.count()).where(_consultations(scope)).group_by(Consultation.urgency)
        ).all()
    }


def per_category(scope: Scope) -> dict[str, tuple[int, int]]:
    """{category: (referrals, consultations)}; a referral with two categories counts in both."""
    referrals = dict(
        db.session.execute(
            select(ReferralCategory.category, func.count())
            .join(Referral, Referral.id == ReferralCategory.referral_id)
            .where(_referrals(scope))
            .group_by(ReferralCategory.category)
        ).all()
    )
    consultations = dict(
        db.session.execute(
            select(ConsultationCategory.category, func.count())
            .join(Consultation, Consultation.id == ConsultationCategory.consultation_id)
            .where(_consultations(scope))
            .group_by(ConsultationCategory.category)
        ).all()
    )
    return {c.value: (referrals.get(c, 0), consultations.get(c, 0)) for c in set(referrals) | set(consultations)}


def school_by_month(scope: Scope) -> dict[tuple[str, str], int]:
    month = month_of(Referral.submitted_at)
    rows = db.session.execute(
        select(School.name, month, func.count())
        .join(School, School.id == Referral.school_id)
        .where(_referrals(scope))
        .group_by(School.name, month)
    ).all()
    return {(school, m): n for school, m, n in rows}


def school_by_category(scope: Scope) -> dict[tuple[str, str], int]:
    rows = db.session.execute(
        select(School.name, ReferralCategory.category, func.count())
        .join(Referral, Referral.id == ReferralCategory.referral_id)
        .join(School, School.id == Referral.school_id)
        .where(_referrals(scope))
        .group_by(School.name, ReferralCategory.category)
    ).all()
    return {(school, category.value): n for school, category, n in rows}


def assessment_results(scope: Scope) -> dict[str, int]:
    return {
        r.value: n
        for r, n in db.session.execute(
            select(Assessment.result, func.count())
            .join(Referral, Referral.id == Assessment.referral_id)
            .where(_referrals(scope))
            .group_by(Assessment.result)
        ).all()
    }


def recommendations(scope: Scope) -> dict[str, int]:
    return {
        r.value: n
        for r, n in db.session.execute(
            select(Consultation.recommendation, func.count())
            .where(_consultations(scope), Consultation.state == ConsultationState.ANSWERED)
            .group_by(Consultation.recommendation)
        ).all()
    }


def transfers(scope: Scope) -> list[tuple[str, str, int]]:
    """(from district, to district, count) of transfers made in the period, touching the scope."""
    source, target = District.__table__.alias("source"), District.__table__.alias("target")
    conditions = [StateChange.action == Action.TRANSFER, StateChange.at >= scope.start, StateChange.at < scope.end]
    if scope.district_ids is not None:
        conditions.append(
            or_(
                StateChange.from_district_id.in_(scope.district_ids), StateChange.to_district_id.in_(scope.district_ids)
            )
        )
    if scope.school_id is not None:
        conditions.append(Referral.school_id == scope.school_id)
    rows = db.session.execute(
        select(source.c.name, target.c.name, func.count())
        .select_from(StateChange)
        .join(Referral, Referral.id == StateChange.referral_id)
        .join(source, source.c.id == StateChange.from_district_id)
        .join(target, target.c.id == StateChange.to_district_id)
        .where(*conditions)
        .group_by(source.c.name, target.c.name)
        .order_by(source.c.name, target.c.name)
    ).all()
    return [tuple(row) for row in rows]


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
    one = literal(1)
    consulted = or_(
        Referral.consultation_id.is_not(None),
        exists().where(
            SchoolAction.referral_id == Referral.id,
            SchoolAction.kind == SchoolActionKind.INSOFA_CONSULTED,
            SchoolAction.done.is_(True),
        ),
    )
    row = db.session.execute(
        select(
            func.count(Referral.id),
            func.sum(
                case((or_(Referral.acknowledged_at.is_not(None), Referral.acknowledge_due_at < now), one), else_=0)
            ),
            func.sum(case((Referral.acknowledged_at <= Referral.acknowledge_due_at, one), else_=0)),
            func.sum(case((or_(Referral.feedback_at.is_not(None), Referral.feedback_due_at < now), one), else_=0)),
            func.sum(case((Referral.feedback_at <= Referral.feedback_due_at, one), else_=0)),
            func.count(Referral.feedback_at),
            func.sum(case((Feedback.indications_confirmed.is_(True), one), else_=0)),
            func.sum(case((consulted, one), else_=0)),
            func.sum(case((Referral.affected_informed == "yes", one), else_=0)),
        )
        .select_from(Referral)
        .outerjoin(Feedback, Feedback.referral_id == Referral.id)
        .where(_referrals(scope))
    ).one()
    names = (
        "referrals",
        "ack_due",
        "ack_in_time",
        "feedback_due",
        "feedback_in_time",
        "with_feedback",
        "confirmed",
        "consulted",
        "informed",
    )
    figures = KeyFigures(**{name: int(v or 0) for name, v in zip(names, row, strict=True)})
    figures.consultations = db.session.scalar(
        select(func.count()).select_from(Consultation).where(_consultations(scope))
    )
    figures.ack_n, ack, ack_w = _percentiles(scope, Referral.ack_minutes, Referral.ack_working_minutes)
    figures.ack_hours, figures.ack_working_hours = _scaled(ack, 60), _scaled(ack_w, 60)
    figures.feedback_n, fb, fb_w = _percentiles(scope, Referral.feedback_minutes, Referral.feedback_working_minutes)
    figures.feedback_days, figures.feedback_working_days = _scaled(fb, 60 * 24), _scaled(fb_w, 60 * 24)
    return figures


def _percentiles(scope: Scope, calendar, working) -> tuple[int, tuple, tuple]:
    """Median and 90th percentile (nearest rank: the value at rank ⌈p·n⌉) of two columns, in one query."""
    ranked = (
        select(
            calendar.label("c"),
            working.label("w"),
            func.row_number().over(order_by=calendar).label("rc"),
            func.row_number().over(order_by=working).label("rw"),
            func.count().over().label("n"),
        )
        .where(_referrals(scope), calendar.is_not(None), working.is_not(None))
        .subquery()
    )

    def at(rank_col, value_col, percent):
        return func.max(case((rank_col == (ranked.c.n * percent + 99) // 100, value_col)))

    row = db.session.execute(
        select(
            func.max(ranked.c.n),
            at(ranked.c.rc, ranked.c.c, 50),
            at(ranked.c.rc, ranked.c.c, 90),
            at(ranked.c.rw, ranked.c.w, 50),
            at(ranked.c.rw, ranked.c.w, 90),
        )
    ).one()
    return int(row[0] or 0), (row[1], row[2]), (row[3], row[4])


def _scaled(pair: tuple, divisor: int) -> tuple:
    return tuple(None if v is None else round(v / divisor, 1) for v in pair)


# --- Now -----------------------------------------------------------------------------------------


def overdue_now(scope: Scope, now: datetime, limit: int = 100) -> tuple[int, list[tuple[str, str, datetime]]]:
    """How many referrals are overdue now (whatever the period), and the first `limit`: number, what, due."""
    conditions = [overdue(now).condition]
    if scope.district_ids is not None:
        conditions.append(Referral.district_id.in_(scope.district_ids))
    if scope.school_id is not None:
        conditions.append(Referral.school_id == scope.school_id)
    total = db.session.scalar(select(func.count()).select_from(Referral).where(*conditions))
    due = case((Referral.state == State.SUBMITTED, Referral.acknowledge_due_at), else_=Referral.feedback_due_at)
    what = case((Referral.state == State.SUBMITTED, "Eingangsbestätigung"), else_="Rückmeldung")
    rows = db.session.execute(
        select(Referral.number, what, due).where(*conditions).order_by(due, Referral.id).limit(limit)
    ).all()
    return total, [tuple(r) for r in rows]
