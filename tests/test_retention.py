"""Retention: travelling in time by setting when referrals were closed or last changed."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, text

from referral.audit.models import AuditEntry
from referral.cases import storage
from referral.cases.models import Assessment, Attachment, AttachmentChunk, Feedback, Message, Person, Referral
from referral.cases.process import State
from referral.cases.vocabulary import MessageKind
from referral.crypto import EncryptedDate, EncryptedText
from referral.extensions import db
from referral.retention import PURGED
from referral.timeutil import utcnow

from . import factories


def closed_case(world, days_ago: int) -> Referral:
    referral = factories.referral_in(State.CLOSED, world.teacher, world.asd)
    db.session.execute(
        text("UPDATE referral SET closed_at = :at WHERE id = :id"),
        {"at": utcnow() - timedelta(days=days_ago), "id": referral.id},
    )
    db.session.commit()
    return referral


def with_file(referral, world) -> int:
    """An attachment of the referral, its content in the database; returns its id."""
    content = b"%PDF-data" + b"0" * (storage.CHUNK_SIZE + 10)  # two chunks
    attachment = Attachment(
        referral=referral,
        filename="befund.pdf",
        content_type="application/pdf",
        size=len(content),
        storage_key="k" * 64,
        uploaded_by_id=world.teacher.id,
    )
    db.session.add(attachment)
    storage.store(attachment, content)
    db.session.commit()
    return attachment.id


def chunks_of(attachment_id: int) -> int:
    return db.session.scalar(
        select(db.func.count()).select_from(AttachmentChunk).where(AttachmentChunk.attachment_id == attachment_id)
    )


def test_closed_referrals_lose_identity_and_text_after_180_days_and_keep_their_metadata(app, world, runner):
    old = closed_case(world, 181)
    recent = closed_case(world, 179)
    old_id, recent_id, number = old.id, recent.id, old.number
    file = with_file(old, world)
    assert chunks_of(file) == 2
    db.session.add(
        Message(referral=old, kind=MessageKind.ADDENDUM, body="Nachtrag mit Namen", author_id=world.teacher.id)
    )
    db.session.commit()
    messages_before = db.session.scalar(
        select(db.func.count()).select_from(Message).where(Message.referral_id == old_id)
    )
    assert messages_before and old.persons

    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0 and f"would purge: {number}" in dry.output
    db.session.expire_all()
    assert db.session.get(Referral, old_id).child_last_name == factories.CHILD_LAST and chunks_of(file) == 2, (
        "dry run changes nothing"
    )

    result = runner.invoke(args=["retention", "run"])
    assert (
        result.exit_code == 0 and f"purged: {number}" in result.output and "1 closed referrals purged" in result.output
    )
    db.session.expire_all()
    purged = db.session.get(Referral, old_id)
    assert (
        purged.purged_at
        and purged.child_last_name == ""
        and purged.child_birth_date is None
        and purged.observation == ""
    )
    assert purged.child_key is None and not purged.persons and not purged.messages and not purged.attachments
    assert chunks_of(file) == 0, "the content goes with its row"
    # What the evaluation needs stays.
    assert purged.number == number and purged.state is State.CLOSED and purged.urgency and purged.categories
    assert purged.submitted_at and purged.acknowledged_at and purged.feedback_at and purged.closed_at
    assert db.session.scalar(select(Assessment.result).where(Assessment.referral_id == old_id)) is not None
    assert db.session.scalar(select(Feedback.indications_confirmed).where(Feedback.referral_id == old_id)) is not None
    assert db.session.get(Referral, recent_id).child_last_name == factories.CHILD_LAST, "179 days: not yet"
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.purge")).all()
    assert entry.object_id == str(old_id) and entry.actor_id is None and entry.actor_role == "system"
    assert db.session.execute(text("SELECT count(*) FROM person WHERE referral_id = :id"), {"id": old_id}).scalar() == 0

    again = runner.invoke(args=["retention", "run"])
    assert "0 closed referrals purged, 0 drafts deleted" in again.output, "idempotent"
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def _encrypted_columns(model) -> list[str]:
    return [
        c.key for c in model.__mapper__.column_attrs if isinstance(c.columns[0].type, (EncryptedText, EncryptedDate))
    ]


def _referral_models() -> list[type]:
    """Referral and every model that hangs on a referral by `referral_id` and has encrypted columns."""
    models = [m.class_ for m in db.Model.registry.mappers]
    return [m for m in models if _encrypted_columns(m) and (m is Referral or "referral_id" in m.__table__.c)]


def test_the_purge_clears_every_encrypted_column_of_a_referral_and_its_parts(app, world, runner):
    """Whatever is stored encrypted about a referral is personal: a column added later (a new form
    field, a new part) must be cleared by the purge too, or this test names it."""
    old = closed_case(world, 181)
    file = with_file(old, world)
    db.session.add(Message(referral=old, kind=MessageKind.ADDENDUM, body="Nachtrag", author_id=world.teacher.id))
    db.session.commit()
    filled: set[str] = set()
    for model in _referral_models():
        owner = model.id if model is Referral else model.referral_id
        for row in db.session.scalars(select(model).where(owner == old.id)):
            for name in _encrypted_columns(model):
                is_date = isinstance(model.__mapper__.columns[name].type, EncryptedDate)
                setattr(row, name, date(2018, 5, 4) if is_date else "Geheimnis")
                filled.add(f"{model.__tablename__}.{name}")
    db.session.commit()
    # Every part a closed referral has is filled: the referral, its people, files, messages, the
    # school's actions, the assessment, the feedback and the history.
    assert {t.split(".")[0] for t in filled} == {
        "referral",
        "person",
        "attachment",
        "message",
        "school_action",
        "assessment",
        "feedback",
        "state_change",
    }

    assert runner.invoke(args=["retention", "run"]).exit_code == 0
    db.session.expire_all()
    left = []
    for model in _referral_models():
        owner = model.id if model is Referral else model.referral_id
        for row in db.session.scalars(select(model).where(owner == old.id)):
            left += [
                f"{model.__tablename__}.{name}"
                for name in _encrypted_columns(model)
                if getattr(row, name) not in ("", None, PURGED)
            ]
    assert not left, f"the purge leaves personal data in {left}"
    assert chunks_of(file) == 0, "the file's content goes with its row"


def test_untouched_drafts_are_deleted_after_90_days(app, world, runner):
    old = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    fresh = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    db.session.execute(
        text("UPDATE referral SET updated_at = :at WHERE id = :id"), {"at": utcnow() - timedelta(days=91), "id": old.id}
    )
    db.session.commit()
    old_id, fresh_id = old.id, fresh.id
    result = runner.invoke(args=["retention", "run"])
    assert f"deleted: draft {old_id}" in result.output
    db.session.expire_all()
    assert db.session.get(Referral, old_id) is None and db.session.get(Referral, fresh_id) is not None
    assert db.session.scalar(select(db.func.count()).select_from(Person).where(Person.referral_id == old_id)) == 0


def test_the_admin_sets_the_retention_period(app, world, runner, as_user):
    from .conftest import csrf_token

    closed_case(world, 40)
    admin = as_user(world.admin)
    form = {
        "ack_acute_hours": 2,
        "ack_working_days": 1,
        "feedback_working_days": 10,
        "consultation_accept_working_days": 2,
        "retention_days": 30,
        "draft_retention_days": 90,
        "csrf_token": csrf_token(admin, "/admin/deadlines"),
    }
    assert admin.post("/admin/deadlines", data=form).status_code == 302
    assert "1 closed referrals purged" in runner.invoke(args=["retention", "run"]).output


def test_referral_pages_say_when_the_data_will_be_purged(world, as_user):
    referral = closed_case(world, 10)
    html = as_user(world.asd).get(f"/referrals/{referral.id}").get_data(as_text=True)
    expected = referral.closed_at + timedelta(days=180)
    from referral.templating import local_date

    assert f"am {local_date(expected)}: Namen, Texte, Nachrichten und Anhänge" in html
    draft = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    assert "wird am" in as_user(world.teacher).get(f"/referrals/{draft.id}/edit").get_data(as_text=True)


def test_finished_consultations_lose_their_free_text_after_the_retention_period(app, world, runner, as_user):
    from referral.consultations.models import Consultation
    from referral.consultations.process import ConsultationState as C
    from referral.timeutil import utcnow

    now = utcnow()
    old = factories.consultation_in(C.ANSWERED, world.teacher, world.insofa, now=now - timedelta(days=182))
    withdrawn = factories.consultation_in(C.CANCELLED, world.teacher, now=now - timedelta(days=190))
    recent = factories.consultation_in(C.ANSWERED, world.teacher, world.insofa, now=now - timedelta(days=100))
    still_open = factories.consultation_in(C.ACCEPTED, world.teacher, world.insofa, now=now - timedelta(days=300))

    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0 and "2 consultations purged" in result.output, result.output
    db.session.expire_all()
    purged = {c.id for c in db.session.scalars(select(Consultation).where(Consultation.purged_at.is_not(None)))}
    assert purged == {old.id, withdrawn.id}
    gone = db.session.get(Consultation, old.id)
    assert gone.observations == gone.question == gone.recommendation_note == gone.contact_phone == ""
    # What the evaluation counts stays: state, dates, school, age, class, categories, urgency, recommendation.
    assert gone.state is C.ANSWERED and gone.recommendation and gone.answered_at and gone.categories and gone.child_age
    assert db.session.get(Consultation, recent.id).observations == factories.OBSERVATIONS
    assert db.session.get(Consultation, still_open.id).observations == factories.OBSERVATIONS
    assert len(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "consultation.purge")).all()) == 2
    assert "0 consultations purged" in runner.invoke(args=["retention", "run"]).output
    assert as_user(world.teacher).get(f"/consultations/{old.id}").status_code == 200


def test_every_run_ends_with_a_summary_also_when_nothing_is_due(app, world, runner):
    """Cron's log must show that the job ran and what it found, dry or real, due or not."""
    factories.referral_in(State.CLOSED, world.teacher, world.asd)  # closed today: not due
    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0
    assert dry.output.strip().splitlines()[-1] == (
        "Dry run, nothing changed: 0 closed referrals would be purged, 0 drafts would be deleted, "
        "0 consultations would be purged. Nothing was due."
    )
    real = runner.invoke(args=["retention", "run"])
    assert real.exit_code == 0 and real.output.strip().splitlines() == [
        "0 closed referrals purged, 0 drafts deleted, 0 consultations purged. Nothing was due."
    ]

    old = closed_case(world, 181)
    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.output.strip().splitlines() == [
        f"would purge: {old.number} (closed {old.closed_at:%Y-%m-%d})",
        "Dry run, nothing changed: 1 closed referrals would be purged, 0 drafts would be deleted, "
        "0 consultations would be purged.",
    ]
    db.session.expire_all()
    assert db.session.get(Referral, old.id).purged_at is None


