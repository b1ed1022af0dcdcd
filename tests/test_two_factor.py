"""Two-factor authentication with an authenticator app (TOTP) and recovery codes."""

import re

import pytest
from passlib.totp import TOTP

from referral import create_app

from . import factories
from .conftest import csrf_token

STRONG = "k" * 48


def test_required_in_production_and_switchable_for_a_demo():
    production = {
        "REFERRAL_ENV": "production",
        "SECRET_KEY": STRONG,
        "DATABASE_URL": "postgresql://db/x",
        "SERVER_NAME": "referral.example",
        "REFERRAL_DATA_KEYS": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
    }
    assert create_app(env=production).config["SECURITY_TWO_FACTOR_REQUIRED"] is True
    assert create_app(env={**production, "REQUIRE_2FA": "0"}).config["SECURITY_TWO_FACTOR_REQUIRED"] is False
    assert create_app(env={}).config["SECURITY_TWO_FACTOR_REQUIRED"] is False  # make run: click through


@pytest.fixture
def required(app):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True


def password_step(client, user):
    return client.post(
        "/login", data={"email": user.email, "password": factories.PASSWORD, "csrf_token": csrf_token(client, "/login")}
    )


def code_for(key: str) -> str:
    return TOTP(key=key.replace("-", ""), format="base32").generate().token


def set_up(client, user) -> str:
    """The first login: password, then the authenticator set-up; returns the shared key."""
    response = password_step(client, user)
    assert response.status_code == 302 and "/tf-setup" in response.location
    page = client.post("/tf-setup", data={"setup": "authenticator", "csrf_token": csrf_token(client, "/tf-setup")})
    key = re.search(r"<div>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3,})</div>", page.get_data(as_text=True)).group(1)
    done = client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-setup")})
    assert done.status_code == 302 and done.location == "/"
    return key


def test_first_login_sets_up_the_authenticator_before_anything_else(client, world, required):
    response = password_step(client, world.teacher)
    assert "/tf-setup" in response.location
    assert client.get("/referrals").status_code == 302, "nothing is reachable before the second factor"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/login")})


def test_later_logins_need_the_code(client, world, required):
    key = set_up(client, world.teacher)
    assert client.get("/referrals").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/referrals")})

    response = password_step(client, world.teacher)
    assert "/tf-validate" in response.location
    wrong = client.post("/tf-validate", data={"code": "000000", "csrf_token": csrf_token(client, "/tf-validate")})
    assert wrong.status_code == 200 and client.get("/referrals").status_code == 302
    right = client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-validate")})
    assert right.status_code == 302 and client.get("/referrals").status_code == 200


def test_the_two_factor_pages_speak_german_in_the_app_layout(client, world, required):
    password_step(client, world.teacher)
    html = client.get("/tf-setup").get_data(as_text=True)
    assert 'lang="de"' in html and "Zum Inhalt springen" in html
    assert "Zwei-Faktor" in html and "<style>" not in html
