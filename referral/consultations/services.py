"""The domain actions on consultations. They change and flush, never commit: the view commits once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..accounts.models import User
from ..cases import services as case_services
from ..cases.models import Referral, ReferralCategory
from ..cases.vocabulary import Category, SchoolActionKind
from ..extensions import db
from ..kernel.settings import deadline_settings
from ..kernel.upsert import upsert
from ..organisation.models import School
from ..timeutil import to_local, utcnow
from . import process
from .models import Consultation, ConsultationCategory, ConsultationCounter
from .process import ConsultationAction as A


def next_number(year: int) -> str:
    """FB-2026-0007: one atomic upsert per number (the pool is city-wide, so one series per year)."""
    number = db.session.execute(
        upsert(
            ConsultationCounter,
            {"year": year, "last_number": 1},
            index_elements=[ConsultationCounter.year],
            set_={"last_number": ConsultationCounter.last_number + 1},
        ).returning(ConsultationCounter.last_number)
    ).scalar_one()
    return f"FB-{year}-{number:04d}"


def request(
    author: User, school: School, *, categories: list[Category], now: datetime | None = None, **fields
) -> Consultation:
    now = now or utcnow()
    consultation = Consultation(
        author=author,
        school=school,
        district_id=school.district_id,
        requested_at=now,
        number=next_number(to_local(now).year),
        accept_due_at=process.accept_due(now, deadline_settings()),
        categories=[ConsultationCategory(category=c) for c in categories],
        **fields,
    )
    db.session.add(consultation)
    process.apply(consultation, A.REQUEST, author, now)
    return consultation


def cancel(consultation: Consultation, actor: User, now: datetime | None = None) -> None:
    now = now or utcnow()
    process.apply(consultation, A.CANCEL, actor, now, cancelled_at=now)


def accept(consultation: Consultation, actor: User, now: datetime | None = None) -> None:
    now = now or utcnow()
    process.apply(consultation, A.ACCEPT, actor, now, insofa=actor, accepted_at=now)


def arrange(consultation: Consultation, actor: User, *, at: datetime, way, now: datetime | None = None) -> None:
    process.apply(consultation, A.ARRANGE, actor, now, appointment_at=at, appointment_way=way)


def answer(consultation: Consultation, actor: User, *, recommendation, note: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    process.apply(
        consultation, A.ANSWER, actor, now, recommendation=recommendation, recommendation_note=note, answered_at=now
    )


def referral_from(consultation: Consultation) -> Referral | None:
    """The draft or referral already started from `consultation`, if any."""
    return db.session.scalar(
        select(Referral).where(Referral.consultation_id == consultation.id).order_by(Referral.id).limit(1)
    )


def start_referral(consultation: Consultation, actor: User) -> Referral:
    """A draft referral linked to the consultation, its observations and categories carried over, and
    "InsoFa beraten" answered with the day of the advice. Once per consultation: a second click finds it."""
    process.RULES.check(A.START_REFERRAL, consultation.state)
    existing = referral_from(consultation)
    if existing is not None:
        return existing
    referral = case_services.new_draft(actor, consultation.school)
    referral.consultation = consultation
    referral.child_class = consultation.class_level if consultation.class_level != "other" else ""
    referral.observation = consultation.observations
    referral.categories = [ReferralCategory(category=c) for c in consultation.category_codes]
    for action in referral.school_actions:
        if action.kind is SchoolActionKind.INSOFA_CONSULTED:
            action.done = True
            action.done_on = to_local(consultation.answered_at).date()
            # The field asks for the InsoFa's name; the pseudonymised consultation's number stays out of
            # the referral the ASD reads.
            action.detail = consultation.insofa.name if consultation.insofa else ""
    case_services.save_draft(referral, actor)
    process.consultation_changed.send(consultation, action=A.START_REFERRAL, actor=actor, now=utcnow(), fields=[])
    return referral
