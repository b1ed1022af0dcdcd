"""Reminders of overdue deadlines, consultation notifications, and each user's e-mail choices."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import template_rendered
from sqlalchemy import func, select

from referral.cases import services as cases
from referral.cases.process import State
from referral.consultations.process import ConsultationState as C
from referral.extensions import db
from referral.notifications import reminders
from referral.notifications.models import EmailChoice, Notification, OutboxMail, Reminder
from referral.timeutil import utcnow

from . import factories
from .conftest import csrf_token


def mails(subject_part: str = "") -> list[OutboxMail]:
    db.session.expire_all()
    return db.session.scalars(
        select(OutboxMail).where(OutboxMail.subject.contains(subject_part)).order_by(OutboxMail.id)
    ).all()


def reminded_users() -> dict[int, int]:
    rows = db.session.execute(
        select(Notification.user_id, func.count())
        .where(Notification.text.contains("überfällig"))
        .group_by(Notification.user_id)
    ).all()
    return dict(rows)


def overdue_world(world):
    """In district WE (factories date them 5 Nov 2026): a referral overdue for acknowledgement and
    feedback, one overdue for feedback, a closed one (nothing due); a consultation not accepted in time."""
    late_ack = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    late_feedback = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    consultation = factories.consultation_in(C.REQUESTED, world.teacher)
    done = factories.referral_in(State.CLOSED, world.teacher, world.asd, lead=world.asd_lead)
    return late_ack, late_feedback, consultation, done


def test_overdue_items_are_reminded_to_the_district_lead_and_the_pool_once_a_day(world, runner):
    late_ack, late_feedback, consultation, done = overdue_world(world)
    before = len(mails())
    result = runner.invoke(args=["reminders", "send"])
    assert result.exit_code == 0 and "4 overdue item(s) reminded." in result.output, result.output

    reminder_mails = mails("Erinnerung")
    assert len(mails()) == before + len(reminder_mails)
    by_recipient: dict[str, set[str]] = {}
    for mail in reminder_mails:
        by_recipient.setdefault(mail.recipient, set()).add(mail.subject)
    # Submitted on 5 Nov: its acknowledgement is overdue, and its feedback deadline (10 working days) too.
    assert by_recipient == {
        "asd_lead@test.example": {
            f"Erinnerung {late_ack.number}: Eingangsbestätigung überfällig",
            f"Erinnerung {late_ack.number}: Rückmeldung an die Schule überfällig",
            f"Erinnerung {late_feedback.number}: Rückmeldung an die Schule überfällig",
        },
        "insofa@test.example": {f"Erinnerung {consultation.number}: Annahme der Fachberatung überfällig"},
        "insofa2@test.example": {f"Erinnerung {consultation.number}: Annahme der Fachberatung überfällig"},
    }
    assert set(reminded_users()) == {world.asd_lead.id, world.insofa.id, world.insofa2.id}
    assert done.number not in " ".join(m.subject for m in reminder_mails)

    # The same day again: nothing. The next day: again, once.
    assert "0 overdue item(s) reminded." in runner.invoke(args=["reminders", "send"]).output
    assert len(mails("Erinnerung")) == len(reminder_mails)
    assert reminders.send(now=utcnow() + timedelta(days=1)) == 4
    assert len(mails("Erinnerung")) == 2 * len(reminder_mails)


def test_two_runs_at_once_remind_each_item_once(app, world):
    overdue_world(world)
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                results.append(reminders.send())
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(results) == 4
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == 4
    assert len(mails("Erinnerung")) == 5  # the lead three times, the two InsoFas once each


def test_new_consultations_go_to_the_pool_and_updates_to_the_author(world):
    consultation = factories.consultation_in(C.ANSWERED, world.teacher, world.insofa)
    subjects = [(m.recipient, m.subject) for m in mails(consultation.number)]
    assert subjects == [
        ("insofa2@test.example", f"{consultation.number}: Neue Anfrage zur Fachberatung"),
        ("insofa@test.example", f"{consultation.number}: Neue Anfrage zur Fachberatung"),
        ("teacher@test.example", f"{consultation.number}: Ihre Anfrage wurde angenommen"),
        ("teacher@test.example", f"{consultation.number}: Empfehlung zu Ihrer Fachberatung"),
    ]
    for mail in mails(consultation.number):
        assert factories.OBSERVATIONS[:15] not in mail.body and "Reicht das" not in mail.body
        assert "Bitte ASD informieren" not in mail.body and "0123 777" not in mail.body
        assert f"/consultations/{consultation.id}" in mail.body


def test_every_e_mail_template_is_rendered_without_child_data(app, world):
    """Drive every event that sends mail and check each rendered e-mail template (a new one must be covered)."""
    from pathlib import Path

    rendered: list[tuple[str, dict]] = []

    def remember(sender, template, context, **extra):
        if template.name.startswith("email/"):
            rendered.append((template.name, context))

    world.districts["we"].inbox_email = "asd-we@stadt.example"
    db.session.commit()
    template_rendered.connect(remember, app)
    try:
        referral = factories.referral_in(State.CLOSED, world.teacher, world.asd, lead=world.asd_lead)
        cases.add_addendum(
            factories.referral_in(State.SUBMITTED, world.teacher, world.asd), world.teacher, "Nachtrag-9917"
        )
        moved = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
        cases.transfer(moved, world.asd, world.districts["hm"], "Wohnort-4471")
        consultation = factories.consultation_in(C.ANSWERED, world.teacher, world.insofa)
        factories.consultation_in(C.REQUESTED, world.teacher)
        db.session.commit()
        reminders.send()
        from referral.accounts.services import invite, send_invitation

        invited = invite("neu@test.example", "Nora Neu")
        db.session.commit()
        with app.test_request_context():
            send_invitation(invited)  # about an account, never a case
        from referral.accounts.operations import Actor
        from referral.signon.identities import link_by_admin
        from referral.signon.settings import Provider

        with app.test_request_context():  # the notice of a link to an identity provider: an account again
            city = Provider("stadt", "https://login.stadt.example", "rp", "geheim", "Stadt", frozenset(), None)
            link_by_admin(Actor.operator(), city, world.asd, "kennung-1")
    finally:
        template_rendered.disconnect(remember, app)

    templates = {f"email/{p.name}" for p in (Path(app.template_folder) / "email").glob("*.txt")}
    assert templates == {name for name, _ in rendered}, "an e-mail template without a test of its content"
    secrets = [
        factories.CHILD_FIRST,
        factories.CHILD_LAST,
        referral.child_address,
        referral.observation[:20],
        referral.child_birth_date.strftime("%d.%m.%Y"),
        "Nachtrag-9917",
        "Wohnort-4471",
        consultation.observations[:20],
        consultation.question[:15],
        consultation.recommendation_note[:15],
        consultation.contact_phone,
    ]
    for mail in mails():
        for secret in secrets:
            assert secret not in mail.body and secret not in mail.subject, (mail.subject, secret)


def test_e_mail_choices_are_kept_except_for_mandatory_kinds(world, as_user):
    teacher = as_user(world.teacher)
    page = teacher.get("/notifications/email").text
    assert "Rückmeldung des ASD" in page and "Neue Mitteilung im Eingang" not in page
    teacher.post(
        "/notifications/email",
        data={
            "wanted": ["acknowledged", "question", "transfer", "consultation_update"],
            "csrf_token": csrf_token(teacher, "/notifications/email"),
        },
    )
    assert db.session.scalars(select(EmailChoice.kind).where(EmailChoice.user_id == world.teacher.id)).all() == [
        "feedback"
    ]

    # An ASD worker cannot switch off new referrals (mandatory), only the school's replies.
    asd = as_user(world.asd)
    page = asd.get("/notifications/email").text
    assert "Immer per E-Mail" in page and 'value="new_referral"' not in page
    asd.post("/notifications/email", data={"wanted": [], "csrf_token": csrf_token(asd, "/notifications/email")})
    # A forged choice of a mandatory kind is refused like any other unknown choice.
    forged = asd.post(
        "/notifications/email", data={"wanted": ["new_referral"], "csrf_token": csrf_token(asd, "/notifications/email")}
    )
    assert forged.status_code == 200 and "Bitte eine der angebotenen Möglichkeiten wählen" in forged.text
    db.session.add(EmailChoice(user_id=world.asd.id, kind="new_referral"))  # even if stored somehow
    db.session.commit()

    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    by_subject: dict[str, set[str]] = {}
    for mail in mails(referral.number):
        by_subject.setdefault(mail.subject.split(": ", 1)[1], set()).add(mail.recipient)
    assert "asd@test.example" in by_subject["Neue Mitteilung im Eingang – dringend"], "mandatory"
    assert "teacher@test.example" not in by_subject["Rückmeldung des ASD"], "switched off"
    assert "school_lead@test.example" in by_subject["Rückmeldung des ASD"]
    assert "teacher@test.example" in by_subject["Eingang vom ASD bestätigt"]
    # In the app, everything stays.
    texts = db.session.scalars(select(Notification.text).where(Notification.user_id == world.teacher.id)).all()
    assert any("Rückmeldung des ASD" in t for t in texts)
    cases.add_addendum(referral, world.teacher, "Noch etwas")
    db.session.commit()
    assert not [m for m in mails("Nachtrag") if m.recipient == "asd@test.example"], "school replies switched off"


def test_coordinator_has_no_e_mail_kinds(world, as_user):
    page = as_user(world.coordinator).get("/notifications/email")
    assert page.status_code == 200 and "Für Ihre Rolle gibt es keine E-Mail-Benachrichtigungen." in page.text
