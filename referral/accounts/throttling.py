"""Brute-force protection of the login: per account and per network address (Flask-Limiter).

After LOGIN_FAILURES_PER_ACCOUNT failed logins for one e-mail address, that address is locked for
the rest of the window, whether or not an account exists for it, so the lock tells nothing about
accounts. With REDIS_URL set, the counters are shared by all app instances.
"""
from __future__ import annotations

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def _submitted_address() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    # A successful login redirects; a failed one shows the form again.
    return response.status_code != 302


def protect_login(app) -> Limiter:
    # One limiter per app: its limits are registered on the (shared) login view function, and a
    # module-wide limiter would collect them again for every app created (tests create many).
    limiter = Limiter(key_func=get_remote_address, app=app)
    view = app.view_functions["security.login"]
    per_account = limiter.limit(
        lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"], key_func=_submitted_address,
        methods=["POST"], deduct_when=_failed, per_method=True,
    )
    per_address = limiter.limit(lambda: current_app.config["LOGIN_ATTEMPTS_PER_ADDRESS"], methods=["POST"], per_method=True)
    app.view_functions["security.login"] = per_address(per_account(view))
    return limiter
