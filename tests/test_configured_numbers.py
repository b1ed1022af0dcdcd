"""Texts that quote a configured number read it from the configuration or the admin's settings (issue 12):
change the number, and every page, message and mail that names it says the new one."""

from __future__ import annotations

import io
from datetime import timedelta

from referral import create_app
from referral.extensions import db
from referral.kernel.settings import Setting
from referral.kernel.wording import counted, duration, lockout, megabytes

from . import factories
from .conftest import SECRET_KEY, csrf_token
from .test_account_lifecycle import reset_link
from .test_administration import invite


def test_german_wording_of_numbers():
    assert counted(1, "Arbeitstag", "Arbeitstagen") == "1 Arbeitstag"
    assert counted(3, "Arbeitstag", "Arbeitstagen") == "3 Arbeitstagen"
    assert megabytes(7 * 1024 * 1024) == "7 MB"
    assert duration(timedelta(hours=1)) == "eine Stunde"
    assert duration(timedelta(hours=72)) == "72 Stunden"
    assert duration(timedelta(minutes=1)) == "eine Minute"
    assert duration(timedelta(minutes=90)) == "90 Minuten"
    assert lockout("5 per 15 minutes") == timedelta(minutes=15)
    assert lockout("3/hour") == timedelta(hours=1)
    assert lockout("5 per 15 minutes; 20 per day") == timedelta(minutes=15)


def test_the_attachment_limit(app, world, as_user):
    app.config["MAX_ATTACHMENT_BYTES"] = 7 * 1024 * 1024
    teacher = as_user(world.teacher)
    assert "Datei (PDF, JPEG oder PNG, höchstens 7 MB)" in teacher.get("/referrals/new").text
    assert "10 MB" not in teacher.get("/referrals/new").text

    app.config["MAX_CONTENT_LENGTH"] = 2048
    too_large = teacher.post(
        "/referrals/new",
        data={"csrf_token": csrf_token(teacher, "/referrals/new"), "attachment": (io.BytesIO(b"0" * 10_000), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert too_large.status_code == 413
    assert "Anhänge dürfen höchstens 7 MB groß sein." in too_large.text


def test_the_login_lockout(app, client, world):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "3 per 20 minutes"
    for _ in range(3):
        client.post(
            "/login",
            data={"email": world.teacher.email, "password": "falsch", "csrf_token": csrf_token(client, "/login")},
        )
    locked = client.post(
        "/login",
        data={"email": world.teacher.email, "password": factories.PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert locked.status_code == 429
    assert "Die Anmeldung ist für 20 Minuten gesperrt." in locked.text


def test_the_invitation_link(app, world, as_user, outbox):
    app.config["INVITATION_VALID_HOURS"] = 48
    admin = as_user(world.admin)
    assert "(gültig 48 Stunden, nur einmal)" in admin.get("/admin/users/invite").text
    sent = invite(admin, world, email="neu48@schule-a.example")
    assert sent.status_code == 302
    assert "Der Link gilt 48 Stunden." in admin.get(sent.location).text
    [mail] = outbox
    assert "48 Stunden" in mail.body and "72 Stunden" not in mail.body  # not a bare "72": the token may hold it


def test_the_reset_link_and_the_password_length(app, client, world, outbox):
    app.config["SECURITY_RESET_PASSWORD_WITHIN"] = timedelta(minutes=30)
    app.config["SECURITY_PASSWORD_LENGTH_MIN"] = 14
    assert "einem Link, der 30 Minuten lang gilt." in client.get("/password/reset").text
    client.post(
        "/password/reset",
        data={"email": world.teacher.email, "csrf_token": csrf_token(client, "/password/reset")},
    )
    [mail] = outbox
    assert "Der Link gilt 30 Minuten und nur einmal." in mail.body
    link = reset_link(mail)
    page = client.get(link).text
    assert "Neues Passwort festlegen" in page and "Mindestens 14 Zeichen." in page, page[page.find("<main") :]
    weak = client.post(
        link,
        data={"password": "passwort1234", "password_confirm": "passwort1234", "csrf_token": csrf_token(client, link)},
    )
    assert "mindestens 14 Zeichen" in weak.text


def test_the_password_rules_follow_a_changed_length_in_a_running_process(app):
    """The rules are imported by several pages; Jinja caches an imported module, so a length read at import
    would stay at the first page's value (CI found this as an order-dependent failure)."""
    from flask import render_template_string

    quote = '{% from "accounts/_password_rules.html" import rules %}{{ rules() }}'
    with app.test_request_context():
        assert render_template_string(quote).startswith("Mindestens 12 Zeichen.")
        app.config["SECURITY_PASSWORD_LENGTH_MIN"] = 16
        assert render_template_string(quote).startswith("Mindestens 16 Zeichen.")


def test_the_reset_request_message_follows_the_configuration(database_url):
    other = create_app(
        overrides={"TESTING": True, "SECURITY_RESET_PASSWORD_WITHIN": timedelta(hours=2)},
        env={"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY},
    )
    message, _ = other.config["SECURITY_MSG_PASSWORD_RESET_REQUEST"]
    assert message.endswith("Der Link gilt 2 Stunden.")


def test_the_deadlines_as_the_admin_set_them(app, world, as_user):
    for key, value in {
        "consultation_accept_working_days": 3,
        "ack_acute_hours": 4,
        "ack_working_days": 3,
        "feedback_working_days": 12,
    }.items():
        db.session.add(Setting(key=key, value=value))
    db.session.commit()

    pool = as_user(world.insofa).get("/consultations/").text
    assert "Anfragen sollen innerhalb von 3 Arbeitstagen angenommen werden." in pool
    form = as_user(world.teacher).get("/consultations/new").text
    assert "normal – Annahme innerhalb von 3 Arbeitstagen" in form and "2 Arbeitstagen" not in form

    evaluation = as_user(world.coordinator).get("/coordination/evaluation").text
    assert "(akut: 4 Stunden, sonst 3 Arbeitstage; " in evaluation
    assert "Anteil mit Rückmeldung innerhalb von 12 Arbeitstagen nach Einreichung" in evaluation


def test_the_defaults_read_as_before(app, world, as_user):
    """Unchanged configuration, unchanged words."""
    assert "höchstens 10 MB" in as_user(world.teacher).get("/referrals/new").text
    assert "innerhalb von 2 Arbeitstagen" in as_user(world.insofa).get("/consultations/").text
    assert "(gültig 72 Stunden, nur einmal)" in as_user(world.admin).get("/admin/users/invite").text
    evaluation = as_user(world.coordinator).get("/coordination/evaluation").text
    assert "(akut: 2 Stunden, sonst 1 Arbeitstag; " in evaluation and "innerhalb von 10 Arbeitstagen" in evaluation
