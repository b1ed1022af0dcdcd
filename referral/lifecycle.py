"""The request's transaction: views and operations never commit; the request does, once, at its end.

A response below 400 (a page, a download, the redirect after a form) commits what the request did.
Any other response rolls it back, so that nothing half-written reaches the database — except the
record of a refusal itself (a denied access, a failed login): its writer calls `keep()` after
rolling back whatever the view had begun. The CLI and the workers commit per unit of work instead.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, has_request_context, session
from sqlalchemy import Connection, Engine, event

from .extensions import db


def keep() -> None:
    """Commit this request's work even though its response is an error: the audit entry of a refusal."""
    g.keep_on_error = True


def end(response: Response) -> Response:
    if response.status_code < 400 or g.pop("keep_on_error", False):
        try:
            db.session.commit()
        except Exception:
            # The page already told of success; it did not happen. The error page says what did.
            session.pop("_flashes", None)
            raise
    else:
        db.session.rollback()
    return response


def _limit_statements(connection: Connection) -> None:
    """No request waits on the database longer than DATABASE_STATEMENT_TIMEOUT_SECONDS (PostgreSQL):
    each transaction a request begins gets a statement timeout of its own (SET LOCAL ends with it).
    CLI commands and the worker (batch jobs, migrations) run without it."""
    if not has_request_context() or connection.dialect.name != "postgresql":
        return
    seconds = current_app.config.get("DATABASE_STATEMENT_TIMEOUT_SECONDS", 0)
    if seconds:
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")


def register(app: Flask) -> None:
    # Registered first, so that it runs last among the after-request functions (Flask runs them in
    # reverse order): the others may still add to the transaction (e.g. the delivery log).
    app.after_request(end)
    if not event.contains(Engine, "begin", _limit_statements):
        event.listen(Engine, "begin", _limit_statements)
