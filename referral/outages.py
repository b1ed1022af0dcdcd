"""When PostgreSQL or Redis cannot be reached, the answer is a German page with 503 and Retry-After,
rendered without either of them: no user lookup, no session, no query (`render_static`).

Whether "Ihre Eingaben wurden nicht gespeichert" is true is known, not guessed: every commit during
the request is noted (`g.committed`); a form sent (POST) whose request committed nothing stored
nothing of it."""

from __future__ import annotations

import errno
import sqlite3

from flask import Flask, Response, current_app, g, has_app_context, jsonify, request
from flask.globals import request_ctx
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from .workflow.errors import lost_a_race

RETRY_AFTER_SECONDS = 30
DATABASE, SESSIONS, DISK_FULL, TOO_SLOW = "database", "sessions", "disk_full", "too_slow"
# The steps of signing in: there the page says that signing in is what is impossible just now.
LOGIN_ENDPOINTS = {"security.login", "security.two_factor_token_validation", "security.mf_recovery", "security.verify"}

NOT_STORED = (
    "Ihre Eingaben wurden nicht gespeichert. Wenn Sie im Browser einen Schritt zurückgehen, stehen sie "
    "meist noch im Formular; senden Sie sie dann später erneut."
)
STORED_BEFORE = (
    "Ihre Eingaben wurden bereits gespeichert; der Fehler trat erst danach auf. Bitte prüfen Sie das "
    "Ergebnis, bevor Sie etwas erneut senden."
)


