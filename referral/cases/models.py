from __future__ import annotations

import functools
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..crypto import EncryptedDate, EncryptedText
from ..extensions import db
from ..kernel.columns import enum_column
from ..organisation.models import District, School
from ..timeutil import utcnow
from .deadlines import Late, OverdueRule, overdue
from .process import OPEN_STATES, Action, State
from .vocabulary import (
    AssessmentResult,
    BodyRegion,
    BodySide,
    Category,
    InformedStatus,
    Measure,
    MessageKind,
    PersonKind,
    Relation,
    ReporterFunction,
    SchoolActionKind,
    Urgency,
)

if TYPE_CHECKING:
    from ..consultations.models import Consultation


def _states(*states: State) -> str:
    return "(" + ", ".join(f"'{s.value}'" for s in states) + ")"


NOT_DRAFT = f"state <> '{State.DRAFT.value}'"
AFTER_ACK = _states(State.ACKNOWLEDGED, State.IN_ASSESSMENT, State.INFO_REQUESTED, State.FEEDBACK_GIVEN, State.CLOSED)
ASSIGNED = _states(State.IN_ASSESSMENT, State.INFO_REQUESTED, State.FEEDBACK_GIVEN, State.CLOSED)
FEEDBACK_DONE = _states(State.FEEDBACK_GIVEN, State.CLOSED)

# The lists' sort keys, computed by the database from the row itself (generated columns): whatever
# writes a referral (workflow, API, generator, retention) keeps them right without knowing of them,
# and each list reads its first page from an index in order instead of sorting a district's history.
# Inbox: open referrals first (rank < INBOX_OPEN_BELOW), within each group by urgency; then by the
# next deadline (the acknowledgement while submitted, else the feedback).
INBOX_OPEN_BELOW = 10
INBOX_RANK = (
    f"CASE WHEN state IN {_states(*sorted(OPEN_STATES))} THEN 0 ELSE {INBOX_OPEN_BELOW} END"
    " + CASE urgency WHEN 'acute' THEN 0 WHEN 'urgent' THEN 1 WHEN 'clarify' THEN 2 ELSE 9 END"
)
INBOX_DUE = (
    "CASE WHEN state = 'submitted' THEN acknowledge_due_at ELSE COALESCE(feedback_due_at, acknowledge_due_at) END"
)
# School lists: drafts first (1), then the rest (0), each newest change first.
DRAFT_FIRST = "CASE WHEN state = 'draft' THEN 1 ELSE 0 END"


