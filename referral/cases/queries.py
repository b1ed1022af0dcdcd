"""The lists of referrals. Each page runs a fixed number of queries, filtered by scope in SQL."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import and_, exists, func, literal, or_, select, update
from sqlalchemy.orm import defer, lazyload, selectinload

from ..crypto import EncryptedDate, EncryptedText
from ..extensions import db
from ..kernel.upsert import upsert
from ..pagination import Window, keyset
from ..policy import referrals as policy
from ..policy.roles import ASD_SIDE, SCHOOL_LEAD, SCHOOL_SIDE
from ..timeutil import utcnow
from .deadlines import overdue
from .models import INBOX_OPEN_BELOW, Message, Referral, ReferralReading, StateChange
from .process import State
from .vocabulary import MessageKind

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


# The lists read their pages from an index in the order of these keys (models: the generated sort
# columns and ix_referral_inbox*, ix_referral_school_list, ix_referral_author_list, ix_referral_submitted).
INBOX_KEYS = ((Referral.inbox_rank, int), (Referral.inbox_due, datetime), (Referral.id, int))
SCHOOL_KEYS = ((Referral.draft_first, int), (Referral.updated_at, datetime), (Referral.id, int))
SUBMITTED_KEYS = ((Referral.submitted_at, datetime), (Referral.id, int))


def _list_options(*shown: str, categories: bool = False) -> list:
    """What a list loads: of the encrypted columns only those `shown` (decrypting the whole form of
    every row was a third of a page's time; reading one that is not loaded is an error, not a query
    per row), and the categories only where they are shown."""
    hidden = [
        column.key
        for column in Referral.__table__.columns
        if isinstance(column.type, EncryptedText | EncryptedDate) and column.key not in shown
    ]
    options = [defer(getattr(Referral, key), raiseload=True) for key in hidden]
    return options if categories else [*options, lazyload(Referral.categories)]


CHILD_NAME = ("child_first_name", "child_last_name")


def school_list(user, cursor: str | None) -> Window:
    """Drafts first, then by last change. Teachers' lists are read by author, the lead's by school."""
    news = or_(
        _news_for(user, [MessageKind.QUESTION]),
        and_(Referral.feedback_at.is_not(None), Referral.feedback_at > func.coalesce(_seen_at(user), literal(EPOCH))),
    )
    led = user.school_ids(*SCHOOL_LEAD)
    partition: tuple | None
    if user.district_ids(*ASD_SIDE):
        partition = None  # someone on both sides: the scope alone decides (no index fits it)
    elif led:
        partition = (Referral.school_id, sorted(led | user.school_ids(*SCHOOL_SIDE)))
    else:
        partition = (Referral.author_id, [user.id])
    return keyset(
        "school",
        (Referral, news.label("news")),
        [policy.referral_scope(user)],
        SCHOOL_KEYS,
        cursor,
        descending=True,
        partition=partition,
        options=_list_options(*CHILD_NAME),
    )


def inbox(
    user,
    state: str,
    overdue_only: bool,
    cursor: str | None,
    assignee_id: int | None = None,
    district_id: int | None = None,
) -> Window:
    """Open referrals first, by urgency and next deadline; read district by district from the index."""
    news = _news_for(user, [MessageKind.ANSWER, MessageKind.ADDENDUM])
    conditions = [policy.referral_scope(user)]
    if state == "open" or overdue_only:
        # "Open" in the index's terms: the open states have the ranks below INBOX_OPEN_BELOW (overdue
        # implies open). Said as `state IN (…)`, the planner would read all open ones and sort them.
        conditions.append(Referral.inbox_rank < INBOX_OPEN_BELOW)
    if state != "open" and state in State._value2member_map_ and state != State.DRAFT:
        conditions.append(Referral.state == State(state))
    if overdue_only:
        conditions.append(overdue(utcnow()).condition)
    if assignee_id:
        conditions.append(Referral.assignee_id == assignee_id)
    districts = [district_id] if district_id else sorted(user.district_ids(*ASD_SIDE))
    filters = f"inbox:{state}:{int(overdue_only)}:{assignee_id or ''}:{district_id or ''}"
    return keyset(
        filters,
        (Referral, news.label("news")),
        conditions,
        INBOX_KEYS,
        cursor,
        partition=(Referral.district_id, districts),
        options=_list_options(*CHILD_NAME),
    )


def coordination_list(user, cursor: str | None) -> Window:
    return keyset(
        "coordination",
        (Referral, literal(False).label("news")),
        # Submitted ones have a submission time: said explicitly, so that the index's range excludes drafts.
        [policy.metadata_scope(user), Referral.submitted_at.is_not(None)],
        SUBMITTED_KEYS,
        cursor,
        descending=True,
        # The acting staff member is shown per row; no content at all.
        options=[selectinload(Referral.assignee), *_list_options(categories=True)],
    )


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


# The referral page lists at most this many earlier referrals about the same child (and says so if
# there are more): the page stays the same size however long a family's history in the district.
SAME_CHILD_SHOWN = 20


def earlier_about_the_same_child(referral: Referral) -> list:
    """Other referrals in the referral's district whose child has the same keyed hash of name and date
    of birth (no name is compared in clear): number, date, state and assessment result, in one query;
    the newest SAME_CHILD_SHOWN and one more (which tells the page that there are more)."""
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
        .order_by(Referral.submitted_at.desc(), Referral.id.desc())
        .limit(SAME_CHILD_SHOWN + 1)
    ).all()
