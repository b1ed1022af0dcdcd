"""Notifications: who hears of what, no child data in any e-mail, and an outbox that never loses one."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from referral.cases.process import State
from referral.extensions import db
from referral.notifications.delivery import deliver
from referral.notifications.models import Notification, OutboxMail
from referral.timeutil import utcnow

from . import factories
from .conftest import csrf_token


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app):
    """A real SMTP server on a loopback port, which the test can stop and start again."""
    port = free_port()
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=5)
    from referral.extensions import mail

    mail.init_app(app)  # Flask-Mailman reads its settings once
    inbox = Inbox()

    class Server:
        controller = None

        def start(self):
            self.controller = Controller(inbox, hostname="127.0.0.1", port=port)
            self.controller.start()

        def stop(self):
            if self.controller:
                self.controller.stop()
                self.controller = None

    server = Server()
    server.inbox = inbox
    yield server
    server.stop()


def outbox() -> list[OutboxMail]:
    db.session.expire_all()
    return db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()


def test_a_submission_notifies_the_district_and_the_school_lead(world, as_user):
    world.districts["we"].inbox_email = "asd-we@stadt.example"
    db.session.commit()
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    recipients = {m.recipient for m in outbox()}
    assert {
        "asd@test.example",
        "asd2@test.example",
        "asd_lead@test.example",
        "asd-we@stadt.example",
        "school_lead@test.example",
    } == recipients
    users = set(db.session.scalars(select(Notification.user_id)).all())
    assert users == {world.asd.id, world.asd2.id, world.asd_lead.id, world.school_lead.id}
    assert "asd_hm@test.example" not in recipients and "teacher@test.example" not in recipients, (
        "not the author herself"
    )
    page = as_user(world.asd).get("/inbox").get_data(as_text=True)
    assert 'Benachrichtigungen <span class="badge text-bg-light">1' in page
    notification = db.session.scalar(select(Notification).where(Notification.user_id == world.asd.id))
    opened = as_user(world.asd).get(f"/notifications/{notification.id}")
    assert opened.status_code == 302 and opened.location.endswith(f"/referrals/{referral.id}")
    db.session.expire_all()
    assert db.session.get(Notification, notification.id).read_at is not None
    assert as_user(world.asd2).get(f"/notifications/{notification.id}").status_code == 404, "only one's own"


def test_acknowledgement_question_and_feedback_go_to_the_school_answers_to_the_assignee(world, as_user):
    referral = factories.referral_in(State.INFO_REQUESTED, world.teacher, world.asd)
    by_subject = {}
    for mail in outbox():
        by_subject.setdefault(mail.subject.split(": ", 1)[1], set()).add(mail.recipient)
    assert by_subject["Eingang vom ASD bestätigt"] == {"teacher@test.example", "school_lead@test.example"}
    assert by_subject["Rückfrage des ASD"] == {"teacher@test.example", "school_lead@test.example"}
    teacher = as_user(world.teacher)
    teacher.post(
        f"/referrals/{referral.id}/answer",
        data={"answer-body": "Antwort", "csrf_token": csrf_token(teacher, f"/referrals/{referral.id}")},
    )
    answers = [m.recipient for m in outbox() if "Antwort der Schule" in m.subject]
    assert answers == ["asd@test.example"]


def test_no_child_data_in_any_e_mail(world):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    secrets = [
        factories.CHILD_FIRST,
        factories.CHILD_LAST,
        referral.child_address,
        referral.observation[:20],
        referral.child_birth_date.strftime("%d.%m.%Y"),
        referral.child_birth_date.isoformat(),
    ]
    secrets += [p.last_name for p in referral.persons if p.last_name] + [m.body[:20] for m in referral.messages]
    mails = outbox()
    kinds = {m.subject.split(": ", 1)[1] for m in mails}
    assert {"Neue Mitteilung im Eingang – dringend", "Eingang vom ASD bestätigt", "Rückmeldung des ASD"} <= kinds
    for mail in mails:
        for secret in filter(None, secrets):
            assert secret not in mail.body and secret not in mail.subject, (mail.subject, secret)
        assert (
            referral.number in mail.subject
            and referral.school.name in mail.body
            and f"/referrals/{referral.id}" in mail.body
        )
    for text in db.session.scalars(select(Notification.text)):
        assert factories.CHILD_LAST not in text and factories.CHILD_FIRST not in text


def test_nothing_is_lost_while_the_smtp_server_is_down_and_each_mail_goes_out_once(world, smtp, runner):
    factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    waiting = len(outbox())
    assert waiting >= 5
    sent, failed = deliver()
    assert (sent, failed) == (0, waiting) and all(
        m.sent_at is None and m.attempts == 1 and m.last_error for m in outbox()
    )
    assert deliver() == (0, 0), "not due again before its backoff"

    smtp.start()
    db.session.execute(update(OutboxMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    result = runner.invoke(args=["notifications", "deliver"])
    assert f"{waiting} sent, 0 failed" in result.output
    assert len(smtp.inbox.messages) == waiting
    assert sorted(r for rcpts, _ in smtp.inbox.messages for r in rcpts) == sorted(m.recipient for m in outbox())
    assert "Diese E-Mail wurde automatisch versandt" in smtp.inbox.messages[0][1]
    assert deliver() == (0, 0) and len(smtp.inbox.messages) == waiting, "never twice"


def test_two_workers_at_once_send_each_mail_exactly_once(app, world, smtp):
    smtp.start()
    for _ in range(4):
        factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    total = len(outbox())
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                results.append(deliver())
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(sent for sent, _ in results) == total == len(smtp.inbox.messages)
    assert db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None))) == 0
