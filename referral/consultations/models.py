from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, and_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..cases.vocabulary import Category
from ..crypto import EncryptedText
from ..extensions import db
from ..kernel.columns import enum_column
from ..organisation.models import District, School
from ..timeutil import utcnow
from .process import ConsultationState
from .vocabulary import ConsultationUrgency, ContactWay, Recommendation


class Consultation(db.Model):
    """A Fachberatung request (§ 4 Abs. 2 KKG). Pseudonymised: the child has an age and a class level,
    never a name, a birth date or an address."""

    __tablename__ = "consultation"
    __table_args__ = (
        CheckConstraint(
            "state = 'requested' OR state = 'cancelled' OR (insofa_id IS NOT NULL AND accepted_at IS NOT NULL)",
            name="accepted_has_insofa",
        ),
        CheckConstraint(
            "state <> 'answered' OR (answered_at IS NOT NULL AND recommendation IS NOT NULL)",
            name="answered_has_recommendation",
        ),
        CheckConstraint("state <> 'cancelled' OR cancelled_at IS NOT NULL", name="cancelled_has_time"),
        CheckConstraint("child_age BETWEEN 3 AND 16", name="plausible_age"),
        Index("ix_consultation_state_due", "state", "accept_due_at"),
        Index("ix_consultation_school_state", "school_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Two InsoFas accepting at once: the version check lets only the first succeed.
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version}
    number: Mapped[str] = mapped_column(String(20), unique=True)
    state: Mapped[ConsultationState] = mapped_column(
        enum_column(ConsultationState), default=ConsultationState.REQUESTED
    )
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))  # the school's district when asked
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    insofa_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)

    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    accept_due_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    child_age: Mapped[int]
    class_level: Mapped[str] = mapped_column(String(10))
    observations: Mapped[str] = mapped_column(EncryptedText, default="")
    question: Mapped[str] = mapped_column(EncryptedText, default="")
    urgency: Mapped[ConsultationUrgency] = mapped_column(enum_column(ConsultationUrgency))
    contact_way: Mapped[ContactWay] = mapped_column(enum_column(ContactWay))
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    reachable: Mapped[str] = mapped_column(String(200), default="")

    appointment_at: Mapped[datetime | None]
    appointment_way: Mapped[ContactWay | None] = mapped_column(enum_column(ContactWay, name="appointment_way"))
    recommendation: Mapped[Recommendation | None] = mapped_column(enum_column(Recommendation))
    recommendation_note: Mapped[str] = mapped_column(EncryptedText, default="")

    school: Mapped[School] = relationship(lazy="joined", innerjoin=True)
    district: Mapped[District] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    insofa: Mapped[User | None] = relationship(foreign_keys=[insofa_id])
    categories: Mapped[list[ConsultationCategory]] = relationship(
        cascade="all, delete-orphan", order_by="ConsultationCategory.category", lazy="selectin"
    )

    def __str__(self) -> str:
        return self.number

    @property
    def category_codes(self) -> list[Category]:
        return [c.category for c in self.categories]

    @staticmethod
    def overdue_clause(now: datetime):
        return and_(Consultation.state == ConsultationState.REQUESTED, Consultation.accept_due_at < now)

    def overdue(self, now: datetime) -> bool:
        return self.state is ConsultationState.REQUESTED and self.accept_due_at < now


class ConsultationCategory(db.Model):
    """What the concern is about, in the categories of the referral (optional), for the evaluation."""

    __tablename__ = "consultation_category"

    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[Category] = mapped_column(enum_column(Category), primary_key=True)


class ConsultationCounter(db.Model):
    """The last number given per year (FB-2026-0007), advanced by one atomic upsert."""

    __tablename__ = "consultation_counter"

    year: Mapped[int] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)
