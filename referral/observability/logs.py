"""Logs: one JSON object per line (LOG_FORMAT=json, the default in production) or readable text.

Every line written during a request carries its request id (the `X-Request-ID` response header and the
audit entries' `request_id`), its route (the Flask endpoint, never the URL) and the signed-in user's id
(never a name or an address). Each request ends with one line `request` giving method, route, status and
duration. No query strings, no form values: what a log line holds is named here, nothing else is added.
A traceback stays inside its JSON object (`traceback`), so one line is one event for the log shipper.

gunicorn's own lines (gunicorn.conf.py) use the same formatter; its access lines are reduced to the
fields named in `ACCESS_FIELDS` (the path without its query string).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_LOGGER = "referral.request"
_HANDLER_MARK = "_referral_handler"


def _request_context() -> dict[str, Any]:
    """Request id, route and user id of the request being handled, if any (never loads anything)."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {}
    return {"request_id": g.get("request_id", ""), "route": request.endpoint or "none", "user_id": signed_in_user_id()}


def signed_in_user_id() -> int | None:
    """The id of the user Flask-Login has loaded for this request; None when nobody is signed in or the
    user was not loaded. Read from the identity map key: no query, also after a rollback or in an outage."""
    from flask import g
    from sqlalchemy import inspect

    # Not `is_authenticated`: it reads `active`, which after the commit is a query. The anonymous user
    # is not a mapped object.
    state = inspect(g.get("_login_user"), raiseerr=False)
    identity = state.identity if state is not None else None
    return int(identity[0]) if identity else None


class RequestContext(logging.Filter):
    """Adds request id, route and user id to every record written during a request (unless given)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _request_context().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class WithoutWerkzeugAccessLines(logging.Filter):
    """The development server's access line repeats the URL with its query string; the app's own
    `request` line replaces it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "werkzeug" and " - - [" in str(record.msg))


# gunicorn's access atoms that are logged (gunicorn.glogging.Logger.atoms); never "r", "q", "f", "h",
# "a": the request line and the referrer hold query strings, the address and user agent identify people.
ACCESS_FIELDS = {"method": "m", "path": "U", "status": "s", "bytes": "B", "protocol": "H"}


class JsonFormatter(_JsonFormatter):
    """time (UTC, ISO 8601), level, logger, message, the request's fields, extras, traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["asctime", "levelname", "name", "message"])
        kwargs.setdefault(
            "rename_fields",
            {"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "traceback"},
        )
        kwargs.setdefault("static_fields", {})
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            atoms = record.args
            record.message = "access"
            super().add_fields(log_data, record, message_dict)
            for field, atom in ACCESS_FIELDS.items():
                log_data[field] = atoms.get(atom)
            log_data["status"] = _int(log_data["status"])
            # gunicorn's request time, in microseconds ("D").
            log_data["duration_ms"] = round((_int(atoms.get("D")) or 0) / 1000, 1)
            log_data["request_id"] = atoms.get("{x-request-id}o") or ""
            log_data["pid"] = record.process
            return
        super().add_fields(log_data, record, message_dict)
        log_data["pid"] = record.process


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TextFormatter(logging.Formatter):
    """The development format: time, level, logger, request id, message (and the traceback below)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return super().format(record)


class _StandardError(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (a test's capture, gunicorn's redirected stream)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure(log_format: str, level: str) -> logging.Handler:
    """One handler on the root logger, in `log_format`; the handler of an earlier call is replaced (each
    app built in a process calls this). Flask's own stderr handler is dropped: the root's writes."""
    from flask.logging import default_handler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = _StandardError()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestContext())
    handler.addFilter(WithoutWerkzeugAccessLines())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("referral").removeHandler(default_handler)
    return handler


def request_line(method: str, route: str, status: int, seconds: float, request_id: str, user_id: int | None) -> None:
    """The one line per request, written once its response has been sent."""
    logging.getLogger(REQUEST_LOGGER).info(
        "%s %s %s %.1f ms",
        method,
        route,
        status,
        seconds * 1000,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": request_id,
            "user_id": user_id,
        },
    )
