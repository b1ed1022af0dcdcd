"""Brute-force protection of the login: per account and per network address (Flask-Limiter).

After LOGIN_FAILURES_PER_ACCOUNT failed logins for one e-mail address, that address is locked for
the rest of the window, whether or not an account exists for it, so the lock tells nothing about
accounts. With REDIS_URL set, the counters are shared by all app instances.
"""

from __future__ import annotations

from flask import current_app, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def _submitted_address() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    # A successful login (or code) redirects; a failed one shows the form again. 503: the password
    # was never checked (database or session store unreachable), so it is no failed attempt.
    return response.status_code not in (302, 503)


def _second_factor_account() -> str:
    # Between password and code, Flask-Security keeps the user's id in the session.
    return f"tf:{session.get('tf_user_id', '')}"


# Steps reachable without a login that mail links or check secrets: limited per network address.
ACCOUNT_STEPS = (
    "security.forgot_password",
    "security.reset_password",
    "accounts.accept_invitation",
    "security.two_factor_token_validation",
    "security.mf_recovery",
)


def protect_login(app) -> Limiter:
    # One limiter per app: its limits are registered on the (shared) login view function, and a
    # module-wide limiter would collect them again for every app created (tests create many).
    limiter = Limiter(key_func=get_remote_address, app=app)
    view = app.view_functions["security.login"]
    per_account = limiter.limit(
        lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"],
        key_func=_submitted_address,
        methods=["POST"],
        deduct_when=_failed,
        per_method=True,
    )
    per_address = limiter.limit(
        lambda: current_app.config["LOGIN_ATTEMPTS_PER_ADDRESS"], methods=["POST"], per_method=True
    )
    app.view_functions["security.login"] = per_address(per_account(view))

    steps = limiter.limit(lambda: current_app.config["ACCOUNT_STEPS_PER_ADDRESS"], methods=["POST"], per_method=True)
    for endpoint in ACCOUNT_STEPS:
        app.view_functions[endpoint] = steps(app.view_functions[endpoint])
    # Guessing the six-digit code: the same lock as for passwords, per account, from any address.
    codes = limiter.limit(
        lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"],
        key_func=_second_factor_account,
        methods=["POST"],
        deduct_when=_failed,
        per_method=True,
        exempt_when=lambda: not session.get("tf_user_id"),
    )
    for endpoint in ("security.two_factor_token_validation", "security.mf_recovery"):
        app.view_functions[endpoint] = codes(app.view_functions[endpoint])
    # Single sign-on (registered before this): its callback and back-channel logout, per address.
    sign_on = limiter.limit(lambda: current_app.config["SIGN_ON_REQUESTS_PER_ADDRESS"])
    for endpoint in ("signon.callback", "signon.backchannel_logout"):
        app.view_functions[endpoint] = sign_on(app.view_functions[endpoint])
    return limiter
