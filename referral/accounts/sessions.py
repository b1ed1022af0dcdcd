"""Session lifetime: 30 minutes without a request end a session, and none lasts longer than 12 hours.

The times live in the signed session cookie; a session that ran out is ended before the request
reaches any view. The page warns a few minutes before the idle limit (static/js/session.js).
"""
from __future__ import annotations

import time

from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user
from flask_security import logout_user
from flask_security.signals import user_authenticated

# Requests that the page makes by itself do not count as the user being active.
PASSIVE_ENDPOINTS = {"static", "bootstrap.static"}


def _now() -> float:
    return time.time()


def start(sender, user, **extra) -> None:
    session["signed_in_at"] = session["seen_at"] = _now()


def enforce():
    if not current_user.is_authenticated or request.endpoint in PASSIVE_ENDPOINTS:
        return None
    now = _now()
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    absolute = current_app.config["SESSION_ABSOLUTE_HOURS"] * 3600
    expired = now - session.get("seen_at", now) > idle or now - session.get("signed_in_at", now) > absolute
    if expired:
        logout_user()
        session.clear()
        flash("Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.", "info")
        return redirect(url_for("security.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))
    session.setdefault("signed_in_at", now)
    session["seen_at"] = now
    return None


def register(app) -> None:
    user_authenticated.connect(start, app)
    app.before_request(enforce)

    @app.context_processor
    def session_limits():
        return {"session_idle_seconds": app.config["SESSION_IDLE_MINUTES"] * 60}
