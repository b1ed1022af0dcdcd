"""Test set-up: one migrated database per test process (SQLite, or PostgreSQL via TEST_DATABASE_URL)
and one app per test process; after each test the tables are emptied and the app's state is reset.
Tests commit for real, so that concurrency is tested for real.

Under pytest-xdist (`make test` runs `pytest -n auto`) every worker has a database of its own: an
SQLite file in its temporary directory, or the PostgreSQL database TEST_DATABASE_URL names with
`_gw0`, `_gw1`, … appended, created at the start and dropped at the end of the worker's run.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import referral as _referral
from referral import create_app
from referral.extensions import db

from . import factories
from .servers import SECRET_KEY  # shared with the servers that the browser and race tests run

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", … under xdist; "" otherwise
# The database the run was given; a worker's own database is created through it.
GIVEN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _worker_url(url: str) -> str:
    """The worker's own database: the given one's name with the worker's id appended."""
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(hide_password=False)


def pytest_configure(config):
    # Whatever reads TEST_DATABASE_URL in a worker (a test starting a server process, say) gets the
    # worker's own database, never another worker's.
    if WORKER and GIVEN_DATABASE_URL.startswith("postgresql"):
        os.environ["TEST_DATABASE_URL"] = _worker_url(GIVEN_DATABASE_URL)


