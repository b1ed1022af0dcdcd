"""The survey tables. Two kinds, deliberately unconnected:

- *who is done*: `survey_round` (the coordinator's quarterly round) and `survey_done`, the marker that a
  user's invitation is done – answered or declined, not told apart, and without a time;
- *what was answered*: `survey_answer` and `survey_comment`: no foreign key, no user, no referral, no
  marker, no timestamp; a random key (not a sequence), and on SQLite no rowid, so that neither the key
  nor the storage order tells the order of answering (services.py also rewrites a district's quarter
  on every answer: see `_reshuffle`).
tests/test_surveys.py inspects the schema and the rows for this.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..cases.models import Referral
from ..cases.process import State
from ..crypto import EncryptedText
from ..extensions import db
from ..organisation.models import District
from ..timeutil import utcnow
from .questions import MAX_QUESTIONS


def random_key() -> str:
    return uuid.uuid4().hex


class SurveyRound(db.Model):
    """A quarterly survey, opened by the coordinator for some districts; one per quarter."""

    __tablename__ = "survey_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    quarter: Mapped[str] = mapped_column(String(7), unique=True)  # '2026-Q4'
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    districts: Mapped[list[District]] = relationship(
        secondary="survey_round_district", order_by="District.name", lazy="selectin"
    )


class SurveyRoundDistrict(db.Model):
    __tablename__ = "survey_round_district"

    round_id: Mapped[int] = mapped_column(ForeignKey("survey_round.id", ondelete="CASCADE"), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), primary_key=True, index=True)


class SurveyDone(db.Model):
    """A user's invitation is done: for one referral, or for one quarterly round. Whether the user
    answered or declined is not recorded, nor when."""

    __tablename__ = "survey_done"
    __table_args__ = (
        UniqueConstraint("user_id", "referral_id"),
        UniqueConstraint("user_id", "round_id"),
        CheckConstraint("(referral_id IS NULL) <> (round_id IS NULL)", name="one_invitation"),
    )
    audit_ignored = True  # no part of the referral's record (audit/log.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("survey_round.id", ondelete="CASCADE"), index=True)


class SurveyAnswer(db.Model):
    """One person's answers to one question set. Nothing here names a person, a referral or a time
    finer than the quarter. a1 … a5: 1–5, empty for a question skipped (or a set with fewer questions)."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        CheckConstraint("role_kind IN ('school', 'asd')", name="role_kind"),
        *(CheckConstraint(f"a{i} BETWEEN 1 AND 5", name=f"a{i}_scale") for i in range(1, MAX_QUESTIONS + 1)),
        Index("ix_survey_answer_quarter_district", "quarter", "district_id"),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_key)
    question_set: Mapped[str] = mapped_column(String(20))
    set_version: Mapped[int] = mapped_column(SmallInteger)
    role_kind: Mapped[str] = mapped_column(String(6))
    district_id: Mapped[int] = mapped_column(Integer)  # deliberately no foreign key
    quarter: Mapped[str] = mapped_column(String(7))
    guide_version: Mapped[int | None] = mapped_column(Integer)  # the guide's version when answered
    a1: Mapped[int | None] = mapped_column(SmallInteger)
    a2: Mapped[int | None] = mapped_column(SmallInteger)
    a3: Mapped[int | None] = mapped_column(SmallInteger)
    a4: Mapped[int | None] = mapped_column(SmallInteger)
    a5: Mapped[int | None] = mapped_column(SmallInteger)


class SurveyComment(db.Model):
    """The free text of a quarterly answer, on its own (not even linked to the answer's values)."""

    __tablename__ = "survey_comment"
    __table_args__ = (
        Index("ix_survey_comment_quarter_district", "quarter", "district_id"),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=random_key)
    quarter: Mapped[str] = mapped_column(String(7))
    district_id: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(EncryptedText)


# The invitations after a referral's feedback and closing (services._referral_branches): each branch
# reads its own index from the newest referral back and stops at the start page's limit, instead of a
# person's or school's whole history.
FEEDBACK_SEEN = (State.FEEDBACK_GIVEN, State.CLOSED)
_answered = Referral.state.in_(FEEDBACK_SEEN)
_closed = Referral.state == State.CLOSED
Index(
    "ix_referral_survey_author",
    Referral.author_id,
    Referral.feedback_at,
    postgresql_where=_answered,
    sqlite_where=_answered,
)
Index(
    "ix_referral_survey_school",
    Referral.school_id,
    Referral.feedback_at,
    postgresql_where=_answered,
    sqlite_where=_answered,
)
Index(
    "ix_referral_survey_assignee",
    Referral.assignee_id,
    Referral.closed_at,
    postgresql_where=_closed,
    sqlite_where=_closed,
)