def is_disk_full(error: BaseException | None) -> bool:
    """A full disk, as PostgreSQL (SQLSTATE 53100), SQLite (SQLITE_FULL) or the system (ENOSPC) says it."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(error, "sqlstate", None) == "53100":
            return True
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if "database or disk is full" in str(error) or "No space left on device" in str(error):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


def _sqlstate(error: BaseException | None) -> str | None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if state := getattr(error, "sqlstate", None):
            return str(state)
        error = getattr(error, "orig", None) or getattr(error, "original_exception", None) or error.__cause__
    return None


def unreachable(error: BaseException | None) -> str | None:
    """DATABASE or SESSIONS if `error` (or what caused it) says that a service cannot be reached;
    DISK_FULL if the database could not write for want of space (at the request's commit, say)."""
    if is_disk_full(error):
        return DISK_FULL
    if _sqlstate(error) == "57014":  # query_canceled: the request's statement timeout ran out
        return TOO_SLOW
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
            return SESSIONS
        # A deadlock or serialization failure (lost_a_race) is a race, not an outage.
        if isinstance(error, (OperationalError, InterfaceError)) and not lost_a_race(error):
            return DATABASE
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return DATABASE
        # What it was raised from, never what it was raised while handling: a handled error is no cause.
        error = getattr(error, "original_exception", None) or error.__cause__
    return None


def _note_commit(session: Session) -> None:
    if has_app_context():
        g.committed = True


def committed() -> bool:
    return bool(g.get("committed"))


def form_sent() -> bool:
    return request.method not in ("GET", "HEAD", "OPTIONS")


def saving_note() -> str | None:
    """What to say about the user's input after a failed request: only what is known."""
    if not form_sent() or _endpoint() in LOGIN_ENDPOINTS:
        return None
    return STORED_BEFORE if committed() else NOT_STORED


def _endpoint() -> str | None:
    if request.url_rule is not None:
        return request.endpoint
    # The session could not be opened, so the URL was never matched.
    try:
        adapter = current_app.create_url_adapter(request)
        endpoint = adapter.match(return_rule=False)[0] if adapter is not None else None
    except Exception:  # noqa: BLE001 - a 404 or 405 URL has no endpoint
        return None
    return endpoint if isinstance(endpoint, str) else None


def render_static(code: int, title: str, paragraphs: list[str]) -> Response:
    """The error page from the template alone: no context processors (which look up the user), no
    flashed messages (which live in the session)."""
    html = current_app.jinja_env.get_template("errors/static.html").render(
        code=code, title=title, paragraphs=paragraphs
    )
    return Response(html, code, mimetype="text/html")


def _forget_session() -> None:
    # Nothing is to be written to (or read again from) a session store that cannot be reached, and
    # a session that could not be opened is None; a null session lets the remaining hooks run.
    if not request_ctx:
        return
    # A Werkzeug LocalProxy, typed as the RequestContext it stands for: its own method is unknown to mypy.
    context = request_ctx._get_current_object()  # type: ignore[attr-defined]
    null = current_app.session_interface.make_null_session(current_app)
    if "_session" in vars(context):  # Flask >= 3.1.3 keeps it behind a read-only property
        context._session = null
    else:
        context.session = null


def outage_page(kind: str) -> Response:
    if kind == SESSIONS:
        _forget_session()
    if kind == SESSIONS and _endpoint() in LOGIN_ENDPOINTS:
        title = "Anmeldung gerade nicht möglich"
        text = (
            "Die Anmeldung ist gerade nicht möglich, weil Anmeldungen im Moment nicht gespeichert werden können "
            "(der Sitzungsspeicher ist nicht erreichbar). Bitte versuchen Sie es in einigen Minuten erneut."
        )
    elif kind == SESSIONS:
        title = "Vorübergehend nicht erreichbar"
        text = (
            "Ihre Anmeldung kann gerade nicht geprüft werden, weil der Sitzungsspeicher nicht erreichbar ist. "
            "Bitte versuchen Sie es in einigen Minuten erneut."
        )
    elif kind == DISK_FULL:
        title = "Speicherplatz voll"
        text = (
            "Ihre Änderung konnte nicht gespeichert werden, weil der Speicherplatz der Datenbank voll ist. "
            "Bitte informieren Sie die Administration und versuchen Sie es später erneut."
        )
    elif kind == TOO_SLOW:
        title = "Vorübergehend überlastet"
        text = (
            "Die Datenbank hat nicht rechtzeitig geantwortet; die Anfrage wurde abgebrochen. "
            "Bitte versuchen Sie es in einigen Minuten erneut."
        )
    else:
        title = "Vorübergehend nicht erreichbar"
        text = "Die Datenbank ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut."
    note = saving_note()
    retry = str(current_app.config.get("OUTAGE_RETRY_AFTER_SECONDS", RETRY_AFTER_SECONDS))
    if request.path.startswith("/api/"):  # the API answers problem details (api/errors.py)
        from .api.errors import http_problem

        return http_problem(503, headers={"Retry-After": retry}, detail=text)
    if request.accept_mimetypes.best == "application/json":
        # The form's autosave (referral-form.js) shows `message`; the form is still on the screen.
        unsaved = (
            " Ihre Eingaben wurden nicht gespeichert; sie stehen weiter im Formular." if note == NOT_STORED else ""
        )
        response = jsonify(saved=False, message=text + unsaved)
        response.status_code = 503
    else:
        response = render_static(503, title, [text] + ([note] if note else []))
    response.headers["Retry-After"] = str(current_app.config.get("OUTAGE_RETRY_AFTER_SECONDS", RETRY_AFTER_SECONDS))
    return response


def handle_unreachable(error: Exception) -> Response:
    kind = unreachable(error)
    if kind is None:
        raise error  # not an outage: the 500 handler answers
    current_app.logger.error("%s unreachable: %s", kind, type(error).__name__)
    rollback_quietly()
    return outage_page(kind)


def rollback_quietly() -> None:
    from .extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the pool discards it
        current_app.logger.warning("rollback after a failed request failed", exc_info=True)


def register(app: Flask) -> None:
    if not event.contains(Session, "after_commit", _note_commit):
        event.listen(Session, "after_commit", _note_commit)
    for error in (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError):
        app.register_error_handler(error, handle_unreachable)
