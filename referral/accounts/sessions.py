"""Session lifetime: 30 minutes without a request end a session, and none lasts longer than 12 hours.

Sessions are kept on the server (Flask-Session; Redis or files, see config.py): the cookie carries
a random id only. A session that ran out is ended before the request reaches any view. The page warns
a few minutes before the idle limit (static/js/session.js).
"""

from __future__ import annotations

import time

from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, user_logged_out
from flask_security import logout_user
from flask_security.signals import user_authenticated

# Requests that the page makes by itself do not count as the user being active. They neither load the
# user nor store the session: a stylesheet requested while a POST's redirect is under way would
# otherwise write back the session as it was before the POST and so erase the POST's flash message.
# The health checks (health.py) are probes of the load balancer, not of a user.
PASSIVE_ENDPOINTS = {"static", "bootstrap.static", "security.static", "health.healthz", "health.readyz"}
# The identity provider's server calling to end a person's sessions: no session of its own.
PASSIVE_ENDPOINTS.add("signon.backchannel_logout")


def passive() -> bool:
    # The API (referral/api/) has no session at all: a bearer token authenticates each request.
    return request.endpoint in PASSIVE_ENDPOINTS or request.blueprint == "api"


def _now() -> float:
    return time.time()


def start(sender, user, **extra) -> None:
    # A new session id at login: an id planted or seen before the login is worth nothing after it.
    current_app.session_interface.regenerate(session)
    session["signed_in_at"] = session["seen_at"] = _now()


def end(sender, user, **extra) -> None:
    # The stored session is deleted on logout: a copied cookie no longer names anything.
    session.pop("signon", None)  # the provider's ID token (signon/routes.py) goes with the login
    current_app.session_interface.regenerate(session)


def enforce():
    if passive() or not current_user.is_authenticated:  # in this order: asking loads the user
        return None
    now = _now()
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    absolute = current_app.config["SESSION_ABSOLUTE_HOURS"] * 3600
    expired = now - session.get("seen_at", now) > idle or now - session.get("signed_in_at", now) > absolute
    if expired:
        logout_user()
        session.clear()
        flash("Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.", "info")
        return redirect(
            url_for("security.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
        )
    session.setdefault("signed_in_at", now)
    session["seen_at"] = now
    return None


def end_with_saved_draft(resume_url: str):
    """The page saved the draft just before the idle limit (session.js); now the session ends, and
    the login leads back to the draft."""
    logout_user()
    flash(
        "Ihre Sitzung ist wegen Inaktivität abgelaufen. Ihr Entwurf wurde vorher gespeichert; "
        "nach der Anmeldung geht es dort weiter.",
        "info",
    )
    return redirect(url_for("security.login", next=resume_url))


def register(app) -> None:
    user_authenticated.connect(start, app)
    user_logged_out.connect(end, app)
    app.before_request(enforce)
    # Flask-Principal (set up by Flask-Security) loads the identity, and so the user, before every
    # request; its own switch for static files knows only /static, not the other asset endpoints.
    principal = app.extensions["security"].principal
    principal.skip_static = True
    principal._is_static_route = passive

    @app.context_processor
    def session_limits():
        return {"session_idle_seconds": app.config["SESSION_IDLE_MINUTES"] * 60}
