"""Who may see and do what with a consultation: the one place for these rules.

The school side: authors their own requests (while they belong to the school), school leads all of
their school's. The InsoFa pool: open requests (to decide whether to take one), then only the InsoFa
who accepted. Nobody else: neither the ASD (it is pseudonymised advice before any referral), nor the
coordinator or the admin.
"""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select

from ..accounts.models import Role
from ..extensions import db
from .models import Consultation
from .process import OWNER_ACTIONS, RULES, ConsultationAction, ConsultationState

SCHOOL_SIDE = (Role.TEACHER, Role.SCHOOL_LEAD)


def consultation_scope(user):
    """SQL condition: the consultations `user` may read."""
    conditions = []
    own_schools = user.school_ids(*SCHOOL_SIDE)
    if own_schools:
        conditions.append(and_(Consultation.author_id == user.id, Consultation.school_id.in_(own_schools)))
    led = user.school_ids(Role.SCHOOL_LEAD)
    if led:
        conditions.append(Consultation.school_id.in_(led))
    if user.has_role_in({Role.INSOFA}):
        conditions.append(or_(Consultation.state == ConsultationState.REQUESTED, Consultation.insofa_id == user.id))
    return or_(*conditions) if conditions else false()


def is_school_side(user, consultation: Consultation) -> bool:
    if consultation.author_id == user.id and consultation.school_id in user.school_ids(*SCHOOL_SIDE):
        return True
    return consultation.school_id in user.school_ids(Role.SCHOOL_LEAD)


def is_insofa(user) -> bool:
    return user.has_role_in({Role.INSOFA})


def may_by_role(user, action: ConsultationAction, consultation: Consultation) -> bool:
    rule = RULES[action]
    if Role.INSOFA in rule.roles:
        if not is_insofa(user):
            return False
        return action not in OWNER_ACTIONS or consultation.insofa_id == user.id
    return is_school_side(user, consultation)


def may(user, action: ConsultationAction, consultation: Consultation) -> bool:
    return consultation.state in RULES[action].sources and may_by_role(user, action, consultation)


def left_the_pool(user, consultation_id: int) -> str | None:
    """For an InsoFa who had the request open: why it is no longer theirs to see (the pool saw it once)."""
    if not is_insofa(user):
        return None
    state = db.session.scalar(select(Consultation.state).where(Consultation.id == consultation_id))
    if state is ConsultationState.CANCELLED:
        return "Diese Anfrage wurde von der Schule zurückgezogen."
    if state in (ConsultationState.ACCEPTED, ConsultationState.ANSWERED):
        return "Diese Anfrage hat inzwischen eine andere Fachkraft des Pools angenommen."
    return None
