"""Accounts: password policy and brute-force protection of the login."""

import uuid

import pytest
import redis

from referral import create_app

from . import factories
from .conftest import FreshContextClient, csrf_token


def attempt(client, email, password):
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client, "/login")}
    )


def test_five_failures_lock_the_account_even_for_the_right_password(client, world):
    for _ in range(5):
        assert attempt(client, world.teacher.email, "falsches-passwort").status_code == 200
    locked = attempt(client, world.teacher.email, factories.PASSWORD)
    assert locked.status_code == 429 and "gesperrt" in locked.get_data(as_text=True)
    other = attempt(client, world.asd.email, factories.PASSWORD)
    assert other.status_code == 302, "another account is not affected"


def test_a_lock_tells_nothing_about_whether_the_account_exists(client, world):
    outcomes = {}
    for email in (world.teacher.email, "niemand@test.example"):
        outcomes[email] = [attempt(client, email, "falsches-passwort").status_code for _ in range(6)]
    assert outcomes[world.teacher.email] == outcomes["niemand@test.example"] == [200] * 5 + [429]


def test_successful_logins_do_not_count_as_failures(client, world, login):
    for _ in range(7):
        login(world.teacher)
    assert attempt(client, world.teacher.email, "falsch").status_code in (200, 302)


def test_too_many_attempts_from_one_address(app, client, world):
    app.config["LOGIN_ATTEMPTS_PER_ADDRESS"] = "3 per minute"
    statuses = [attempt(client, f"user{i}@test.example", "x").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_lock_holds_across_app_instances_with_redis(database_url, world):
    """Two instances behind a load balancer share the counters through REDIS_URL."""
    url = "redis://127.0.0.1:6379/15"
    redis.Redis.from_url(url).ping()  # Redis is part of the production set-up; missing means failing
    prefix = uuid.uuid4().hex
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "test-" + "x" * 40, "REDIS_URL": url}
    instances = []
    for _ in range(2):
        instance = create_app(overrides={"TESTING": True, "RATELIMIT_KEY_PREFIX": prefix}, env=env)
        instance.test_client_class = FreshContextClient
        instances.append(instance.test_client())
    for i in range(5):
        assert attempt(instances[i % 2], world.teacher.email, "falsch").status_code == 200
    assert attempt(instances[1], world.teacher.email, factories.PASSWORD).status_code == 429
    assert attempt(instances[0], world.teacher.email, factories.PASSWORD).status_code == 429


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("kurz-1", False),  # too short
        ("passwort1234", False),  # common
        ("qwertzuiopasdf", False),  # keyboard walk
        ("hallohallohallo", False),  # a repeated word
        ("Fuchs-Laterne-Mondsichel-47", True),  # a long passphrase
    ],
)
def test_password_policy(runner, world, password, accepted):
    result = runner.invoke(
        args=[
            "users",
            "create",
            f"neu-{uuid.uuid4().hex[:6]}@test.example",
            "--name",
            "Neu",
            "--role",
            "admin",
            "--password",
            password,
        ]
    )
    assert (result.exit_code == 0) is accepted, result.output
    if not accepted:
        assert "Passwort" in result.output and "This is" not in result.output, "a German reason"
