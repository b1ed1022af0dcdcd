"""Retention (PROCESS.md, "Data protection"): the tool is a secure channel, not an archive.

A set time after a referral is closed (default 180 days) its identifying data, free text, messages,
body map and attachments are removed; the process metadata the evaluation needs stays (dates,
states, urgency, categories, school, district, assessment result, the three feedback answers).
Drafts nobody touched for 90 days are deleted. Each purge is recorded in the audit log. Running it
again changes nothing; `--dry-run` only reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from .audit.log import record
from .cases.models import Referral
from .cases.process import State
from .consultations.models import Consultation
from .consultations.process import ConsultationState
from .extensions import db
from .kernel.settings import deadline_settings
from .timeutil import utcnow

PURGED = "(gelöscht)"  # where the database requires a text (a reason for "nicht informiert")


@dataclass
class Plan:
    closed: list[Referral] = field(default_factory=list)
    drafts: list[Referral] = field(default_factory=list)
    consultations: list[Consultation] = field(default_factory=list)


def due(now: datetime | None = None) -> Plan:
    now = now or utcnow()
    settings = deadline_settings()
    closed_before = now - timedelta(days=settings["retention_days"])
    drafts_before = now - timedelta(days=settings["draft_retention_days"])
    return Plan(
        closed=db.session.scalars(
            select(Referral)
            .where(Referral.state == State.CLOSED, Referral.closed_at < closed_before, Referral.purged_at.is_(None))
            .order_by(Referral.id)
        ).all(),
        drafts=db.session.scalars(
            select(Referral)
            .where(Referral.state == State.DRAFT, Referral.updated_at < drafts_before)
            .order_by(Referral.id)
        ).all(),
        consultations=_finished_consultations(closed_before),
    )


def _finished_consultations(before: datetime) -> list:
    """Consultations answered or withdrawn before `before`: their free text has served its purpose
    (a referral started from one carries its own copy, under the referral's retention)."""
    return db.session.scalars(
        select(Consultation)
        .where(
            Consultation.purged_at.is_(None),
            or_(
                and_(Consultation.state == ConsultationState.ANSWERED, Consultation.answered_at < before),
                and_(Consultation.state == ConsultationState.CANCELLED, Consultation.cancelled_at < before),
            ),
        )
        .order_by(Consultation.id)
    ).all()


def purge_date(referral: Referral) -> datetime | None:
    """When the retention run will remove this referral's data (shown on its page)."""
    settings = deadline_settings()
    if referral.purged_at:
        return None
    if referral.state is State.CLOSED and referral.closed_at:
        return referral.closed_at + timedelta(days=settings["retention_days"])
    if referral.state is State.DRAFT and referral.updated_at:
        return referral.updated_at + timedelta(days=settings["draft_retention_days"])
    return None


def _purge_closed(referral: Referral, now: datetime) -> None:
    for name in (
        "child_first_name",
        "child_last_name",
        "child_address",
        "child_language",
        "child_gender",
        "child_class",
        "observed_by",
        "observation_source",
        "observation",
        "child_words",
        "affected_informed_reason",
        "reporter_name",
        "reporter_phone",
        "reporter_reachable",
    ):
        setattr(referral, name, "")
    referral.child_birth_date = None
    referral.child_key = None
    referral.phone_call_with = PURGED if referral.phone_call_with else None  # the CHECK for akut keeps its shape
    referral.persons.clear()
    referral.messages.clear()
    referral.attachments.clear()
    referral.body_marks.clear()
    for action in referral.school_actions:
        action.reason = PURGED if action.reason else ""
        action.detail = ""
    if referral.assessment is not None:
        referral.assessment.other_specialists = ""
    if referral.feedback is not None and referral.feedback.affected_informed_reason:
        referral.feedback.affected_informed_reason = PURGED
    for change in referral.history:
        change.reason = None
    referral.purged_at = now


def run(dry_run: bool = False, now: datetime | None = None, report=print) -> Plan:
    now = now or utcnow()
    plan = due(now)
    for referral in plan.closed:
        report(f"{'would purge' if dry_run else 'purged'}: {referral.number} (closed {referral.closed_at:%Y-%m-%d})")
    for referral in plan.drafts:
        report(
            f"{'would delete' if dry_run else 'deleted'}: draft {referral.id} "
            f"(last changed {referral.updated_at:%Y-%m-%d})"
        )
    for consultation in plan.consultations:
        report(f"{'would purge' if dry_run else 'purged'}: consultation {consultation.number}")
    if dry_run:
        db.session.rollback()
        report(summary(plan, dry_run=True))
        return plan
    for referral in plan.closed:
        _purge_closed(referral, now)  # the attachments' content goes with their rows
        # Not an action of the process: no new version, no history entry; the audit log has it.
        record(
            "referral.purge",
            referral,
            fields=["identity", "free text", "messages", "attachments", "body map"],
            role="system",
            scope="Aufbewahrungsfrist",
            actor=None,
        )
        db.session.commit()  # one referral at a time: an interrupted run leaves each whole
    for referral in plan.drafts:
        record("referral.purge", referral, fields=["draft"], role="system", scope="Aufbewahrungsfrist", actor=None)
        db.session.delete(referral)
        db.session.commit()
    for consultation in plan.consultations:
        consultation.observations = consultation.question = consultation.recommendation_note = ""
        consultation.contact_phone = consultation.reachable = ""
        consultation.purged_at = now
        record(
            "consultation.purge",
            consultation,
            fields=["free text", "contact"],
            role="system",
            scope="Aufbewahrungsfrist",
            actor=None,
        )
        db.session.commit()
    report(summary(plan, dry_run=False))
    return plan


def summary(plan: Plan, dry_run: bool) -> str:
    """The last line of every run, also when nothing is due: the log shows that the job ran."""
    counts = (
        f"{len(plan.closed)} closed referrals {'would be ' if dry_run else ''}purged, "
        f"{len(plan.drafts)} drafts {'would be ' if dry_run else ''}deleted, "
        f"{len(plan.consultations)} consultations {'would be ' if dry_run else ''}purged."
    )
    nothing = not (plan.closed or plan.drafts or plan.consultations)
    return ("Dry run, nothing changed: " if dry_run else "") + counts + (" Nothing was due." if nothing else "")
