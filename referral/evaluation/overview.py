"""The ASD lead's district overview: what is open, what is late, who carries how much (all in SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..accounts.models import ASD_ROLES, Membership, User
from ..cases.deadlines import Late, overdue
from ..cases.models import Referral
from ..cases.process import OPEN_STATES, State
from ..extensions import db


@dataclass
class DistrictOverview:
    by_state: list[tuple[State, int]]
    overdue_ack: int
    overdue_any: int  # acknowledgement or feedback (as the inbox's "nur überfällige")
    oldest_unacknowledged: datetime | None
    workload: list[tuple[int, str, int]]  # (user id, name, open referrals assigned)
    unassigned: int  # open and nobody's yet: submitted or acknowledged


def for_district(district_id: int, now: datetime) -> DistrictOverview:
    in_district = Referral.district_id == district_id
    counts = dict(
        db.session.execute(
            select(Referral.state, func.count())
            .where(in_district, Referral.state.in_(OPEN_STATES))
            .group_by(Referral.state)
        ).all()
    )
    # Every figure here is about open referrals: said in the WHERE clause, so that the district's open
    # ones are read from ix_referral_district_open (a few hundred), not all its referrals ever.
    overdue_ack, overdue_any, oldest = db.session.execute(
        select(
            func.count().filter(overdue(now, Late.ACKNOWLEDGE).condition),
            func.count().filter(overdue(now).condition),
            func.min(Referral.received_at).filter(Referral.state == State.SUBMITTED),
        ).where(in_district, Referral.state.in_(OPEN_STATES))
    ).one()
    open_cases = (
        select(Referral.assignee_id, func.count().label("n"))
        .where(in_district, Referral.state.in_(OPEN_STATES))
        .group_by(Referral.assignee_id)
        .subquery()
    )
    staff = select(Membership.user_id).where(Membership.district_id == district_id, Membership.role.in_(ASD_ROLES))
    workload = db.session.execute(
        select(User.id, User.name, func.coalesce(open_cases.c.n, 0))
        .outerjoin(open_cases, open_cases.c.assignee_id == User.id)
        .where(User.id.in_(staff), User.active.is_(True))
        .order_by(User.name)
    ).all()
    return DistrictOverview(
        by_state=[(state, counts.get(state, 0)) for state in State if state in OPEN_STATES],
        overdue_ack=overdue_ack or 0,
        overdue_any=overdue_any or 0,
        oldest_unacknowledged=oldest,
        workload=[tuple(row) for row in workload],
        unassigned=counts.get(State.SUBMITTED, 0) + counts.get(State.ACKNOWLEDGED, 0),
    )