class Referral(db.Model):
    """A Mitteilung an den ASD (§ 4 Abs. 3 KKG). Most content is optional while it is a draft."""

    __tablename__ = "referral"
    __table_args__ = (
        # What each state requires, enforced by the database as the last line of defence.
        CheckConstraint(
            "state = 'draft' OR (number IS NOT NULL AND submitted_at IS NOT NULL "
            "AND urgency IS NOT NULL AND acknowledge_due_at IS NOT NULL)",
            name="submitted_complete",
        ),
        CheckConstraint(f"state NOT IN {AFTER_ACK} OR acknowledged_at IS NOT NULL", name="acknowledged_has_time"),
        CheckConstraint(f"state NOT IN {ASSIGNED} OR assignee_id IS NOT NULL", name="assessment_has_assignee"),
        CheckConstraint(f"state NOT IN {FEEDBACK_DONE} OR feedback_at IS NOT NULL", name="feedback_has_time"),
        CheckConstraint("state <> 'closed' OR closed_at IS NOT NULL", name="closed_has_time"),
        CheckConstraint(
            "state = 'draft' OR urgency <> 'acute' OR (phone_call_at IS NOT NULL AND phone_call_with IS NOT NULL)",
            name="acute_has_phone_call",
        ),
        Index("ix_referral_school_state", "school_id", "state"),
        # One index per list, matching its WHERE and ORDER BY (queries.py): the inbox of a district
        # (open, all, overdue), of a district in one state, of one staff member; the school's list,
        # the author's list; the coordinator's list.
        # With the state in the index, counting the open ones of a district reads only the index.
        Index("ix_referral_inbox", "district_id", "inbox_rank", "inbox_due", "id", postgresql_include=["state"]),
        Index("ix_referral_inbox_state", "district_id", "state", "inbox_rank", "inbox_due", "id"),
        Index("ix_referral_inbox_assignee", "assignee_id", "inbox_rank", "inbox_due", "id"),
        Index("ix_referral_school_list", "school_id", "draft_first", "updated_at", "id"),
        Index("ix_referral_author_list", "author_id", "draft_first", "updated_at", "id"),
        Index("ix_referral_submitted", "submitted_at", "id"),
        # The evaluation filters by submission time and reads only these columns: answered from the index.
        Index(
            "ix_referral_evaluation",
            "submitted_at",
            "state",
            "district_id",
            "school_id",
            "urgency",
            "acknowledged_at",
            "acknowledge_due_at",
            "feedback_at",
            "feedback_due_at",
            "consultation_id",
            "affected_informed",
            "ack_minutes",
            "ack_working_minutes",
            "feedback_minutes",
            "feedback_working_minutes",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Every write checks and bumps the version, so two people acting at once cannot both succeed.
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version}
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    # Random token of the form that created the referral: a double click finds the first one.
    client_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[State] = mapped_column(enum_column(State), default=State.DRAFT, index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    # The district whose ASD is responsible now; it changes on transfer (§ 86 SGB VIII).
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    # Looked up by the composite indexes that start with them (ix_referral_author_list, …_inbox_assignee).
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The Fachberatung this referral was started from (one referral per consultation).
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id", ondelete="SET NULL"), unique=True)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The file number (Aktenzeichen) of the case in the Jugendamt's case software, recorded over the API.
    case_reference: Mapped[str | None] = mapped_column(String(60))
    submitted_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]  # arrival in the current district (differs after a transfer)
    acknowledged_at: Mapped[datetime | None]
    feedback_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # When the retention run removed identity, free text, messages and files (metadata stays).
    purged_at: Mapped[datetime | None]
    acknowledge_due_at: Mapped[datetime | None]
    feedback_due_at: Mapped[datetime | None]
    # Durations for the evaluation, fixed when the step happens (calendar and working-day minutes):
    # arrival in the district → acknowledgement, submission → feedback.
    ack_minutes: Mapped[int | None]
    ack_working_minutes: Mapped[int | None]
    feedback_minutes: Mapped[int | None]
    feedback_working_minutes: Mapped[int | None]
    # Sort keys of the lists (see INBOX_RANK above); never written by the application.
    inbox_rank: Mapped[int] = mapped_column(SmallInteger, Computed(INBOX_RANK, persisted=True))
    inbox_due: Mapped[datetime | None] = mapped_column(Computed(INBOX_DUE, persisted=True))
    draft_first: Mapped[int] = mapped_column(SmallInteger, Computed(DRAFT_FIRST, persisted=True))

    # 1. Child
    child_first_name: Mapped[str] = mapped_column(EncryptedText, default="")
    child_last_name: Mapped[str] = mapped_column(EncryptedText, default="")
    child_birth_date: Mapped[date | None] = mapped_column(EncryptedDate)
    # Keyed hash of last name, first name and date of birth: finds earlier referrals about the same
    # child without any name in clear (crypto.child_key).
    child_key: Mapped[str | None] = mapped_column(String(64), index=True)
    child_gender: Mapped[str] = mapped_column(String(40), default="")
    child_class: Mapped[str] = mapped_column(String(20), default="")
    child_address: Mapped[str] = mapped_column(EncryptedText, default="")
    child_language: Mapped[str] = mapped_column(String(100), default="")
    interpreter_needed: Mapped[bool | None] = mapped_column(Boolean)

    # 3. Observations
    observed_on: Mapped[date | None] = mapped_column(Date)
    observed_by: Mapped[str] = mapped_column(EncryptedText, default="")
    observation_source: Mapped[str] = mapped_column(EncryptedText, default="")
    observation: Mapped[str] = mapped_column(EncryptedText, default="")
    child_words: Mapped[str] = mapped_column(EncryptedText, default="")

    # 5. Those affected told beforehand
    affected_informed: Mapped[InformedStatus | None] = mapped_column(enum_column(InformedStatus))
    affected_informed_on: Mapped[date | None] = mapped_column(Date)
    affected_informed_reason: Mapped[str] = mapped_column(EncryptedText, default="")

    # 6. Urgency; akut documents the phone call to the ASD
    urgency: Mapped[Urgency | None] = mapped_column(enum_column(Urgency))
    phone_call_at: Mapped[datetime | None]
    phone_call_with: Mapped[str | None] = mapped_column(EncryptedText)

    # 7. Reporter
    reporter_name: Mapped[str] = mapped_column(String(120), default="")
    reporter_function: Mapped[ReporterFunction | None] = mapped_column(enum_column(ReporterFunction))
    reporter_phone: Mapped[str] = mapped_column(EncryptedText, default="")
    reporter_reachable: Mapped[str] = mapped_column(EncryptedText, default="")

    school: Mapped[School] = relationship(lazy="joined", innerjoin=True)
    district: Mapped[District] = relationship(lazy="joined", innerjoin=True)
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    consultation: Mapped[Consultation | None] = relationship()

    categories: Mapped[list[ReferralCategory]] = relationship(
        cascade="all, delete-orphan", order_by="ReferralCategory.category", lazy="selectin"
    )
    persons: Mapped[list[Person]] = relationship(cascade="all, delete-orphan", order_by="Person.position")
    school_actions: Mapped[list[SchoolAction]] = relationship(
        cascade="all, delete-orphan", order_by="SchoolAction.kind"
    )
    body_marks: Mapped[list[BodyMark]] = relationship(cascade="all, delete-orphan")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="referral", cascade="all, delete-orphan", order_by="Attachment.uploaded_at"
    )
    messages: Mapped[list[Message]] = relationship(
        back_populates="referral", cascade="all, delete-orphan", order_by="Message.created_at, Message.id"
    )
    history: Mapped[list[StateChange]] = relationship(cascade="all, delete-orphan", order_by="StateChange.id")
    assessment: Mapped[Assessment | None] = relationship(back_populates="referral", cascade="all, delete-orphan")
    feedback: Mapped[Feedback | None] = relationship(cascade="all, delete-orphan")

    def __str__(self) -> str:
        return self.number or f"Entwurf {self.id}"

    @property
    def category_codes(self) -> list[Category]:
        return [c.category for c in self.categories]

    @property
    def school_actions_in_order(self) -> list[SchoolAction]:
        """In the order of the form (PROCESS.md), whatever order the database returns."""
        order = list(SchoolActionKind)
        return sorted(self.school_actions, key=lambda a: order.index(a.kind))

    @property
    def feedback_owed(self) -> bool:
        return self.reporter_function is None or self.reporter_function.feedback_owed

    @property
    def child_name(self) -> str:
        return f"{self.child_first_name} {self.child_last_name}".strip()

    def overdue(self, now: datetime) -> list[str]:
        """German descriptions of what is overdue right now (the rule: `deadlines.overdue`)."""
        found = []
        if _overdue_rule(now, Late.ACKNOWLEDGE).applies(self):
            found.append("Eingangsbestätigung überfällig")
        if _overdue_rule(now, Late.FEEDBACK).applies(self):
            found.append("Rückmeldung überfällig")
        return found


