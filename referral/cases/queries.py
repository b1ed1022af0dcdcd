"""The lists of referrals. Each page runs a fixed number of queries, filtered by scope in SQL."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import and_, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..kernel.upsert import upsert
from ..pagination import paginate
from ..policy import referrals as policy
from ..policy.roles import ASD_SIDE
from ..timeutil import utcnow
from .deadlines import overdue
from .models import Message, Referral, ReferralReading, StateChange
from .process import OPEN_STATES, State
from .vocabulary import MessageKind, Urgency

EPOCH = datetime(2000, 1, 1)


def _seen_at(user):
    return (
        select(ReferralReading.seen_at)
        .where(ReferralReading.user_id == user.id, ReferralReading.referral_id == Referral.id)
        .correlate(Referral)
        .scalar_subquery()
    )


def _news_for(user, kinds):
    """SQL: has anything arrived from the other side since the user last opened the referral?"""
    seen = func.coalesce(_seen_at(user), literal(EPOCH))
    message = exists().where(Message.referral_id == Referral.id, Message.kind.in_(kinds), Message.created_at > seen)
    return message


def school_list(user, page: int):
    news = or_(
        _news_for(user, [MessageKind.QUESTION]),
        and_(Referral.feedback_at.is_not(None), Referral.feedback_at > func.coalesce(_seen_at(user), literal(EPOCH))),
    )
    statement = (
        select(Referral, news.label("news"))
        .where(policy.referral_scope(user))
        .order_by(case((Referral.state == State.DRAFT, 0), else_=1), Referral.updated_at.desc(), Referral.id.desc())
    )
    return paginate(statement, page, scalars=False)


URGENCY_ORDER = case({u.value: u.rank for u in Urgency}, value=Referral.urgency, else_=9)


def inbox(
    user, state: str, overdue_only: bool, page: int, assignee_id: int | None = None, district_id: int | None = None
):
    now = utcnow()
    news = _news_for(user, [MessageKind.ANSWER, MessageKind.ADDENDUM])
    statement = select(Referral, news.label("news")).where(policy.referral_scope(user))
    statement = statement.where(Referral.district_id.in_(user.district_ids(*ASD_SIDE)))
    if state == "open":
        statement = statement.where(Referral.state.in_(OPEN_STATES))
    elif state in State._value2member_map_ and state != State.DRAFT:
        statement = statement.where(Referral.state == State(state))
    if overdue_only:
        statement = statement.where(overdue(now).condition)
    if assignee_id:
        statement = statement.where(Referral.assignee_id == assignee_id)
    if district_id:
        statement = statement.where(Referral.district_id == district_id)
    next_due = case(
        (Referral.state == State.SUBMITTED, Referral.acknowledge_due_at),
        else_=func.coalesce(Referral.feedback_due_at, Referral.acknowledge_due_at),
    )
    statement = statement.order_by(
        case((Referral.state.in_(OPEN_STATES), 0), else_=1), URGENCY_ORDER, next_due, Referral.id
    )
    return paginate(statement, page, scalars=False)


def coordination_list(user, page: int):
    statement = (
        select(Referral, literal(False).label("news"))
        .where(policy.metadata_scope(user))
        .options(selectinload(Referral.assignee))  # the acting staff member is shown per row
        .order_by(Referral.submitted_at.desc(), Referral.id.desc())
    )
    return paginate(statement, page, scalars=False)


def mark_seen(user, referral: Referral) -> datetime | None:
    """Record that the user opened the referral now; return when they had seen it before."""
    before = db.session.scalar(
        select(ReferralReading.seen_at).where(
            ReferralReading.user_id == user.id, ReferralReading.referral_id == referral.id
        )
    )
    now = utcnow()
    db.session.execute(
        upsert(
            ReferralReading,
            {"user_id": user.id, "referral_id": referral.id, "seen_at": now},
            index_elements=["user_id", "referral_id"],
            set_={"seen_at": now},
        )
    )
    return before


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def plausible_token(token: str | None) -> str | None:
    """The form token as the page made it (secrets.token_urlsafe), or nothing."""
    return token if token and TOKEN.fullmatch(token) else None


def referral_by_token(user, token: str | None, lock: bool = False) -> Referral | None:
    """The referral an earlier POST of the same form created, if any (double clicks, autosave).

    `lock`: its row locked for the rest of the transaction (see routes._for_action), read afresh.
    """
    if not token:
        return None
    statement = select(Referral).where(Referral.client_token == token, Referral.author_id == user.id)
    if lock:
        statement = for_writing(statement, Referral.__table__.c.client_token == token)
    return db.session.scalar(statement)


def for_writing(statement, *rows):
    """`statement` (a select of referrals) made to lock the referral rows it reads until the end of
    the transaction, and to read them afresh: a second writer waits here for the first and then sees
    what the first left. PostgreSQL locks the rows (SELECT … FOR UPDATE). SQLite has no row locks;
    a no-op UPDATE of the same rows (`rows`: the criteria) takes its database write lock first."""
    if db.session.get_bind().dialect.name == "sqlite":
        table = Referral.__table__
        db.session.execute(update(table).where(*rows).values(version=table.c.version))
        return statement.execution_options(populate_existing=True)
    return statement.with_for_update(of=Referral).execution_options(populate_existing=True)


def transferred_away_from(user, referral_id: int) -> str | None:
    """If the referral left one of the user's districts by transfer: a German sentence saying so."""
    districts = user.district_ids(*ASD_SIDE)
    if not districts:
        return None
    change = db.session.scalar(
        select(StateChange)
        .where(
            StateChange.referral_id == referral_id,
            StateChange.from_district_id.in_(districts),
            StateChange.to_district_id.is_not(None),
        )
        .order_by(StateChange.id.desc())
        .limit(1)
    )
    if change is None:
        return None
    return (
        f"Die Mitteilung {change.referral.number} wurde inzwischen von {change.actor.name} an den Bezirk "
        f"{change.to_district.name} abgegeben. Ihre Aktion wurde nicht ausgeführt."
    )


def earlier_about_the_same_child(referral: Referral) -> list:
    """Other referrals in the referral's district whose child has the same keyed hash of name and date
    of birth (no name is compared in clear): number, date, state and assessment result, in one query."""
    from .models import Assessment

    if not referral.child_key:
        return []
    return db.session.execute(
        select(Referral.id, Referral.number, Referral.submitted_at, Referral.state, Assessment.result)
        .outerjoin(Assessment, Assessment.referral_id == Referral.id)
        .where(
            Referral.child_key == referral.child_key,
            Referral.id != referral.id,
            Referral.district_id == referral.district_id,
            Referral.state != State.DRAFT,
        )
        .order_by(Referral.submitted_at.desc())
    ).all()
