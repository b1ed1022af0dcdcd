"""Who is invited to which survey, and answering it.

Invitations are not stored: they are computed in SQL from the referrals (feedback given, closed), the
open quarterly round and the markers in `survey_done`. Answering or declining writes the marker and
(when answered) the answer in one transaction; the marker does not say which of the two it was.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, literal, select, union_all
from sqlalchemy.exc import IntegrityError

from ..accounts.models import ASD_ROLES, SCHOOL_ROLES, Role, User
from ..audit.log import record
from ..cases.models import Referral
from ..cases.process import State
from ..extensions import db
from ..organisation.models import District
from ..timeutil import to_local
from . import guide
from .models import FEEDBACK_SEEN, SurveyAnswer, SurveyComment, SurveyDone, SurveyRound, random_key
from .questions import CURRENT, MAX_QUESTIONS, QuestionSet, RoleKind, SetKey

# Referrals whose feedback (closing) lies further back are not asked about any more.
INVITATION_DAYS = 180
# Free-text answers are read only in groups of at least this many (and the evaluation's groups too).
MIN_GROUP = 5
_shuffle = random.SystemRandom().shuffle


class AlreadyDone(Exception):
    """The invitation was answered or declined before (another tab, a double click)."""


class RoundExists(Exception):
    """The quarter already has its round."""


def quarter_of(moment: datetime) -> str:
    local = to_local(moment)
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def quarter_label(quarter: str) -> str:
    year, number = quarter.split("-Q")
    return f"{number}. Quartal {year}"


@dataclass(frozen=True)
class Invitation:
    questions: QuestionSet
    role_kind: RoleKind
    district_id: int
    quarter: str
    referral_id: int | None = None
    number: str | None = None
    round_id: int | None = None


# --- Invitations after a referral's feedback and closing --------------------------------------------


def _referral_branches(user: User, now: datetime) -> list[tuple[ColumnElement[bool], Any, RoleKind]]:
    """SQL: the referrals `user` is invited to answer about, as (condition, time, role kind) branches,
    each served in time order by one partial index of models.py (newest first, stopping at the limit),
    so that the start pages cost the same whatever the history: the author's and the school lead's
    referrals with feedback, the assignee's closed ones."""
    since = now - timedelta(days=INVITATION_DAYS)
    branches: list[tuple[ColumnElement[bool], Any, RoleKind]] = []
    schools = user.school_ids(*SCHOOL_ROLES)
    if schools:
        answered = and_(Referral.state.in_(FEEDBACK_SEEN), Referral.feedback_at >= since)
        branches.append(
            (
                and_(answered, Referral.author_id == user.id, Referral.school_id.in_(schools)),
                Referral.feedback_at,
                RoleKind.SCHOOL,
            )
        )
        led = user.school_ids(Role.SCHOOL_LEAD)
        if led:
            branches.append((and_(answered, Referral.school_id.in_(led)), Referral.feedback_at, RoleKind.SCHOOL))
    if user.district_ids(*ASD_ROLES):
        closed = and_(Referral.state == State.CLOSED, Referral.assignee_id == user.id, Referral.closed_at >= since)
        branches.append((closed, Referral.closed_at, RoleKind.ASD))
    return branches


def _referral_invitations(user: User, now: datetime, referral_id: int | None = None, limit: int = 5):
    branches = _referral_branches(user, now)
    if not branches:
        return []
    parts = []
    for condition, at, role_kind in branches:
        part = (
            select(
                Referral.id,
                Referral.number,
                Referral.district_id,
                literal(role_kind.value).label("kind"),
                at.label("at"),
            )
            .where(condition, ~exists().where(SurveyDone.user_id == user.id, SurveyDone.referral_id == Referral.id))
            .order_by(at.desc(), Referral.id.desc())
            .limit(limit)
        )
        if referral_id is not None:
            part = part.where(Referral.id == referral_id)
        parts.append(select(part.subquery()))
    rows = db.session.execute(union_all(*parts) if len(parts) > 1 else parts[0]).all()
    quarter = quarter_of(now)
    found: dict[int, Invitation] = {}
    # Newest first; a referral found by two branches (author and lead) is one invitation, as the school.
    for ident, number, district_id, kind, _at in sorted(rows, key=lambda r: (r.at, r.id), reverse=True):
        role_kind = RoleKind(kind)
        if ident in found and role_kind is RoleKind.ASD:
            continue
        key = SetKey.FEEDBACK if role_kind is RoleKind.SCHOOL else SetKey.CLOSING
        found[ident] = Invitation(CURRENT[key], role_kind, district_id, quarter, referral_id=ident, number=number)
    return list(found.values())[:limit]


def referral_invitation(user: User, referral_id: int, now: datetime) -> Invitation | None:
    found = _referral_invitations(user, now, referral_id, limit=1)
    return found[0] if found else None


def may_be_invited(user: User, referral: Referral) -> bool:
    """Whether `user` is (or was) among those invited about `referral`, marker or not."""
    school_side = referral.school_id in user.school_ids(*SCHOOL_ROLES) and (
        referral.author_id == user.id or referral.school_id in user.school_ids(Role.SCHOOL_LEAD)
    )
    if referral.state in (State.FEEDBACK_GIVEN, State.CLOSED) and school_side:
        return True
    return referral.state is State.CLOSED and referral.assignee_id == user.id


# --- The quarterly round ------------------------------------------------------------------------------


def current_round(now: datetime) -> SurveyRound | None:
    return db.session.scalar(select(SurveyRound).where(SurveyRound.quarter == quarter_of(now)))


