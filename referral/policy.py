"""Who may do what to which referral: the one place for authorization.

Views call `referral_or_404` and `may`; lists filter with `referral_scope`, in SQL. Both express the
same rules, so that a referral a user cannot see is neither listed nor reachable by its id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import abort
from sqlalchemy import ColumnElement, and_, false, or_, select

from .accounts.models import ASD_ROLES, Role
from .cases.models import Referral
from .cases.process import CASE_OWNER_ACTIONS, RULES, Action, State
from .extensions import db

if TYPE_CHECKING:
    from .accounts.models import User
    from .organisation.models import School

SCHOOL_SIDE = (Role.TEACHER, Role.SCHOOL_LEAD)


def referral_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the referrals whose content `user` may read."""
    conditions: list[ColumnElement[bool]] = []
    own_schools = user.school_ids(*SCHOOL_SIDE)
    if own_schools:
        # Authors see what they wrote (drafts included) while they belong to that school.
        conditions.append(and_(Referral.author_id == user.id, Referral.school_id.in_(own_schools)))
    led_schools = user.school_ids(Role.SCHOOL_LEAD)
    if led_schools:
        conditions.append(and_(Referral.school_id.in_(led_schools), Referral.state != State.DRAFT))
    districts = user.district_ids(*ASD_ROLES)
    if districts:
        conditions.append(and_(Referral.district_id.in_(districts), Referral.state != State.DRAFT))
    return or_(*conditions) if conditions else false()


def metadata_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the referrals whose process metadata `user` may read (coordinator: all submitted)."""
    if user.has_role_in({Role.COORDINATOR}):
        return Referral.state != State.DRAFT
    return false()


def referral_or_404(referral_id: int) -> Referral:
    """The referral if `current_user` may read it; 404 whether it exists or not."""
    from flask_login import current_user  # type: ignore[import-untyped]  # Flask-Login ships no types

    referral = db.session.scalar(select(Referral).where(Referral.id == referral_id, referral_scope(current_user)))
    if referral is None:
        abort(404)
    return referral


def is_school_side(user: User, referral: Referral) -> bool:
    if referral.author_id == user.id and referral.school_id in user.school_ids(*SCHOOL_SIDE):
        return True
    return referral.state is not State.DRAFT and referral.school_id in user.school_ids(Role.SCHOOL_LEAD)


def is_asd_side(user: User, referral: Referral, *roles: Role) -> bool:
    return referral.state is not State.DRAFT and referral.district_id in user.district_ids(*(roles or ASD_ROLES))


def may(user: User, action: Action, referral: Referral) -> bool:
    """May `user` take `action` on `referral` now (state, role and scope)?"""
    return referral.state in RULES[action].sources and may_by_role(user, action, referral)


def may_by_role(user: User, action: Action, referral: Referral) -> bool:
    """Would role and scope allow `action` on `referral`, whatever its state?"""
    rule = RULES[action]
    if action in (Action.EDIT, Action.SUBMIT, Action.DELETE):
        return referral.author_id == user.id and referral.school_id in user.school_ids(*SCHOOL_SIDE)
    if rule.roles <= set(SCHOOL_SIDE):
        return is_school_side(user, referral)
    if not is_asd_side(user, referral, *rule.roles):
        return False
    # Once someone has the case, only they (or the lead) work on it; that includes passing it on.
    if action in CASE_OWNER_ACTIONS or (action is Action.TRANSFER and referral.assignee_id is not None):
        return referral.assignee_id == user.id or is_asd_side(user, referral, Role.ASD_LEAD)
    return True


def held_by_colleague(user: User, action: Action, referral: Referral) -> bool:
    """Would `user` be allowed, were the case not assigned to a colleague?"""
    owner_action = action in CASE_OWNER_ACTIONS or action is Action.TRANSFER
    return (
        owner_action
        and referral.assignee_id not in (None, user.id)
        and is_asd_side(user, referral, *RULES[action].roles)
    )


def may_read_feedback(user: User, referral: Referral) -> bool:
    """§ 4 Abs. 4 KKG: feedback goes to the reporting professional (not OGS staff) and the school lead."""
    if is_asd_side(user, referral):
        return True
    if referral.school_id in user.school_ids(Role.SCHOOL_LEAD):
        return True
    return referral.author_id == user.id and referral.feedback_owed


def may_see_assessment(user: User, referral: Referral) -> bool:
    return is_asd_side(user, referral)


def own_school(user: User, wanted: int | None) -> School | None:
    """The school a teacher or school lead writes for: the one asked for if it is theirs, else their
    first; 403 for users of no school. (A referral or consultation never lands in another school.)"""
    from .organisation.models import School

    schools = sorted(user.school_ids(*SCHOOL_SIDE))
    if not schools:
        abort(403)
    return db.session.get(School, wanted if wanted in schools else schools[0])
