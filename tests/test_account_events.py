"""Self-service account events are audited from Flask-Security's signals: password change and reset,
two-factor set-up, change and switch-off, and failed logins (user_failed_authn, not status codes).

Each leaves exactly one entry, with the names of what changed and never a secret or a typed value.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from referral.audit import chain
from referral.audit.models import AuditEntry
from referral.extensions import db

from . import factories
from .conftest import csrf_token
from .test_account_lifecycle import NEW_PASSWORD, ask_for_reset, log_in, reset_link
from .test_two_factor import code_for, password_step, set_up


def entries(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def raw_log() -> str:
    db.session.expire_all()
    return str(db.session.execute(text("SELECT * FROM audit_entry")).all())


def test_a_password_change_is_recorded_once_without_the_password(client, world, login, outbox):
    login(world.teacher)
    url = "/password/change"
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
    [changed] = entries("user.change_password")
    assert (changed.actor_id, changed.object_type, changed.object_id, changed.fields) == (
        world.teacher.id,
        "user_account",
        str(world.teacher.id),
        ["password"],
    )
    assert changed.actor_role == "teacher" and changed.request_id
    assert NEW_PASSWORD not in raw_log() and factories.PASSWORD not in raw_log()
    assert entries("user.reset_password") == []


def test_a_refused_password_change_records_nothing(client, world, login):
    login(world.teacher)
    url = "/password/change"
    client.post(
        url,
        data={
            "password": "falsch",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, url),
        },
    )
    assert entries("user.change_password") == []


def test_a_password_change_and_its_entry_are_stored_together_or_not_at_all(
    app, client, world, login, outbox, monkeypatch
):
    """The receiver does not commit, nor does the mail of the notice: if the entry cannot be written,
    the old password stays."""
    login(world.teacher)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    real = chain.append

    def broken(entry):
        if entry.action == "user.change_password":
            raise RuntimeError("log disk full")
        return real(entry)

    monkeypatch.setattr(chain, "append", broken)
    url = "/password/change"
    response = client.post(
        url,
        data={
            "password": factories.PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(client, url),
        },
    )
    assert response.status_code == 500
    monkeypatch.setattr(chain, "append", real)
    assert log_in(app.test_client(), world.teacher.email, factories.PASSWORD).status_code == 302, "old password kept"
    assert len(outbox) == 0, "no notice about a change that did not happen"


def test_a_reset_through_the_mailed_link_is_recorded_once(client, world, outbox):
    ask_for_reset(client, world.teacher.email)
    link = reset_link(outbox[0])
    token = link.rsplit("/", 1)[1]
    done = client.post(
        link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": csrf_token(client, link)}
    )
    assert done.status_code == 302
    [reset] = entries("user.reset_password")
    assert (reset.actor_id, reset.object_id, reset.fields) == (world.teacher.id, str(world.teacher.id), ["password"])
    assert NEW_PASSWORD not in raw_log() and token not in raw_log()
    assert entries("user.change_password") == []
    assert outbox[-1].subject.startswith("Ihr Passwort wurde zurückgesetzt"), "the notice still goes out"


@pytest.fixture
def required(app):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True


def test_setting_up_two_factor_at_the_first_login_is_recorded_once(client, world, required):
    key = set_up(client, world.teacher)
    [setup] = entries("user.setup_two_factor")
    assert (setup.actor_id, setup.object_id, setup.fields) == (
        world.teacher.id,
        str(world.teacher.id),
        ["tf_primary_method", "tf_totp_secret"],
    )
    assert key.replace("-", "") not in raw_log()
    db.session.expire_all()
    assert world.teacher.tf_totp_secret not in raw_log()

    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})
    password_step(client, world.teacher)
    assert (
        client.post(
            "/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-validate")}
        ).status_code
        == 302
    )
    assert len(entries("user.setup_two_factor")) == 1, "a login with the code is no new set-up"
    assert len(entries("login.success")) == 2


def _set_up_while_signed_in(client) -> str:
    page = client.post("/tf-setup", data={"setup": "authenticator", "csrf_token": csrf_token(client, "/tf-setup")})
    key = re.search(r"<div>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3,})</div>", page.get_data(as_text=True)).group(1)
    done = client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-setup")})
    assert done.status_code == 302
    return key


def test_changing_and_switching_off_two_factor_are_recorded(client, world, login):
    login(world.teacher)
    first = _set_up_while_signed_in(client)
    second = _set_up_while_signed_in(client)  # a new phone: a new key
    changes = entries("user.setup_two_factor")
    assert [c.fields for c in changes] == [["tf_primary_method", "tf_totp_secret"], ["tf_totp_secret"]]
    assert all(c.actor_id == world.teacher.id for c in changes)
    off = client.post("/tf-setup", data={"setup": "disable", "csrf_token": csrf_token(client, "/tf-setup")})
    assert off.status_code == 302
    db.session.expire_all()
    assert world.teacher.tf_primary_method is None
    [disabled] = entries("user.disable_two_factor")
    assert (disabled.actor_id, disabled.object_id, disabled.fields) == (
        world.teacher.id,
        str(world.teacher.id),
        ["tf_primary_method", "tf_totp_secret"],
    )
    assert first.replace("-", "") not in raw_log() and second.replace("-", "") not in raw_log()


def test_failed_logins_are_recorded_from_flask_securitys_signal(app, client, world, required):
    key = set_up(client, world.teacher)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})
    typed = "Falsches-Passwort-123"
    assert log_in(client, world.teacher.email, typed).status_code == 200
    password_step(client, world.teacher)
    assert (
        client.post(
            "/tf-validate", data={"code": "135791", "csrf_token": csrf_token(client, "/tf-validate")}
        ).status_code
        == 200
    )
    client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-validate")})
    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})
    log_in(client, "niemand@test.example", typed)
    failures = entries("login.failure")
    assert [(f.object_id, f.fields, f.actor_id) for f in failures] == [
        (str(world.teacher.id), ["password"], None),
        (str(world.teacher.id), ["code"], None),
        ("unbekannt", [], None),
    ]
    log = raw_log()
    assert typed not in log and "niemand" not in log
    assert "135791" not in str([(f.object_id, f.fields, f.actor_scope) for f in failures]), (
        "a typed code is no field name"
    )


def test_the_right_password_for_a_deactivated_account_is_a_failed_login(client, world):
    world.teacher.active = False
    db.session.commit()
    assert log_in(client, world.teacher.email, factories.PASSWORD).status_code == 200
    [failure] = entries("login.failure")
    assert (failure.object_id, failure.fields) == (str(world.teacher.id), ["active"])


def test_a_form_without_an_address_is_no_login_attempt(client, world):
    """Not from status codes: a form sent empty (shown again with 200) tried no credentials."""
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 200
    assert entries("login.failure") == []
