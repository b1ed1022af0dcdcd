"""The school side's rule, for referrals and consultations alike: authors see what they wrote while
they belong to that school; the school lead sees the whole school's (a referral only once submitted).

Written once, as an SQL condition for lists and as the same question for one object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import abort
from sqlalchemy import ColumnElement, and_, false, or_, true

from ..extensions import db
from .roles import SCHOOL_LEAD, SCHOOL_SIDE

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute

    from ..accounts.models import User
    from ..organisation.models import School


def school_side_scope(
    user: User,
    author_id: InstrumentedAttribute[int],
    school_id: InstrumentedAttribute[int],
    *,
    lead_sees: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    """SQL condition: the objects (with these author and school columns) `user` sees from the school
    side; the lead only those where `lead_sees` holds (all when it is None)."""
    conditions: list[ColumnElement[bool]] = []
    own_schools = user.school_ids(*SCHOOL_SIDE)
    if own_schools:
        conditions.append(and_(author_id == user.id, school_id.in_(own_schools)))
    led_schools = user.school_ids(*SCHOOL_LEAD)
    if led_schools:
        conditions.append(and_(school_id.in_(led_schools), true() if lead_sees is None else lead_sees))
    return or_(*conditions) if conditions else false()


def on_school_side(user: User, author_id: int | None, school_id: int, *, lead_sees: bool = True) -> bool:
    """The same rule for one object: is `user` its author at that school, or (where `lead_sees`) the
    school's lead?"""
    if is_author_at_school(user, author_id, school_id):
        return True
    return lead_sees and leads_school(user, school_id)


def leads_school(user: User, school_id: int) -> bool:
    return school_id in user.school_ids(*SCHOOL_LEAD)


def is_author_at_school(user: User, author_id: int | None, school_id: int) -> bool:
    """Authors keep their own objects only while they belong to the school they wrote for."""
    return author_id == user.id and school_id in user.school_ids(*SCHOOL_SIDE)


def sees_whole_school(user: User) -> bool:
    """Does `user` see the school's referrals and consultations as a whole (the lead), rather than
    only their own? (The lists are titled accordingly.)"""
    return bool(user.school_ids(*SCHOOL_LEAD))


def own_school(user: User, wanted: int | None) -> School | None:
    """The school a teacher or school lead writes for: the one asked for if it is theirs, else their
    first; 403 for users of no school. (A referral or consultation never lands in another school.)"""
    from ..organisation.models import School

    schools = sorted(user.school_ids(*SCHOOL_SIDE))
    if not schools:
        abort(403)
    return db.session.get(School, wanted if wanted in schools else schools[0])
