"""Health checks for the load balancer and monitoring: `/healthz` (the process answers) and
`/readyz` (it can serve: database reachable and migrated to head, Redis reachable when configured,
daily jobs not overdue). JSON, no login, and nothing in them an outsider could use: no personal
data, no versions, no paths, no error messages; only which check failed, by name.

Both answer on plain HTTP even in production (no HTTPS redirect): the proxy probes the app server
directly inside the network. They touch neither the session nor the login (no cookie is read or
set), so a probe never writes to Redis or the database.
"""

from __future__ import annotations

import logging
from functools import cache

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from .extensions import db, talisman

blueprint = Blueprint("health", __name__)
log = logging.getLogger("referral.health")

# The endpoints that neither load the user nor keep a session (accounts/sessions.py reads this).
ENDPOINTS = {"health.healthz", "health.readyz"}


@cache
def migration_heads(directory: str) -> frozenset[str]:
    """The head revision(s) of the migration scripts; read once per process (they do not change)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _database() -> tuple[bool, bool]:
    """(reachable, migrated to head), on a connection of its own: nothing of a request's session."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        try:
            current = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
            return True, False
    return True, current == set(migration_heads(current_app.extensions["migrate"].directory))


def _redis() -> bool | None:
    """None when no Redis is configured; else whether it answers."""
    if not current_app.config.get("SESSION_REDIS_URL"):
        return None
    client = current_app.config.get("SESSION_REDIS")
    if client is None:
        import redis

        from .config import redis_options

        client = redis.Redis.from_url(current_app.config["SESSION_REDIS_URL"], **redis_options())
    return bool(client.ping())


def _jobs_ok() -> bool:
    from .jobs.schedule import status

    try:
        return not any(entry.problem for entry in status(runs_per_job=3))
    finally:
        db.session.rollback()


def _answer(body: dict[str, object], code: int) -> Response:
    response = jsonify(body)
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/healthz")
@talisman(force_https=False)  # type: ignore[untyped-decorator]  # Flask-Talisman ships no types
def healthz() -> Response:
    return _answer({"status": "ok"}, 200)


@blueprint.get("/readyz")
@talisman(force_https=False)  # type: ignore[untyped-decorator]
def readyz() -> Response:
    checks: dict[str, str] = {}
    try:
        _, migrated = _database()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrated else "failed"
    except Exception as error:  # noqa: BLE001 - any failure to reach it means: not ready
        log.warning("readiness: database check failed: %s", type(error).__name__)
        checks["database"] = "failed"
        checks["migrations"] = "not checked"
    try:
        reachable = _redis()
        checks["redis"] = "not configured" if reachable is None else "ok" if reachable else "failed"
    except Exception as error:  # noqa: BLE001
        log.warning("readiness: redis check failed: %s", type(error).__name__)
        checks["redis"] = "failed"
    if checks["migrations"] == "ok":  # the job table exists only on a migrated database
        try:
            checks["jobs"] = "ok" if _jobs_ok() else "failed"
        except Exception as error:  # noqa: BLE001
            log.warning("readiness: jobs check failed: %s", type(error).__name__)
            checks["jobs"] = "failed"
    else:
        checks["jobs"] = "not checked"
    failed = sorted(name for name, state in checks.items() if state == "failed")
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
    return _answer(body, 503 if failed else 200)
