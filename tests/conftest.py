"""Test set-up: one migrated database per run (SQLite, or PostgreSQL via TEST_DATABASE_URL),
emptied after each test. Tests commit for real, so that concurrency is tested for real."""
from __future__ import annotations

import contextvars
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from flask.testing import FlaskClient

from referral import create_app
from referral.extensions import db

from . import factories


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url or f"sqlite:///{tmp_root / 'test.db'}"


def _reset_postgres(url: str) -> None:
    # A missing or unreachable PostgreSQL must fail the run, never skip it.
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # Another run on the same database fails this one quickly instead of deadlocking it.
        connection.execute(text("SET lock_timeout = '30s'"))
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    if url.startswith("postgresql"):
        _reset_postgres(url)
    app = create_app(env={"DATABASE_URL": url, "SECRET_KEY": "test-" + "x" * 40})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


class FreshContextClient(FlaskClient):
    """Each request runs in its own context, as in production: its own `g`, its own database session.

    Without this, requests would share the test's app context, and with it the logged-in user
    cached by Flask-Login and the objects in the session.
    """

    def open(self, *args, **kwargs):
        # Buffered: a streamed response (CSV exports) is read while its context still exists.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app(
        overrides={"TESTING": True, "UPLOAD_FOLDER": str(tmp_path / "uploads"), "SERVER_NAME": "localhost",
                   "SESSION_FILE_DIR": str(tmp_path / "sessions"), "MAIL_BACKEND": "locmem"},
        env={"DATABASE_URL": database_url, "SECRET_KEY": "test-" + "x" * 40},
    )
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    """Empty every table; the audit log's append-only guard is lifted for it and put back."""
    from referral.audit.chain import GENESIS, set_guard

    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name != "audit_head"]
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        set_guard(connection, False)
        if connection.dialect.name == "postgresql":
            connection.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())
        connection.execute(text("UPDATE audit_head SET seq = 0, last_hash = :genesis"), {"genesis": GENESIS})
        set_guard(connection, True)


class SentMail:
    """The e-mails sent during the test: the outbox delivered (as the worker would) before each look,
    into Flask-Mailman's in-memory backend."""

    def __init__(self, app):
        self.app = app
        app.extensions["mailman"].outbox = []

    def _sent(self) -> list:
        from referral.notifications.delivery import deliver

        deliver()
        return self.app.extensions["mailman"].outbox

    def __iter__(self):
        return iter(self._sent())

    def __len__(self):
        return len(self._sent())

    def __getitem__(self, index):
        return self._sent()[index]

    def __eq__(self, other):
        return list(self._sent()) == other


@pytest.fixture
def outbox(app) -> SentMail:
    return SentMail(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app):
    """Two districts with schools, one user per role and scope, committed."""
    return factories.build_world()


def csrf_token(client, url: str) -> str:
    """The CSRF token a real browser would send, read from the form on `url`."""
    import re

    page = client.get(url, follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    return match.group(1) if match else ""


@pytest.fixture
def login(client):
    def log_in(user, password=factories.PASSWORD):
        client.post("/logout", data={"csrf_token": csrf_token(client, "/login")})
        response = client.post("/login", data={"email": user.email, "password": password,
                                               "csrf_token": csrf_token(client, "/login")})
        assert response.status_code == 302, "login failed"
        return client

    return log_in


@pytest.fixture
def as_user(app):
    """A test client already signed in as `user` (session set directly, to keep large matrices fast)."""

    def client_for(user):
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = user.fs_uniquifier
            session["_fresh"] = True
        return client

    return client_for