def test_a_run_in_batches_purges_each_batch_whole_and_an_interrupted_run_is_completed_by_the_next(
    app, world, runner, monkeypatch
):
    """Batches of two: a run that dies in its second batch leaves the first batch purged and the rest
    untouched (never half a referral), and the next run purges the rest. What is set to "(gelöscht)"
    is stored as the column stores it (encrypted where it is): the ORM reads it back."""
    from referral import retention
    from referral.cases.models import SchoolAction
    from referral.cases.vocabulary import Urgency

    cases = [closed_case(world, 200 + i) for i in range(4)]
    acute = factories.referral_in(State.CLOSED, world.teacher, world.asd, urgency=Urgency.ACUTE)
    db.session.execute(
        text("UPDATE referral SET closed_at = :at WHERE id = :id"),
        {"at": utcnow() - timedelta(days=300), "id": acute.id},
    )
    action = db.session.scalars(select(SchoolAction).where(SchoolAction.referral_id == cases[3].id)).first()
    action.done, action.done_on, action.reason, action.detail = False, None, "Eltern nicht erreicht", "Herr X."
    db.session.commit()
    ids = sorted([c.id for c in cases] + [acute.id])
    versions = {i: db.session.get(Referral, i).version for i in ids}

    real_purge, calls = retention._purge_closed_batch, []

    def dies_in_second_batch(batch_ids, now):
        calls.append(list(batch_ids))
        real_purge(batch_ids, now)
        if len(calls) == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr(retention, "_purge_closed_batch", dies_in_second_batch)
    assert runner.invoke(args=["retention", "run", "--batch", "2"]).exit_code == 1
    db.session.rollback()  # what the dying process's connection does with its open transaction
    purged = {i for i in ids if db.session.get(Referral, i).purged_at is not None}
    assert calls[0] == ids[:2] and purged == set(ids[:2]), "the first batch committed, the second not at all"
    assert db.session.get(Referral, ids[2]).child_last_name == factories.CHILD_LAST
    monkeypatch.undo()

    result = runner.invoke(args=["retention", "run", "--batch", "2"])
    assert result.exit_code == 0 and "3 closed referrals purged" in result.output, result.output
    db.session.expire_all()
    for referral_id in ids:
        referral = db.session.get(Referral, referral_id)
        assert referral.purged_at and referral.child_first_name == "" and not referral.persons
        assert referral.version == versions[referral_id] + 1
    assert db.session.get(Referral, acute.id).phone_call_with == retention.PURGED, "the CHECK's call stays, nameless"
    assert db.session.get(Referral, cases[0].id).phone_call_with is None
    action = db.session.get(SchoolAction, action.id)
    assert (action.reason, action.detail) == (retention.PURGED, "")
    entries = db.session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "referral.purge")).all()
    assert sorted(entries) == sorted(str(i) for i in ids), "one entry per referral, none for the rolled-back batch"
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