def _admin(url: str, *statements: str) -> None:
    # A missing or unreachable PostgreSQL must fail the run, never skip it.
    engine = create_engine(_sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # Another run on the same database fails this one quickly instead of deadlocking it.
            connection.execute(text("SET lock_timeout = '30s'"))
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="session")
def _scratch(tmp_path_factory):
    """This test process's directory for the SQLite database and the server-side sessions: in
    memory-backed /dev/shm where there is one, so that the many real commits and session writes do
    not wait for the disk (same SQLite, same session store)."""
    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path_factory.mktemp("scratch")
        return
    directory = Path(tempfile.mkdtemp(prefix="referral-test-", dir="/dev/shm"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(_scratch):
    """The migrated, empty test database of this test process."""
    given = GIVEN_DATABASE_URL
    own_database = None
    if not given:
        url = f"sqlite:///{_scratch / 'test.db'}"
    elif given.startswith("postgresql") and WORKER:
        url = _sqlalchemy_url(_worker_url(given))
        own_database = _quoted(make_url(url).database)
        _admin(given, f"DROP DATABASE IF EXISTS {own_database} WITH (FORCE)", f"CREATE DATABASE {own_database}")
    else:
        url = _sqlalchemy_url(given)
        if url.startswith("postgresql"):
            _admin(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    app = create_app(env={"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield url
    if own_database:
        _admin(given, f"DROP DATABASE IF EXISTS {own_database} WITH (FORCE)")


class FreshContextClient(FlaskClient):
    """Each request runs in its own context, as in production: its own `g`, its own database session.

    Without this, requests would share the test's app context, and with it the logged-in user
    cached by Flask-Login and the objects in the session.
    """

    def open(self, *args, **kwargs):
        # Buffered: a streamed response (CSV exports) is read while its context still exists.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


# The extension objects are module-wide (`security`, `talisman`, …) and some keep the settings of the
# app they were last initialised for: a test that creates an app of its own (a production app, the
# live server) re-initialises them. Counted here, so that the next test gets a freshly built app.
_apps_initialised = 0
_register_extensions = _referral.register_extensions


def _counting_register_extensions(app):
    global _apps_initialised
    _apps_initialised += 1
    return _register_extensions(app)


_referral.register_extensions = _counting_register_extensions


class _SharedApp:
    """The app of this test process, built once: building one per test compiled the URL rules and
    every template again for each test. Built again only after a test created another app."""

    def __init__(self, database_url: str, root: Path):
        self.database_url, self.root = database_url, root
        self.app, self.built_after = None, -1

    def get(self):
        if self.app is None or self.built_after != _apps_initialised:
            self.dispose()
            before = _apps_initialised
            self.app = create_app(
                overrides={
                    "TESTING": True,
                    "UPLOAD_FOLDER": str(self.root / "uploads"),
                    "SERVER_NAME": "localhost",
                    "SESSION_FILE_DIR": str(self.root / "sessions"),
                    "MAIL_BACKEND": "locmem",
                },
                env={"DATABASE_URL": self.database_url, "SECRET_KEY": SECRET_KEY},
            )
            self.app.test_client_class = FreshContextClient
            # The count must see every app built, or a test's own app would go unnoticed.
            assert _apps_initialised == before + 1, "create_app no longer calls referral.register_extensions"
            self.built_after = _apps_initialised
        return self.app

    def dispose(self):
        if self.app is not None:
            with self.app.app_context():
                db.engine.dispose()
            self.app = None


@pytest.fixture(scope="session")
def _shared_app(database_url, _scratch):
    shared = _SharedApp(database_url, _scratch)
    yield shared
    shared.dispose()


@pytest.fixture
def app(_shared_app, tmp_path):
    """The app, as new for each test: its settings as built (a test may change them; they are put
    back afterwards), no sessions, no login counters, no mails, its own upload folder, empty tables."""
    app = _shared_app.get()
    settings = dict(app.config)
    # A test that re-initialises Flask-Mailman (the real SMTP server of test_notifications) replaces the
    # extension's state, which holds the backend: without this, later tests of the process sent their
    # mails to a stopped SMTP server and found the outbox empty (an order-dependent failure in CI).
    mailman = app.extensions["mailman"]
    app.config["UPLOAD_FOLDER"] = str(tmp_path / "uploads")
    _reset_app_state(app)
    try:
        with app.app_context():
            yield app
            db.session.remove()
            _restore(EMPTY)
    finally:
        app.config.clear()
        app.config.update(settings)
        app.extensions["mailman"] = mailman
        app.test_client_class = FreshContextClient
        _reset_app_state(app)


def _reset_app_state(app) -> None:
    """What lives in the app object between requests: server-side sessions, login counters, mails."""
    app.config["SESSION_CACHELIB"].clear()
    for limiter in app.extensions.get("limiter", ()):
        limiter.reset()
    app.extensions["mailman"].outbox = []


# --- Resetting the data: rows restored from a snapshot ----------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Rows of every table, the PostgreSQL sequences' positions and the audit chain's head."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)  # PostgreSQL: (last_value, is_called)
    head: tuple[int, str] | None = None  # (seq, last_hash); None: the empty chain


EMPTY = Snapshot()  # no rows, sequences from the start, the empty chain: as after TRUNCATE … RESTART IDENTITY


def _data_tables():
    return [t for t in db.metadata.sorted_tables if t.name != "audit_head"]


def _sequences(connection) -> list[str]:
    return list(
        connection.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            )
        ).scalars()
    )


def _take_snapshot() -> Snapshot:
    with db.engine.connect() as connection:
        rows = {t.name: [dict(r._mapping) for r in connection.execute(t.select())] for t in _data_tables()}
        sequences = {}
        if connection.dialect.name == "postgresql":
            for name in _sequences(connection):
                last_value, is_called = connection.execute(
                    text(f"SELECT last_value, is_called FROM {_quoted(name)}")
                ).one()
                sequences[name] = (last_value, is_called)
        seq, last_hash = connection.execute(text("SELECT seq, last_hash FROM audit_head")).one()
    return Snapshot({name: found for name, found in rows.items() if found}, sequences, (seq, last_hash))


def _restore(snapshot: Snapshot) -> None:
    """Every table emptied and refilled with the snapshot's rows, in one transaction (the audit log's
    append-only guard is lifted for it and put back). Cheaper than TRUNCATE on PostgreSQL, and than
    building the rows again through the models."""
    from referral.audit.chain import GENESIS, set_guard

    tables = _data_tables()
    with db.engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        set_guard(connection, False)
        for table in reversed(tables):
            connection.execute(table.delete())
        if postgres:
            names = _sequences(connection)
            positions = [snapshot.sequences.get(name, (1, False)) for name in names]
            if names:
                connection.execute(
                    text(
                        "SELECT "
                        + ", ".join(
                            f"setval('{_quoted(name)}', {value}, {str(called).lower()})"
                            for name, (value, called) in zip(names, positions, strict=True)
                        )
                    )
                )
        for table in tables:
            if snapshot.rows.get(table.name):
                connection.execute(table.insert(), snapshot.rows[table.name])
        seq, last_hash = snapshot.head or (0, GENESIS)
        connection.execute(text("UPDATE audit_head SET seq = :seq, last_hash = :hash"), {"seq": seq, "hash": last_hash})
        set_guard(connection, True)


def _empty_tables() -> None:
    """Empty every table (sequences from the start, the empty audit chain)."""
    _restore(EMPTY)


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


@pytest.fixture(scope="session")
def _world_snapshot(_shared_app) -> Snapshot:
    """The world built once per test process through the models, then kept as rows."""
    with _shared_app.get().app_context():
        _restore(EMPTY)
        factories.build_world()
        db.session.remove()
        snapshot = _take_snapshot()
        _restore(EMPTY)
    return snapshot


@pytest.fixture
def world(app, _world_snapshot):
    """Two districts with schools, one user per role and scope, committed."""
    _restore(_world_snapshot)
    return factories.load_world()


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
        response = client.post(
            "/login", data={"email": user.email, "password": password, "csrf_token": csrf_token(client, "/login")}
        )
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
