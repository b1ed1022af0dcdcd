"""Who may see and do what with a consultation.

The school side: authors their own requests (while they belong to the school), school leads all of
their school's. The InsoFa pool: open requests (to decide whether to take one), then only the InsoFa
who accepted. Nobody else: neither the ASD (it is pseudonymised advice before any referral), nor the
coordinator or the admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select

from ..consultations.models import Consultation
from ..consultations.process import OWNER_ACTIONS, RULES, ConsultationAction, ConsultationState
from ..extensions import db
from .roles import INSOFA, holds
from .school_side import on_school_side, school_side_scope

if TYPE_CHECKING:
    from ..accounts.models import User


def consultation_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the consultations `user` may read."""
    conditions = [school_side_scope(user, Consultation.author_id, Consultation.school_id)]
    if is_insofa(user):
        conditions.append(or_(Consultation.state == ConsultationState.REQUESTED, Consultation.insofa_id == user.id))
    return or_(*conditions)


def is_school_side(user: User, consultation: Consultation) -> bool:
    return on_school_side(user, consultation.author_id, consultation.school_id)


def is_insofa(user: User) -> bool:
    return holds(user, INSOFA)


def may_by_role(user: User, action: ConsultationAction, consultation: Consultation) -> bool:
    rule = RULES[action]
    if rule.roles & INSOFA:
        if not is_insofa(user):
            return False
        return action not in OWNER_ACTIONS or consultation.insofa_id == user.id
    return is_school_side(user, consultation)


def may(user: User, action: ConsultationAction, consultation: Consultation) -> bool:
    return consultation.state in RULES[action].sources and may_by_role(user, action, consultation)


def left_the_pool(user: User, consultation_id: int) -> str | None:
    """For an InsoFa who had the request open: why it is no longer theirs to see (the pool saw it once)."""
    if not is_insofa(user):
        return None
    state = db.session.scalar(select(Consultation.state).where(Consultation.id == consultation_id))
    if state is ConsultationState.CANCELLED:
        return "Diese Anfrage wurde von der Schule zurückgezogen."
    if state in (ConsultationState.ACCEPTED, ConsultationState.ANSWERED):
        return "Diese Anfrage hat inzwischen eine andere Fachkraft des Pools angenommen."
    return None
