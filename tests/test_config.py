"""Production mode refuses to start without real secrets; development needs nothing by hand."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from referral import create_app
from referral.config import ConfigError

STRONG = "k" * 48
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DATABASE_URL": "postgresql://db/referral"}, "SECRET_KEY"),
        ({"DATABASE_URL": "postgresql://db/referral", "SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"DATABASE_URL": "postgresql://db/referral", "SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG}, "DATABASE_URL"),
    ],
)
def test_production_refuses_to_start_without_secret_or_database(env, complaint):
    with pytest.raises(ConfigError, match=complaint) as refused:
        create_app(env={"REFERRAL_ENV": "production", **env})
    assert "Refusing to start in production mode" in str(refused.value)


def test_production_starts_with_both_and_uses_secure_cookies():
    app = create_app(
        env={
            "REFERRAL_ENV": "production",
            "SECRET_KEY": STRONG,
            "DATABASE_URL": "postgresql://db/referral",
            "SERVER_NAME": "referral.example",
            "REFERRAL_DATA_KEYS": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REFERRAL_PRODUCTION"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/referral"


def test_development_needs_nothing_by_hand(tmp_path, monkeypatch):
    app = create_app(env={})
    assert (
        app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
        and "instance" in app.config["SQLALCHEMY_DATABASE_URI"]
    )
    assert len(app.config["SECRET_KEY"]) >= 32 and not app.config["SESSION_COOKIE_SECURE"]


def test_the_refusal_reaches_the_operator_on_the_command_line():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL"}}
    env.update(REFERRAL_ENV="production", FLASK_APP="wsgi")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "routes"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr and "DATABASE_URL must point" in result.stderr


def test_demo_data_is_refused_in_production(app, runner):
    app.config["REFERRAL_PRODUCTION"] = True
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code != 0 and "never loaded in production" in result.output
