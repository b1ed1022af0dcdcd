"""Password reset by e-mail, change of password, server-side sessions, and what a login reveals."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from referral.extensions import db

from . import factories
from .conftest import csrf_token

NEW_PASSWORD = "Fuchs-Laterne-Mondsichel-47"


def ask_for_reset(client, email):
    return client.post("/password/reset", data={"email": email, "csrf_token": csrf_token(client, "/password/reset")})


def reset_link(mail) -> str:
    return re.search(r"https?://\S+", mail.body).group(0).replace("http://localhost", "")


def log_in(client, email, password):
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client, "/login")}
    )


def test_password_reset_by_mail_works_once(client, world, outbox):
    response = ask_for_reset(client, world.teacher.email)
    assert response.status_code in (200, 302)
    [mail] = outbox
    assert mail.subject == "Passwort zurücksetzen – Mitteilungen Schule-ASD" and "Guten Tag Tina Teacher" in mail.body
    assert "eine Stunde" in mail.body
    link = reset_link(mail)
    page = client.get(link).get_data(as_text=True)
    assert "Neues Passwort festlegen" in page

    weak = client.post(
        link,
        data={"password": "passwort1234", "password_confirm": "passwort1234", "csrf_token": csrf_token(client, link)},
    )
    assert weak.status_code == 200 and log_in(client, world.teacher.email, "passwort1234").status_code == 200
    done = client.post(
        link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": csrf_token(client, link)}
    )
    assert done.status_code == 302
    assert outbox[-1].subject.startswith("Ihr Passwort wurde zurückgesetzt"), "the owner is told"

    again = client.post(
        link,
        data={
            "password": "Noch-Ein-Anderes-Passwort-8",
            "password_confirm": "Noch-Ein-Anderes-Passwort-8",
            "csrf_token": csrf_token(client, "/password/reset"),
        },
    )
    assert log_in(client, world.teacher.email, "Noch-Ein-Anderes-Passwort-8").status_code == 200, "the link works once"
    assert again.status_code == 302 and "/password/reset" in again.location
    assert log_in(client, world.teacher.email, NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires_after_one_hour(client, world, outbox, monkeypatch):
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 3600 - 60)
    ask_for_reset(client, world.teacher.email)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    link = reset_link(outbox[0])
    client.post(
        link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": csrf_token(client, link)}
    )
    assert log_in(client, world.teacher.email, NEW_PASSWORD).status_code == 200
    assert log_in(client, world.teacher.email, factories.PASSWORD).status_code == 302


def test_a_reset_request_tells_nothing_about_accounts(client, world, outbox):
    known = ask_for_reset(client, world.teacher.email)
    unknown = ask_for_reset(client, "niemand@test.example")
    assert known.status_code == unknown.status_code

    def strip(response, address):
        return re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True)).replace(address, "ADDRESS")

    if known.status_code == 200:
        assert strip(known, world.teacher.email) == strip(unknown, "niemand@test.example")
    else:
        assert known.location == unknown.location
    assert [m.to for m in outbox] == [[world.teacher.email]]


def test_change_password(client, world, login, outbox):
    login(world.teacher)
    url = "/password/change"
    assert "Passwort ändern" in client.get(url).get_data(as_text=True)
    wrong = client.post(
        url,
        data={
            "password": "falsch",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, url),
        },
    )
    assert wrong.status_code == 200 and "is-invalid" in wrong.get_data(as_text=True)
    weak = client.post(
        url,
        data={
            "password": factories.PASSWORD,
            "new_password": "passwort1234",
            "new_password_confirm": "passwort1234",
            "csrf_token": csrf_token(client, url),
        },
    )
    assert weak.status_code == 200 and "is-invalid" in weak.get_data(as_text=True)
    done = client.post(
        url,
        data={
            "password": factories.PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, url),
        },
    )
    assert done.status_code == 302
    assert outbox[-1].subject.startswith("Ihr Passwort wurde geändert")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/school")})
    assert log_in(client, world.teacher.email, factories.PASSWORD).status_code == 200
    assert log_in(client, world.teacher.email, NEW_PASSWORD).status_code == 302


def test_logout_ends_the_session_on_the_server(app, client, world, login):
    login(world.teacher)
    cookie = client.get_cookie("session").value
    assert client.get("/referrals").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})
    thief = app.test_client()
    thief.set_cookie("session", cookie, domain="localhost")
    assert thief.get("/referrals").status_code == 302, "a copied cookie is worthless after logout"


def test_a_new_session_id_at_login(app, client, world):
    client.get("/login")
    planted = client.get_cookie("session").value
    log_in(client, world.teacher.email, factories.PASSWORD)
    assert client.get_cookie("session").value != planted
    attacker = app.test_client()
    attacker.set_cookie("session", planted, domain="localhost")
    assert attacker.get("/referrals").status_code == 302, "an id known before the login is worth nothing after it"


def test_the_cookie_holds_no_session_data(client, world, login):
    login(world.teacher)
    value = client.get_cookie("session").value
    assert "." not in value and len(value) >= 32 and world.teacher.fs_uniquifier not in value


def test_unknown_addresses_cost_as_much_as_known_ones(client, world, monkeypatch):
    """Timing: for an unknown address Flask-Security hashes the password anyway, so the response
    takes as long as a wrong password for a real account (see benchmarks/login_timing.py)."""
    from argon2 import low_level

    calls = []
    for name in ("hash_secret", "verify_secret"):
        real = getattr(low_level, name)
        monkeypatch.setattr(
            low_level, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k)
        )
    log_in(client, "niemand@test.example", "Irgendein-Passwort-1")
    unknown = list(calls)
    calls.clear()
    log_in(client, world.teacher.email, "Irgendein-Passwort-1")
    assert len(unknown) == 1 and len(calls) == 1, (unknown, calls)


def test_account_steps_are_limited_per_address(app, client, world, outbox):
    app.config["ACCOUNT_STEPS_PER_ADDRESS"] = "3 per minute"
    statuses = [ask_for_reset(client, f"x{i}@test.example").status_code for i in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:3]
    token = csrf_token(client, "/login")
    guesses = [client.post(f"/invitation/guess{i}", data={"csrf_token": token}).status_code for i in range(4)]
    assert guesses == [404, 404, 404, 429], "guessing invitation links is limited too"


@pytest.fixture
def two_factor(app, world):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True
    from .test_two_factor import set_up

    return set_up


def test_guessing_the_second_factor_locks_the_account(app, client, world, two_factor):
    from .test_two_factor import code_for, password_step

    key = two_factor(client, world.teacher)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})
    password_step(client, world.teacher)
    for _ in range(5):
        assert (
            client.post(
                "/tf-validate", data={"code": "000000", "csrf_token": csrf_token(client, "/tf-validate")}
            ).status_code
            == 200
        )
    locked = client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-validate")})
    assert locked.status_code == 429 and client.get("/referrals").status_code == 302
    db.session.expire_all()


def test_behind_a_trusted_proxy_the_limits_apply_to_the_client_address(database_url, tmp_path, world):
    from referral import create_app

    from .conftest import FreshContextClient

    def instance(proxies: str):
        app = create_app(
            overrides={
                "TESTING": True,
                "SESSION_FILE_DIR": str(tmp_path / proxies),
                "MAIL_BACKEND": "locmem",
                "LOGIN_ATTEMPTS_PER_ADDRESS": "2 per minute",
            },
            env={"DATABASE_URL": database_url, "SECRET_KEY": "test-" + "x" * 40, "TRUSTED_PROXIES": proxies},
        )
        app.test_client_class = FreshContextClient
        return app.test_client()

    def attempts(client, address):
        return [
            client.post(
                "/login",
                data={"email": f"x{i}@test.example", "password": "x", "csrf_token": csrf_token(client, "/login")},
                headers={"X-Forwarded-For": address},
            ).status_code
            for i in range(3)
        ]

    behind_proxy = instance("1")
    assert attempts(behind_proxy, "203.0.113.7") == [200, 200, 429]
    assert attempts(behind_proxy, "198.51.100.9")[0] == 200, "another client is not locked out by the first"
    direct = instance("0")
    assert attempts(direct, "203.0.113.8") == [200, 200, 429]
    assert attempts(direct, "198.51.100.10")[0] == 429, "without a trusted proxy the header is ignored"


@pytest.mark.parametrize("password", ["nora neumann", "noraneumann2026", "Neumann-Nora-2026", "nora.neumann@schule"])
def test_a_password_made_of_ones_own_name_or_address_is_refused(app, client, world, password):
    from referral.accounts.services import invitation_token, invite

    user = invite("nora.neumann@schule-a.example", "Nora Neumann")
    db.session.commit()
    link = f"/invitation/{invitation_token(user)}"
    response = client.post(
        link, data={"password": password, "password_confirm": password, "csrf_token": csrf_token(client, link)}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and ("zu leicht zu erraten" in html or "aus Ihrem Namen" in html)


def test_reset_mails_wait_in_the_outbox_and_development_prints_them_at_once(
    database_url, tmp_path, world, client, capfd
):
    from referral import create_app
    from referral.notifications.models import OutboxMail

    from .conftest import FreshContextClient

    # The request only queues the mail (the worker sends it): no SMTP in the request.
    client.post(
        "/password/reset", data={"email": world.teacher.email, "csrf_token": csrf_token(client, "/password/reset")}
    )
    queued = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == world.teacher.email)).one()
    assert queued.sent_at is None and "/password/reset/" in queued.body

    # Development without an SMTP server: after each request the outbox is printed to the terminal.
    dev = create_app(
        overrides={"SESSION_FILE_DIR": str(tmp_path / "dev"), "WTF_CSRF_ENABLED": False},
        env={"DATABASE_URL": database_url, "SECRET_KEY": "test-" + "x" * 40},
    )
    assert dev.config["MAIL_BACKEND"] == "console" and not dev.config.get("TESTING")
    dev.test_client_class = FreshContextClient
    dev.test_client().get("/login")
    printed = capfd.readouterr().out
    assert f"To: {world.teacher.email}" in printed and "/password/reset/" in printed
    db.session.expire_all()
    assert db.session.get(OutboxMail, queued.id).sent_at is not None
    # A request that writes: its mail is printed after its commit. Printed before it, on a connection of
    # its own, the mail would wait for SQLite's write lock, which the request itself holds (15 s, then 503).
    started = time.monotonic()
    response = dev.test_client().post("/password/reset", data={"email": world.teacher_a2.email})
    assert response.status_code < 400 and time.monotonic() - started < 5
    assert f"To: {world.teacher_a2.email}" in capfd.readouterr().out
    with dev.app_context():
        db.engine.dispose()  # its connections must not outlive the test (PostgreSQL empties the tables after it)


def test_make_run_loads_the_demo_data_with_mails_printed(tmp_path):
    """`make run`'s `flask demo load` on a fresh SQLite file, in development (mails printed, not sent):
    the printing must not wait for the write lock of the command's own transaction."""
    from flask_migrate import upgrade

    from referral import create_app

    dev = create_app(
        overrides={"SESSION_FILE_DIR": str(tmp_path / "sessions")},
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "SECRET_KEY": "test-" + "x" * 40},
    )
    assert dev.config["MAIL_BACKEND"] == "console" and not dev.config.get("TESTING")
    with dev.app_context():
        upgrade()
    started = time.monotonic()
    result = dev.test_cli_runner().invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "Demo data loaded" in result.output and time.monotonic() - started < 60
    with dev.app_context():
        db.engine.dispose()
