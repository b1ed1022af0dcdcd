"""The domain actions on referrals. They change and flush, never commit: the request commits once."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import ASD_ROLES, Membership, User
from ..audit.log import record
from ..crypto import child_key, vault
from ..extensions import db
from ..kernel.deadlines import working_minutes_between
from ..kernel.settings import deadline_settings
from ..kernel.upsert import upsert
from ..kernel.wording import megabytes
from ..organisation.models import District
from ..timeutil import to_local, utcnow
from ..workflow.errors import ProcessError
from . import process
from .models import Assessment, AssessmentMeasure, Attachment, CaseCounter, Feedback, Message, Referral
from .process import Action
from .vocabulary import MessageKind, SchoolActionKind


def next_case_number(district: District, year: int) -> str:
    """WE-2026-0042: one atomic upsert per number, so concurrent submissions never share one."""
    statement = upsert(
        CaseCounter,
        {"district_id": district.id, "year": year, "last_number": 1},
        index_elements=[CaseCounter.district_id, CaseCounter.year],
        set_={"last_number": CaseCounter.last_number + 1},
    ).returning(CaseCounter.last_number)
    number = db.session.execute(statement).scalar_one()
    return f"{district.code}-{year}-{number:04d}"


def new_draft(author: User, school) -> Referral:
    referral = Referral(author=author, school=school, district=school.district, state=process.State.DRAFT)
    referral.school_actions = [_school_action(kind) for kind in SchoolActionKind]
    return referral


def _school_action(kind):
    from .models import SchoolAction

    return SchoolAction(kind=kind)


def _match_key(referral: Referral) -> None:
    referral.child_key = child_key(referral.child_last_name, referral.child_first_name, referral.child_birth_date)


class FormAlreadySent(ProcessError):
    """A parallel request of the same form (same form token: double click, autosave) created the
    referral first. The session must be rolled back; `referral_by_token` then finds that referral."""

    def __init__(self, token: str):
        super().__init__("Dieses Formular wurde bereits gesendet.")
        self.token = token


TOKEN_CONSTRAINT = "uq_referral_client_token"


def _is_token_clash(error: IntegrityError) -> bool:
    diagnosis = getattr(error.orig, "diag", None)  # psycopg names the constraint
    if diagnosis is not None:
        return diagnosis.constraint_name == TOKEN_CONSTRAINT
    return "referral.client_token" in str(error.orig)  # SQLite names the column


def _insert(referral: Referral) -> None:
    """The first write of a new referral, before anything else of it (case number, history): a
    parallel request of the same form waits here for the first one and then gets `FormAlreadySent`."""
    db.session.add(referral)
    try:
        db.session.flush()
    except IntegrityError as error:
        if referral.client_token and _is_token_clash(error):
            raise FormAlreadySent(referral.client_token) from error
        raise


def save_draft(referral: Referral, actor: User) -> None:
    _match_key(referral)
    if referral.id is None:
        _insert(referral)
    process.apply(referral, Action.EDIT, actor)


def submit(referral: Referral, actor: User, now: datetime | None = None) -> None:
    problems = process.submission_problems(referral)
    if problems:
        raise IncompleteReferral(problems)
    _match_key(referral)
    if referral.id is None:
        _insert(referral)  # as a draft; before the case number is drawn
    now = now or utcnow()
    settings = deadline_settings()
    referral.number = next_case_number(referral.district, to_local(now).year)
    referral.submitted_at = referral.received_at = now
    referral.acknowledge_due_at = process.acknowledge_due(now, referral.urgency, settings)
    # Owed for every referral: with OGS reporters it goes to the school lead (policy.may_read_feedback).
    referral.feedback_due_at = process.feedback_due(now, settings)
    process.apply(referral, Action.SUBMIT, actor, now=now)


class IncompleteReferral(ProcessError):
    def __init__(self, problems: dict[str, str]):
        super().__init__("Die Mitteilung ist noch nicht vollständig. Bitte ergänzen Sie die markierten Angaben.")
        self.problems = problems


def delete_draft(referral: Referral, actor: User) -> list[str]:
    """Deletes the draft for good; returns the attachment files to remove once committed."""
    _check(Action.DELETE, referral)
    keys = [a.storage_key for a in referral.attachments]
    process.apply(referral, Action.DELETE, actor)
    return keys


def acknowledge(referral: Referral, actor: User, now: datetime | None = None) -> None:
    now = now or utcnow()
    _check(Action.ACKNOWLEDGE, referral)
    referral.acknowledged_at = now
    referral.acknowledged_by = actor
    referral.ack_minutes, referral.ack_working_minutes = durations(referral.received_at, now)
    process.apply(referral, Action.ACKNOWLEDGE, actor, now=now)


def transfer(referral: Referral, actor: User, to_district: District, reason: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    _check(Action.TRANSFER, referral)
    if to_district.id == referral.district_id:
        raise ProcessError("Die Mitteilung liegt bereits in diesem Bezirk.")
    if not reason.strip():
        raise ProcessError("Bitte den Grund der Abgabe angeben.")
    # The receiving district starts afresh; the feedback the school is owed stays due as before.
    acknowledge_due = process.acknowledge_due(now, referral.urgency, deadline_settings())
    referral.district = to_district
    referral.received_at = now
    referral.acknowledged_at = None
    referral.ack_minutes = referral.ack_working_minutes = None
    referral.acknowledged_by = None
    referral.assignee = None
    referral.acknowledge_due_at = acknowledge_due
    process.apply(referral, Action.TRANSFER, actor, reason=reason.strip(), to_district=to_district, now=now)


def take_over(referral: Referral, actor: User, now: datetime | None = None) -> None:
    _check(Action.TAKE_OVER, referral)
    referral.assignee = actor
    process.apply(referral, Action.TAKE_OVER, actor, assignee=actor, now=now)


def assign(
    referral: Referral, actor: User, assignee: User, staff: list[User] | None = None, now: datetime | None = None
) -> None:
    action = Action.ASSIGN if referral.state is process.State.ACKNOWLEDGED else Action.REASSIGN
    _check(action, referral)
    if assignee not in (staff if staff is not None else district_staff(referral.district_id)):
        raise ProcessError("Zuweisen ist nur an Fachkräfte dieses Bezirks möglich.")
    referral.assignee = assignee
    process.apply(referral, action, actor, assignee=assignee, now=now)


def ask(referral: Referral, actor: User, question: str, now: datetime | None = None) -> None:
    _check(Action.ASK, referral)
    _message(referral, actor, MessageKind.QUESTION, question, now)
    process.apply(referral, Action.ASK, actor, now=now)


def answer(referral: Referral, actor: User, text: str, now: datetime | None = None) -> None:
    _check(Action.ANSWER, referral)
    _message(referral, actor, MessageKind.ANSWER, text, now)
    process.apply(referral, Action.ANSWER, actor, now=now)


def add_addendum(referral: Referral, actor: User, text: str, now: datetime | None = None) -> None:
    _check(Action.ADDENDUM, referral)
    _message(referral, actor, MessageKind.ADDENDUM, text, now)
    process.apply(referral, Action.ADDENDUM, actor, now=now)


def record_assessment(
    referral: Referral,
    actor: User,
    *,
    result,
    specialists: list[User],
    other_specialists: str,
    school_involved: bool,
    measures: list,
    now: datetime | None = None,
) -> Assessment:
    _check(Action.RECORD_ASSESSMENT, referral)
    specialists = list(dict.fromkeys(specialists))
    if len(specialists) + len([n for n in other_specialists.splitlines() if n.strip()]) < 2:
        raise ProcessError("Die Einschätzung erfolgt im Zusammenwirken mehrerer Fachkräfte: mindestens zwei angeben.")
    with db.session.no_autoflush:  # the assessment is complete only after all fields are set
        if referral.assessment is None:
            referral.assessment = Assessment()
        assessment = referral.assessment
        assessment.result = result
        assessment.specialists = specialists
        assessment.other_specialists = other_specialists.strip()
        assessment.school_involved = school_involved
        assessment.measures = [AssessmentMeasure(measure=m) for m in measures]
        assessment.recorded_by_id = actor.id
        assessment.recorded_at = now or utcnow()
    process.apply(referral, Action.RECORD_ASSESSMENT, actor, now=now)
    return assessment


def give_feedback(referral: Referral, actor: User, now: datetime | None = None, **fields) -> Feedback:
    now = now or utcnow()
    _check(Action.GIVE_FEEDBACK, referral)
    if referral.assessment is None:
        raise ProcessError("Bitte zuerst die Gefährdungseinschätzung erfassen.")
    referral.feedback = Feedback(given_by_id=actor.id, given_at=now, **fields)
    referral.feedback_at = now
    referral.feedback_minutes, referral.feedback_working_minutes = durations(referral.submitted_at, now)
    process.apply(referral, Action.GIVE_FEEDBACK, actor, now=now)
    return referral.feedback


def close(referral: Referral, actor: User, now: datetime | None = None) -> None:
    now = now or utcnow()
    _check(Action.CLOSE, referral)
    referral.closed_at = now
    process.apply(referral, Action.CLOSE, actor, now=now)


def durations(start: datetime, end: datetime) -> tuple[int, int]:
    """Calendar and working-day minutes from `start` to `end`, for the evaluation."""
    return max(0, int((end - start).total_seconds() // 60)), working_minutes_between(start, end)


def _check(action: Action, referral: Referral) -> None:
    process.RULES.check(action, referral.state)


def _message(referral: Referral, actor: User, kind: MessageKind, body: str, now: datetime | None = None) -> Message:
    if not body.strip():
        raise ProcessError("Bitte einen Text eingeben.")
    message = Message(referral=referral, kind=kind, body=body.strip(), author_id=actor.id, created_at=now or utcnow())
    db.session.add(message)
    return message


def district_staff(district_id: int) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.id.in_(
                    select(Membership.user_id).where(
                        Membership.district_id == district_id, Membership.role.in_(ASD_ROLES)
                    )
                ),
                User.active.is_(True),
            )
            .order_by(User.name)
        )
    )


# --- Attachments -----------------------------------------------------------------------------

SIGNATURES = {b"%PDF-": "application/pdf", b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def sniff_type(head: bytes) -> str | None:
    """The file type by its content, not its name."""
    for signature, content_type in SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    return None


def upload_folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def add_attachment(referral: Referral, actor: User, filename: str, data: bytes) -> Attachment:
    action = Action.EDIT if referral.state is process.State.DRAFT else Action.ADDENDUM
    _check(action, referral)
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    if not data:
        raise ProcessError("Die Datei ist leer.")
    if len(data) > limit:
        raise ProcessError(f"Die Datei ist zu groß (höchstens {megabytes(limit)}).")
    content_type = sniff_type(data[:16])
    if content_type is None:
        raise ProcessError("Nur PDF-, JPEG- und PNG-Dateien sind erlaubt.")
    if content_type != "application/pdf":
        data = without_metadata(data, content_type)
    name = Path(filename.replace("\x00", "")).name[:200] or "anhang"
    attachment = Attachment(
        referral=referral,
        filename=name,
        content_type=content_type,
        size=len(data),
        storage_key=secrets.token_hex(32),
        uploaded_by_id=actor.id,
    )
    db.session.add(attachment)
    process.apply(referral, action, actor, reason=f"Anhang: {name}")
    if action is Action.ADDENDUM:  # a draft's attachments are part of its "saved" entry
        db.session.flush([attachment])
        record("attachment.add", referral, fields=[f"attachment {attachment.id}"])
    # Written last: if the commit fails, the caller removes the file again (see routes.upload).
    # Encrypted like the rest of the case data: the file system never holds the content in clear.
    (upload_folder() / attachment.storage_key).write_bytes(vault().encrypt(data))
    return attachment


MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo; larger "images" are decompression bombs


def without_metadata(data: bytes, content_type: str) -> bytes:
    """The photo re-encoded without EXIF, GPS, comments or text chunks (who, where, which device)."""
    from io import BytesIO

    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF tag gave
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            # A new image has pixels only: none of the original's info (EXIF, comments, text chunks).
            clean = Image.new(image.mode, image.size)
            clean.paste(image)
            out = BytesIO()
            if content_type == "image/jpeg":
                clean.convert("RGB").save(out, format="JPEG", quality=92)
            else:
                clean.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise ProcessError(
            "Das Bild konnte nicht gelesen werden. Bitte als JPEG oder PNG speichern und erneut hochladen."
        ) from error


def attachment_path(attachment: Attachment) -> Path:
    return upload_folder() / attachment.storage_key


def attachment_bytes(attachment: Attachment) -> bytes:
    return vault().decrypt(attachment_path(attachment).read_bytes())


def remove_files(keys: list[str]) -> None:
    for key in keys:
        (upload_folder() / key).unlink(missing_ok=True)
