"""Who may do what to which referral.

Views call `referral_or_404` and `may`; lists filter with `referral_scope`, in SQL. Both express the
same rules, so that a referral a user cannot see is neither listed nor reachable by its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import abort
from flask_login import current_user  # type: ignore[import-untyped]  # Flask-Login ships no types
from sqlalchemy import ColumnElement, and_, false, or_, select

from ..cases.models import Referral
from ..cases.process import CASE_OWNER_ACTIONS, RULES, Action, State
from ..extensions import db
from .roles import ASD_LEAD, ASD_SIDE, COORDINATION, SCHOOL_SIDE, holds
from .school_side import is_author_at_school, leads_school, on_school_side, school_side_scope

if TYPE_CHECKING:
    from ..accounts.models import Role, User


def referral_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the referrals whose content `user` may read."""
    # Authors see what they wrote (drafts included), the school lead the school's submitted ones.
    submitted = Referral.state != State.DRAFT
    conditions = [school_side_scope(user, Referral.author_id, Referral.school_id, lead_sees=submitted)]
    districts = user.district_ids(*ASD_SIDE)
    if districts:
        conditions.append(district_scope(districts))
    return or_(*conditions)


def district_scope(district_ids: Iterable[int]) -> ColumnElement[bool]:
    """SQL condition: what the ASD of these districts reads (never drafts); also the API client's scope."""
    return and_(Referral.district_id.in_(list(district_ids)), Referral.state != State.DRAFT)


def metadata_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the referrals whose process metadata `user` may read (coordinator: all submitted)."""
    if holds(user, COORDINATION):
        return Referral.state != State.DRAFT
    return false()


def sees_metadata(user: User, referral: Referral) -> bool:
    """The same rule for one referral."""
    return holds(user, COORDINATION) and referral.state is not State.DRAFT


def referral_or_404(referral_id: int) -> Referral:
    """The referral if `current_user` may read it; 404 whether it exists or not."""
    referral = db.session.scalar(select(Referral).where(Referral.id == referral_id, referral_scope(current_user)))
    if referral is None:
        abort(404)
    return referral


def is_school_side(user: User, referral: Referral) -> bool:
    return on_school_side(user, referral.author_id, referral.school_id, lead_sees=referral.state is not State.DRAFT)


def is_asd_side(user: User, referral: Referral, *roles: Role) -> bool:
    return referral.state is not State.DRAFT and referral.district_id in user.district_ids(*(roles or ASD_SIDE))


def may(user: User, action: Action, referral: Referral) -> bool:
    """May `user` take `action` on `referral` now (state, role and scope)?"""
    return referral.state in RULES[action].sources and may_by_role(user, action, referral)


def may_by_role(user: User, action: Action, referral: Referral) -> bool:
    """Would role and scope allow `action` on `referral`, whatever its state?"""
    rule = RULES[action]
    if action in (Action.EDIT, Action.SUBMIT, Action.DELETE):
        return is_author_at_school(user, referral.author_id, referral.school_id)
    if rule.roles <= SCHOOL_SIDE:
        return is_school_side(user, referral)
    if not is_asd_side(user, referral, *rule.roles):
        return False
    # Once someone has the case, only they (or the lead) work on it; that includes passing it on.
    if action in CASE_OWNER_ACTIONS or (action is Action.TRANSFER and referral.assignee_id is not None):
        return referral.assignee_id == user.id or is_asd_side(user, referral, *ASD_LEAD)
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
    if leads_school(user, referral.school_id):
        return True
    return referral.author_id == user.id and referral.feedback_owed


def may_see_assessment(user: User, referral: Referral) -> bool:
    return is_asd_side(user, referral)


def may_see_access_history(user: User, referral: Referral) -> bool:
    """Who saw or changed this referral: for the coordinator and the ASD lead of its district."""
    return sees_metadata(user, referral) or is_asd_side(user, referral, *ASD_LEAD)