@functools.lru_cache(maxsize=8)
def _overdue_rule(now: datetime, late: Late) -> OverdueRule:
    """The rule at `now`, made once per moment: a list asks it twice per row with the page's one `now`,
    and making it builds its SQL condition too (it was 40 % of an inbox page's time)."""
    return overdue(now, late)


class ReferralCategory(db.Model):
    __tablename__ = "referral_category"
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[Category] = mapped_column(enum_column(Category), primary_key=True)


class Person(db.Model):
    """A parent, other carer, or other person in the child's household."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[PersonKind] = mapped_column(enum_column(PersonKind))
    first_name: Mapped[str] = mapped_column(EncryptedText, default="")
    last_name: Mapped[str] = mapped_column(EncryptedText, default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str] = mapped_column(EncryptedText, default="")  # only if different from the child's
    phone: Mapped[str] = mapped_column(EncryptedText, default="")
    relation: Mapped[Relation | None] = mapped_column(enum_column(Relation))
    custody: Mapped[bool | None] = mapped_column(Boolean)


class SchoolAction(db.Model):
    """What the school already did: yes with a date, or no with the reason."""

    __tablename__ = "school_action"
    # A draft may hold "ja" without its date yet; submission_problems() requires both before submitting.
    __table_args__ = (UniqueConstraint("referral_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SchoolActionKind] = mapped_column(enum_column(SchoolActionKind))
    done: Mapped[bool | None] = mapped_column(Boolean)
    done_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(EncryptedText, default="")
    detail: Mapped[str] = mapped_column(EncryptedText, default="")


class BodyMark(db.Model):
    """A region marked on the front or back outline of the body map."""

    __tablename__ = "body_mark"
    __table_args__ = (UniqueConstraint("referral_id", "side", "region"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    side: Mapped[BodySide] = mapped_column(enum_column(BodySide))
    region: Mapped[BodyRegion] = mapped_column(enum_column(BodyRegion))


class Attachment(db.Model):
    """A file: its metadata here, its content encrypted in `AttachmentChunk` rows (cases/storage.py).
    `storage_key` is the random name it had in the upload folder before; it binds each chunk to it."""

    __tablename__ = "attachment"
    __table_args__ = (
        CheckConstraint("content_type IN ('application/pdf', 'image/jpeg', 'image/png')", name="allowed_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(EncryptedText)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="attachments")


class AttachmentChunk(db.Model):
    """A piece of an attachment's content, encrypted on its own (cases/storage.py), so that a download
    streams piece by piece. No ORM relationship: the pieces are written and read one at a time."""

    __tablename__ = "attachment_chunk"

    attachment_id: Mapped[int] = mapped_column(
        ForeignKey("attachment.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


@event.listens_for(Attachment, "before_delete")
def _delete_chunks(mapper, connection, attachment: Attachment) -> None:
    # SQLite enforces no foreign keys here (no ON DELETE CASCADE): the content goes with its row
    # in the same flush, on both databases (retention, a deleted draft, a removed attachment).
    connection.execute(sql_delete(AttachmentChunk).where(AttachmentChunk.attachment_id == attachment.id))


class Message(db.Model):
    """A question from the ASD, the school's answer, or an addendum from the school."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind))
    body: Mapped[str] = mapped_column(EncryptedText)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined")
    referral: Mapped[Referral] = relationship(back_populates="messages")

    @property
    def from_asd(self) -> bool:
        return self.kind is MessageKind.QUESTION


