"""Retention (PROCESS.md, "Data protection"): the tool is a secure channel, not an archive.

A set time after a referral is closed (default 180 days) its identifying data, free text, messages,
body map and attachments are removed; the process metadata the evaluation needs stays (dates,
states, urgency, categories, school, district, assessment result, the three feedback answers).
Drafts nobody touched for 90 days are deleted. Each purge is recorded in the audit log. Running it
again changes nothing; `--dry-run` only reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, case, delete, literal, or_, select, update

from .audit.log import record
from .cases.models import (
    Assessment,
    Attachment,
    AttachmentChunk,
    BodyMark,
    Feedback,
    Message,
    Person,
    Referral,
    SchoolAction,
    StateChange,
)
from .cases.process import State
from .consultations.models import Consultation
from .consultations.process import ConsultationState
from .extensions import db
from .kernel.settings import deadline_settings
from .timeutil import utcnow

PURGED = "(gelöscht)"  # where the database requires a text (a reason for "nicht informiert")


BATCH = 200  # referrals (or consultations) per transaction: a few MB of objects, a short lock
LISTED = 5000  # rows of (id, number, date) read per query for the report: a few hundred KB


@dataclass
class Plan:
    """How many rows were (or would be) purged and deleted: counts, not objects, so that a run over
    any number of rows holds one batch in memory."""

    closed: int = 0
    drafts: int = 0
    consultations: int = 0


@dataclass(frozen=True)
class Cutoffs:
    closed_before: datetime
    drafts_before: datetime

    @classmethod
    def at(cls, now: datetime) -> Cutoffs:
        settings = deadline_settings()
        return cls(
            now - timedelta(days=settings["retention_days"]), now - timedelta(days=settings["draft_retention_days"])
        )


def _closed_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    return and_(
        Referral.state == State.CLOSED, Referral.closed_at < cutoffs.closed_before, Referral.purged_at.is_(None)
    )


def _drafts_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    return and_(Referral.state == State.DRAFT, Referral.updated_at < cutoffs.drafts_before)


def _consultations_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    """Consultations answered or withdrawn before the cut-off: their free text has served its purpose
    (a referral started from one carries its own copy, under the referral's retention)."""
    before = cutoffs.closed_before
    return and_(
        Consultation.purged_at.is_(None),
        or_(
            and_(Consultation.state == ConsultationState.ANSWERED, Consultation.answered_at < before),
            and_(Consultation.state == ConsultationState.CANCELLED, Consultation.cancelled_at < before),
        ),
    )


def _keyset(statement: Select[Any], id_column: Any, batch: int) -> Iterator[list[Row[Any]]]:
    """The rows of `statement` in batches of `batch`, walking the ids upwards (no OFFSET: every batch
    is an index range). Each batch is a fresh query, so rows purged by the previous batch's commit no
    longer match and nothing is held between batches."""
    last = 0
    while True:
        rows = db.session.execute(statement.where(id_column > last).order_by(id_column).limit(batch)).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1][0]


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


IDENTITY_AND_TEXT = (
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
)


def _purged_text(column: Any) -> Any:
    """PURGED as the column's type binds it (encrypted where the column is)."""
    return literal(PURGED, column.type)


def _purge_closed_batch(ids: list[int], now: datetime) -> None:
    """Remove identity, free text, messages, body map and attachments of these referrals: a few
    statements for the whole batch instead of loading and flushing every referral with its parts
    (the ORM way took about 8 ms per referral). What the evaluation needs stays."""
    owners = db.session.execute(
        select(Referral.id, Referral.school_id, Referral.district_id).where(Referral.id.in_(ids)).order_by(Referral.id)
    ).all()
    # SQLite enforces no ON DELETE CASCADE here: the attachments' content goes explicitly, first.
    attachments = select(Attachment.id).where(Attachment.referral_id.in_(ids)).scalar_subquery()
    db.session.execute(delete(AttachmentChunk).where(AttachmentChunk.attachment_id.in_(attachments)))
    for part in (Attachment, Person, Message, BodyMark):
        db.session.execute(delete(part).where(part.referral_id.in_(ids)))
    db.session.execute(
        update(SchoolAction)
        .where(SchoolAction.referral_id.in_(ids))
        .values(reason=case((SchoolAction.reason != "", _purged_text(SchoolAction.reason)), else_=""), detail="")
    )
    db.session.execute(update(Assessment).where(Assessment.referral_id.in_(ids)).values(other_specialists=""))
    db.session.execute(
        update(Feedback)
        .where(Feedback.referral_id.in_(ids), Feedback.affected_informed_reason != "")
        .values(affected_informed_reason=_purged_text(Feedback.affected_informed_reason))
    )
    db.session.execute(update(StateChange).where(StateChange.referral_id.in_(ids)).values(reason=None))
    db.session.execute(
        update(Referral)
        .where(Referral.id.in_(ids))
        .values(
            {
                **{name: "" for name in IDENTITY_AND_TEXT},
                "child_birth_date": None,
                "child_key": None,
                # The CHECK for akut keeps its shape: a call that was recorded stays recorded, nameless.
                "phone_call_with": case(
                    (Referral.phone_call_with != "", _purged_text(Referral.phone_call_with)), else_=None
                ),
                "purged_at": now,
                "version": Referral.version + 1,  # an edit form still open on the old version is refused
            }
        )
        .execution_options(synchronize_session=False)
    )
    for referral_id, school_id, district_id in owners:
        # Not an action of the process: no history entry; the audit log has it.
        record(
            "referral.purge",
            object_type="referral",
            object_id=referral_id,
            school_id=school_id,
            district_id=district_id,
            fields=["identity", "free text", "messages", "attachments", "body map"],
            role="system",
            scope="Aufbewahrungsfrist",
            actor=None,
        )


