"""`/healthz` and `/readyz`: JSON without login, nothing an outsider could use, and `/readyz` 503
with the failing check named while the database is behind head, Redis is unreachable, the
database cannot be reached, or the daily jobs are overdue."""

from __future__ import annotations

from cryptography.fernet import Fernet
from flask_migrate import stamp, upgrade

from referral import create_app
from referral.extensions import db
from referral.jobs import schedule
from referral.jobs.models import JobRun
from referral.timeutil import to_local, utcnow

from .servers import SECRET_KEY, free_port


def jobs_ran_today() -> None:
    now = utcnow()
    for name in schedule.JOBS:
        db.session.add(JobRun(job=name, day=to_local(now).date(), started_at=now, ended_at=now, outcome="ok"))
    db.session.commit()


def test_healthz_answers_without_login_cookie_or_details(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"


def test_readyz_is_200_when_all_is_well(app, client):
    jobs_ran_today()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "not configured", "jobs": "ok"},
        "failed": [],
    }
    assert "Set-Cookie" not in response.headers


def test_readyz_names_overdue_jobs(app, client):
    response = client.get("/readyz")  # no job has ever run
    assert response.status_code == 503 and response.json["failed"] == ["jobs"]
    assert response.json["status"] == "unavailable"


def test_readyz_names_migrations_when_the_database_is_behind_head(app, tmp_path):
    private = create_app(
        overrides={"TESTING": True, "SERVER_NAME": "localhost"},
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'behind.db'}", "SECRET_KEY": SECRET_KEY},
    )
    with private.app_context():
        upgrade()
        head = db.session.execute(db.text("SELECT version_num FROM alembic_version")).scalar()
        ready = private.test_client().get("/readyz")
        assert ready.status_code == 503 and "migrations" not in ready.json["failed"]  # jobs never ran
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(private.extensions["migrate"].migrate.get_config())
        stamp(revision=scripts.get_revision(head).down_revision)
        db.session.remove()
        behind = private.test_client().get("/readyz")
        db.engine.dispose()
    assert behind.status_code == 503
    assert behind.json["failed"] == ["migrations"] and behind.json["checks"]["jobs"] == "not checked"
    assert head not in behind.get_data(as_text=True), "no versions"


def test_readyz_names_redis_when_it_cannot_be_reached(app, database_url):
    jobs_ran_today()
    closed = free_port()
    unreachable = create_app(
        overrides={"TESTING": True, "SERVER_NAME": "localhost"},
        env={"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "REDIS_URL": f"redis://127.0.0.1:{closed}/0"},
    )
    client = unreachable.test_client()
    with unreachable.app_context():
        assert client.get("/healthz").status_code == 200, "liveness does not need Redis"
        ready = client.get("/readyz")
        db.engine.dispose()
    assert ready.status_code == 503 and ready.json["failed"] == ["redis"]
    assert str(closed) not in ready.get_data(as_text=True), "no addresses"


def test_readyz_names_the_database_when_it_cannot_be_reached(app):
    gone = create_app(
        overrides={"TESTING": True, "SERVER_NAME": "localhost"},
        env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none", "SECRET_KEY": SECRET_KEY},
    )
    client = gone.test_client()
    with gone.app_context():
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        db.engine.dispose()
    assert ready.status_code == 503 and ready.json["failed"] == ["database"]
    assert ready.json["checks"]["migrations"] == "not checked"


def test_production_answers_the_probes_on_plain_http(app, database_url):
    """The proxy probes the app server over HTTP inside the network; pages still go to HTTPS."""
    jobs_ran_today()
    production = create_app(
        env={
            "REFERRAL_ENV": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "SERVER_NAME": "mitteilungen.stadt.example",
            "REFERRAL_DATA_KEYS": Fernet.generate_key().decode(),
        }
    )
    client = production.test_client()
    with production.app_context():
        base = "http://10.0.0.5:8000"
        assert client.get("/healthz", base_url=base).status_code == 200
        assert client.get("/readyz", base_url=base).status_code == 200
        login = client.get("/login", base_url="http://mitteilungen.stadt.example")
        db.engine.dispose()
    assert login.status_code in (301, 302) and login.location.startswith("https://")