class ReferralReading(db.Model):
    """When a user last opened a referral, to show what is new to them."""

    __tablename__ = "referral_reading"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assessment(db.Model):
    """The ASD's risk assessment (§ 8a SGB VIII). Internal to the ASD; counted, never shown to others."""

    __tablename__ = "assessment"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), unique=True)
    result: Mapped[AssessmentResult] = mapped_column(enum_column(AssessmentResult))
    # Internal specialists are users; external ones are named in text (Zusammenwirken mehrerer Fachkräfte).
    other_specialists: Mapped[str] = mapped_column(EncryptedText, default="")
    school_involved: Mapped[bool] = mapped_column(Boolean)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="assessment")
    specialists: Mapped[list[User]] = relationship(secondary="assessment_specialist", order_by="User.name")
    measures: Mapped[list[AssessmentMeasure]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def measure_codes(self) -> list[Measure]:
        return [m.measure for m in self.measures]


class AssessmentSpecialist(db.Model):
    __tablename__ = "assessment_specialist"
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessment.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)


class AssessmentMeasure(db.Model):
    __tablename__ = "assessment_measure"
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessment.id", ondelete="CASCADE"), primary_key=True)
    measure: Mapped[Measure] = mapped_column(enum_column(Measure), primary_key=True)


class Feedback(db.Model):
    """The feedback of § 4 Abs. 4 KKG: exactly these facts and nothing about the family."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("affected_informed <> 'yes' OR affected_informed_on IS NOT NULL", name="informed_has_date"),
        CheckConstraint("affected_informed = 'yes' OR affected_informed_reason <> ''", name="not_informed_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), unique=True)
    indications_confirmed: Mapped[bool] = mapped_column(Boolean)
    asd_became_active: Mapped[bool] = mapped_column(Boolean)
    asd_still_active: Mapped[bool] = mapped_column(Boolean)
    contact_name: Mapped[str] = mapped_column(String(120))
    contact_phone: Mapped[str] = mapped_column(String(40))
    affected_informed: Mapped[InformedStatus] = mapped_column(enum_column(InformedStatus))
    affected_informed_on: Mapped[date | None] = mapped_column(Date)
    affected_informed_reason: Mapped[str] = mapped_column(EncryptedText, default="")
    given_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)


class StateChange(db.Model):
    """The referral's history: every action, who, when, from which state to which."""

    __tablename__ = "state_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    action: Mapped[Action] = mapped_column(enum_column(Action))
    from_state: Mapped[State | None] = mapped_column(enum_column(State, name="from_state"))
    to_state: Mapped[State] = mapped_column(enum_column(State, name="to_state"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(EncryptedText)
    from_district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    to_district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    referral: Mapped[Referral] = relationship(back_populates="history")
    actor: Mapped[User] = relationship(foreign_keys=[actor_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    from_district: Mapped[District | None] = relationship(foreign_keys=[from_district_id], lazy="joined")
    to_district: Mapped[District | None] = relationship(foreign_keys=[to_district_id], lazy="joined")


class CaseCounter(db.Model):
    """The last case number given per district and year; incremented atomically by an upsert."""

    __tablename__ = "case_counter"

    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)