def run(dry_run: bool = False, now: datetime | None = None, report=print, batch: int = BATCH) -> Plan:
    """Purge what is due, in batches of `batch` rows, each batch committed on its own.

    Why a transaction per batch and not one for the run: a crash or a kill leaves every referral
    either whole or purged (never half), and a new run simply continues, as every condition excludes
    what is done; one transaction for 150,000 referrals would keep the rows locked for minutes, grow
    without bound, hold the audit log's head for the whole run and lose all work on a crash. Not one
    per referral either: a commit (and audit seal) per row made the run slow.
    """
    now = now or utcnow()
    cutoffs = Cutoffs.at(now)
    plan = Plan()
    # Only the columns the report needs; the objects are loaded per batch, only to change them.
    for rows in _keyset(
        select(Referral.id, Referral.number, Referral.closed_at).where(_closed_due(cutoffs)), Referral.id, LISTED
    ):
        for _, number, closed_at in rows:
            report(f"{'would purge' if dry_run else 'purged'}: {number} (closed {closed_at:%Y-%m-%d})")
        plan.closed += len(rows)
        _in_batches(dry_run, rows, batch, lambda ids: _purge_closed_batch(ids, now))
    for rows in _keyset(select(Referral.id, Referral.updated_at).where(_drafts_due(cutoffs)), Referral.id, LISTED):
        for draft_id, updated_at in rows:
            report(f"{'would delete' if dry_run else 'deleted'}: draft {draft_id} (last changed {updated_at:%Y-%m-%d})")
        plan.drafts += len(rows)
        _in_batches(dry_run, rows, batch, _delete_drafts)
    for rows in _keyset(
        select(Consultation.id, Consultation.number).where(_consultations_due(cutoffs)), Consultation.id, LISTED
    ):
        for _, number in rows:
            report(f"{'would purge' if dry_run else 'purged'}: consultation {number}")
        plan.consultations += len(rows)
        _in_batches(dry_run, rows, batch, lambda ids: _purge_consultations(ids, now))
    report(summary(plan, dry_run=dry_run))
    return plan


def _in_batches(dry_run: bool, rows: list[Row[Any]], batch: int, purge: Callable[[list[int]], None]) -> None:
    """Purge the listed rows `batch` at a time, each batch committed on its own (see `run`)."""
    if dry_run:
        db.session.rollback()
        return
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), batch):
        purge(ids[start : start + batch])
        db.session.commit()
        # Nothing of the batch is kept: the session's identity map holds objects weakly, so the
        # batch's objects go once nothing refers to them; memory stays that of one batch.


def _delete_drafts(ids: list[int]) -> None:
    for referral in db.session.scalars(select(Referral).where(Referral.id.in_(ids)).order_by(Referral.id)):
        record("referral.purge", referral, fields=["draft"], role="system", scope="Aufbewahrungsfrist", actor=None)
        db.session.delete(referral)


def _purge_consultations(ids: list[int], now: datetime) -> None:
    owners = db.session.execute(
        select(Consultation.id, Consultation.school_id, Consultation.district_id)
        .where(Consultation.id.in_(ids))
        .order_by(Consultation.id)
    ).all()
    db.session.execute(
        update(Consultation)
        .where(Consultation.id.in_(ids))
        .values(
            observations="",
            question="",
            recommendation_note="",
            contact_phone="",
            reachable="",
            purged_at=now,
            version=Consultation.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    for consultation_id, school_id, district_id in owners:
        record(
            "consultation.purge",
            object_type="consultation",
            object_id=consultation_id,
            school_id=school_id,
            district_id=district_id,
            fields=["free text", "contact"],
            role="system",
            scope="Aufbewahrungsfrist",
            actor=None,
        )


def summary(plan: Plan, dry_run: bool) -> str:
    """The last line of every run, also when nothing is due: the log shows that the job ran."""
    counts = (
        f"{plan.closed} closed referrals {'would be ' if dry_run else ''}purged, "
        f"{plan.drafts} drafts {'would be ' if dry_run else ''}deleted, "
        f"{plan.consultations} consultations {'would be ' if dry_run else ''}purged."
    )
    nothing = not (plan.closed or plan.drafts or plan.consultations)
    return ("Dry run, nothing changed: " if dry_run else "") + counts + (" Nothing was due." if nothing else "")