def _membership_in(user: User, district_ids: set[int]) -> tuple[RoleKind, int] | None:
    """The school side first: a teacher who also works for the ASD answers as school."""
    for m in sorted(user.memberships, key=lambda m: (m.role not in SCHOOL_ROLES, m.id)):
        if m.role in SCHOOL_ROLES and m.school is not None and m.school.district_id in district_ids:
            return RoleKind.SCHOOL, m.school.district_id
        if m.role in ASD_ROLES and m.district_id in district_ids:
            return RoleKind.ASD, m.district_id
    return None


def round_invitation(user: User, now: datetime) -> Invitation | None:
    found = current_round(now)
    if found is None:
        return None
    where = _membership_in(user, {d.id for d in found.districts})
    if where is None:
        return None
    done = db.session.scalar(select(exists().where(SurveyDone.user_id == user.id, SurveyDone.round_id == found.id)))
    if done:
        return None
    return Invitation(CURRENT[SetKey.QUARTER], where[0], where[1], found.quarter, round_id=found.id)


def in_round(user: User, now: datetime) -> bool:
    """Whether `user` belongs to the current round's districts (answered or not)."""
    found = current_round(now)
    return found is not None and _membership_in(user, {d.id for d in found.districts}) is not None


def open_invitations(user: User, now: datetime) -> list[Invitation]:
    """What `user` is invited to now: the start pages and the referral page show it."""
    if not (user.school_ids(*SCHOOL_ROLES) or user.district_ids(*ASD_ROLES)):
        return []
    found = _referral_invitations(user, now)
    quarterly = round_invitation(user, now)
    return ([quarterly] if quarterly else []) + found


def open_round(actor: User, districts: list[District], now: datetime) -> SurveyRound:
    quarter = quarter_of(now)
    if current_round(now) is not None:
        raise RoundExists
    opened = SurveyRound(quarter=quarter, opened_at=now, opened_by_id=actor.id, districts=districts)
    db.session.add(opened)
    try:
        db.session.flush()
    except IntegrityError as error:  # opened at the same moment in another tab
        raise RoundExists from error
    record(
        "survey.open_round",
        object_type="survey_round",
        object_id=quarter,
        fields=[d.code for d in districts],
        actor=actor,
    )
    return opened


# --- Answering ----------------------------------------------------------------------------------------


def answer(user: User, invitation: Invitation, values: list[int | None] | None, comment: str = "") -> None:
    """Mark the invitation done and, unless declined (`values` None), store the answer – in one
    transaction. Raises AlreadyDone (after rolling back) when the marker exists already."""
    db.session.add(SurveyDone(user_id=user.id, referral_id=invitation.referral_id, round_id=invitation.round_id))
    try:
        db.session.flush()  # first, before anything else: a second click stops here
    except IntegrityError as error:
        db.session.rollback()
        raise AlreadyDone from error
    row = None
    if values is not None:
        values = (list(values) + [None] * MAX_QUESTIONS)[:MAX_QUESTIONS]
        row = {
            "question_set": invitation.questions.key.value,
            "set_version": invitation.questions.version,
            "role_kind": invitation.role_kind.value,
            "district_id": invitation.district_id,
            "quarter": invitation.quarter,
            "guide_version": guide.current_number(),
            **{f"a{i}": v for i, v in enumerate(values, 1)},
        }
    text = (comment or "").strip() if values is not None else ""
    note = {"quarter": invitation.quarter, "district_id": invitation.district_id, "body": text} if text else None
    _reshuffle(invitation.quarter, invitation.district_id, row, note)


def _reshuffle(quarter: str, district_id: int, row: dict | None, note: dict | None) -> None:
    """Write the district's answers (and free texts) of the quarter anew, the new one among them, in a
    random order with new random keys – also when the invitation was declined.

    So the rows give nothing of the order of answering away, not even through what PostgreSQL keeps
    per row: all rows of the group carry this transaction's id (xmin) and a position (ctid) in random
    order, and the marker written in the same transaction points at the whole group, not at one answer.
    The district's row is locked first, so that two answers at once do not both rewrite the group."""
    db.session.execute(select(District.id).where(District.id == district_id).with_for_update(key_share=True))
    for model, new in ((SurveyAnswer, row), (SurveyComment, note)):
        columns = [getattr(model, c.name) for c in model.__table__.columns if c.name != "id"]
        group = (model.quarter == quarter, model.district_id == district_id)
        rows = [dict(r._mapping) for r in db.session.execute(select(*columns).where(*group))]
        if new is not None:
            rows.append(new)
        if not rows:
            continue
        db.session.execute(delete(model).where(*group))
        _shuffle(rows)
        for r in rows:
            r["id"] = random_key()
        db.session.execute(insert(model), rows)


# --- Free text for the coordinator ------------------------------------------------------------------


@dataclass(frozen=True)
class CommentBatch:
    district: str
    count: int
    texts: list[str] | None  # None: fewer than MIN_GROUP, not shown


def comment_batches(quarter: str, limit: int = 500) -> list[CommentBatch]:
    """The quarter's free-text answers per district, shuffled; districts with fewer than MIN_GROUP
    show only that there are too few. Two queries."""
    counts = db.session.execute(
        select(District.id, District.name, func.count(SurveyComment.id))
        .join(SurveyComment, SurveyComment.district_id == District.id)
        .where(SurveyComment.quarter == quarter)
        .group_by(District.id, District.name)
        .order_by(District.name)
    ).all()
    shown = [ident for ident, _, n in counts if n >= MIN_GROUP]
    texts: dict[int, list[str]] = {ident: [] for ident in shown}
    if shown:
        for ident, body in db.session.execute(
            select(SurveyComment.district_id, SurveyComment.body)
            .where(SurveyComment.quarter == quarter, SurveyComment.district_id.in_(shown))
            .order_by(func.random())
            .limit(limit)
        ):
            texts[ident].append(body)
    return [CommentBatch(name, n, texts.get(ident)) for ident, name, n in counts]
