"""Failing services end in a German page (issue 12): with PostgreSQL or Redis stopped, pages answer
503 with Retry-After in German, a form sent says that its input was not stored, the login page says
that signing in is briefly impossible, the login counters go on in memory; once the service is back,
the same app works again without a restart.

Both services are private to this module: a PostgreSQL cluster initialised in a temporary directory
and a Redis server, each on a free port; never the shared ones."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from referral import create_app
from referral.extensions import db

from . import factories
from .conftest import FreshContextClient


def _postgres_bin() -> Path:
    # Debian's layout: /usr/lib/postgresql/<version>/bin; the newest installed, or PG_BIN.
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgres_bin()
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _missing(what: str) -> None:
    # In CI a missing service binary fails the run; locally the test is skipped with the reason.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: the outage tests cannot run")
    pytest.skip(f"{what} is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivatePostgres:
    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            _missing(f"PostgreSQL ({PG_BIN}/initdb)")
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="outage-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"
            ),
            check=True,
            capture_output=True,
        )
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"), "start"
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"), capture_output=True
        )
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self):
        if not Path(REDIS_SERVER).exists():
            _missing("redis-server")
        self.port = _free_port()
        self.process = None
        self.start()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def remove(self) -> None:
        if self.process and self.process.poll() is None:
            self.stop()


@pytest.fixture(scope="module")
def services():
    postgres = PrivatePostgres()
    redis = None
    try:
        redis = PrivateRedis()
        yield postgres, redis
    finally:
        if redis:
            redis.remove()
        postgres.remove()


@pytest.fixture
def outage_app(services, tmp_path):
    postgres, redis = services
    app = create_app(
        overrides={
            "TESTING": True,
            "PROPAGATE_EXCEPTIONS": False,  # as in production: errors become pages
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "SERVER_NAME": "localhost",
            "MAIL_BACKEND": "locmem",
            "LOGIN_ATTEMPTS_PER_ADDRESS": "3 per minute",
        },
        env={"DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "SECRET_KEY": "test-" + "x" * 40},
    )
    app.test_client_class = FreshContextClient
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def _teacher():
    """The world is built once per module (the private database lives as long)."""
    from sqlalchemy import select

    from referral.accounts.models import User

    teacher = db.session.scalar(select(User).where(User.email == "teacher@test.example"))
    return teacher or factories.build_world().users["teacher"]


def _signed_in(app, user):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.fs_uniquifier
        session["_fresh"] = True
    return client


def _csrf(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _assert_outage_page(response) -> str:
    text = _text(response)
    assert response.status_code == 503, (response.status_code, text[:300])
    assert response.headers["Retry-After"] == "30"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]  # the usual headers still apply
    assert '<html lang="de">' in text and "Internal Server Error" not in text
    assert "in einigen Minuten erneut" in text
    return text


def test_postgresql_stopped_and_started_again(outage_app, services):
    postgres, _ = services
    teacher = _teacher()
    client = _signed_in(outage_app, teacher)
    assert client.get("/referrals").status_code == 200
    token = _csrf(client, "/referrals/new")
    visitor = outage_app.test_client()
    login_token = _csrf(visitor, "/login")
    db.session.remove()

    postgres.stop()
    try:
        page = _assert_outage_page(client.get("/referrals"))
        assert "Die Datenbank ist gerade nicht erreichbar" in page
        assert "gespeichert" not in page  # a page only read: nothing to say about saving

        sent = client.post(
            "/referrals/new", data={"csrf_token": token, "child_first_name": "Erika", "save": "Entwurf speichern"}
        )
        page = _assert_outage_page(sent)
        assert "Ihre Eingaben wurden nicht gespeichert" in page

        # The autosave asks for JSON and shows its message next to the form, which is still there.
        autosaved = client.post(
            "/referrals/new/autosave",
            data={"csrf_token": token, "child_first_name": "Erika"},
            headers={"Accept": "application/json"},
        )
        assert autosaved.status_code == 503 and autosaved.headers["Retry-After"] == "30"
        assert autosaved.json == {
            "saved": False,
            "message": "Die Datenbank ist gerade nicht erreichbar. Bitte versuchen "
            "Sie es in einigen Minuten erneut. Ihre Eingaben wurden nicht gespeichert; sie stehen "
            "weiter im Formular.",
        }

        # The password cannot be checked: no failed attempt, however often it is tried.
        outage_app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "2 per minute"
        for _ in range(3):
            signing_in = visitor.post(
                "/login", data={"email": teacher.email, "password": factories.PASSWORD, "csrf_token": login_token}
            )
            assert "Die Datenbank ist gerade nicht erreichbar" in _assert_outage_page(signing_in)
    finally:
        postgres.start()

    # The same app, no restart: the pool throws away the dead connections (pool_pre_ping).
    assert client.get("/referrals").status_code == 200
    assert client.get("/referrals/new").status_code == 200
    visitor.environ_base["REMOTE_ADDR"] = "127.0.0.3"  # 127.0.0.1 has used its attempts for this minute
    signed_in = visitor.post(
        "/login", data={"email": teacher.email, "password": factories.PASSWORD, "csrf_token": _csrf(visitor, "/login")}
    )
    assert signed_in.status_code == 302, "the attempts during the outage locked the account"


def test_redis_stopped_and_started_again(outage_app, services):
    _, redis = services
    teacher = _teacher()
    client = _signed_in(outage_app, teacher)
    assert client.get("/referrals").status_code == 200
    token = _csrf(client, "/referrals/new")
    db.session.remove()

    redis.stop()
    try:
        page = _assert_outage_page(client.get("/referrals"))
        assert "Sitzungsspeicher" in page
        assert "gespeichert" not in page.replace("Sitzungsspeicher", "")

        sent = client.post(
            "/referrals/new", data={"csrf_token": token, "child_first_name": "Erika", "save": "Entwurf speichern"}
        )
        assert "Ihre Eingaben wurden nicht gespeichert" in _assert_outage_page(sent)

        stranger = outage_app.test_client()
        page = _assert_outage_page(stranger.get("/login"))
        assert "Die Anmeldung ist gerade nicht möglich" in page
        assert "Bitte versuchen Sie es in einigen Minuten erneut." in page

        # The counters go on in this process: the fourth attempt within the minute is refused (429).
        outage_app.config["WTF_CSRF_ENABLED"] = False
        attempts = [
            stranger.post("/login", data={"email": teacher.email, "password": "falsch-falsch-falsch"}) for _ in range(4)
        ]
        # The password is checked (the database is up) and refused; nothing needs a session for that.
        assert [r.status_code for r in attempts[:3]] == [200, 200, 200]
        assert "E-Mail-Adresse oder Passwort ist falsch." in _text(attempts[0])
        assert attempts[3].status_code == 429, "the counters did not go on in memory"
        assert "Zu viele fehlgeschlagene Anmeldeversuche" in _text(attempts[3])
        outage_app.config["WTF_CSRF_ENABLED"] = True
    finally:
        redis.start()

    # Redis is back (empty: the sessions were in it); the same app signs in and serves pages.
    client = outage_app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.2"  # 127.0.0.1 has used up its attempts for this minute
    response = client.post(
        "/login", data={"email": teacher.email, "password": factories.PASSWORD, "csrf_token": _csrf(client, "/login")}
    )
    assert response.status_code == 302
    assert client.get("/referrals").status_code == 200


def test_readiness_follows_the_services_down_and_up_again(outage_app, services):
    """/readyz (issue 13): 503 naming the service while PostgreSQL or Redis is stopped, 200 once it is
    back, without a restart of the app; /healthz (the process answers) stays 200 throughout."""
    from referral.jobs import schedule
    from referral.jobs.models import JobRun
    from referral.timeutil import to_local, utcnow

    postgres, redis = services
    now = utcnow()
    for name in schedule.JOBS:
        db.session.add(JobRun(job=name, day=to_local(now).date(), started_at=now, ended_at=now, outcome="ok"))
    db.session.commit()
    db.session.remove()
    probe = outage_app.test_client()
    assert probe.get("/readyz").status_code == 200

    for service, name in ((postgres, "database"), (redis, "redis")):
        service.stop()
        try:
            down = probe.get("/readyz")
            assert down.status_code == 503 and name in down.json["failed"], down.json
            assert probe.get("/healthz").status_code == 200
        finally:
            service.start()
        db.session.remove()
        deadline = time.monotonic() + 15
        while (up := probe.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert up.status_code == 200, up.json


def test_a_statement_slower_than_the_timeout_ends_in_a_german_503_and_the_app_goes_on(
    outage_app, services, monkeypatch
):
    """PostgreSQL failover or overload (issue 13): no request hangs longer than the configured statement
    timeout; the user reads what happened, and the next request is served as usual."""
    from sqlalchemy import text

    from referral.cases import queries

    teacher = _teacher()
    client = _signed_in(outage_app, teacher)
    db.session.remove()
    outage_app.config["DATABASE_STATEMENT_TIMEOUT_SECONDS"] = 0.2
    school_list = queries.school_list

    def slow(*args, **kwargs):
        db.session.execute(text("SELECT pg_sleep(5)"))
        return school_list(*args, **kwargs)

    monkeypatch.setattr(queries, "school_list", slow)
    started = time.monotonic()
    response = client.get("/referrals")
    assert time.monotonic() - started < 4, "the statement was cut off, not waited for"
    text_ = _text(response)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "Die Datenbank hat nicht rechtzeitig geantwortet" in text_ and '<html lang="de">' in text_
    monkeypatch.setattr(queries, "school_list", school_list)
    assert client.get("/referrals").status_code == 200
    with outage_app.app_context():  # outside a request (CLI, worker): no statement timeout
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "0"
