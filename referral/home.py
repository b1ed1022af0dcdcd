"""Start pages by role, and the rule that every page needs a login."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .extensions import db
from .organisation.models import School
from .policy.navigation import start_endpoint
from .policy.roles import SCHOOL_SIDE, login_redirect, require_roles

blueprint = Blueprint("home", __name__)

# Endpoints reachable without a login; everything else redirects to the login page.
# The two-factor steps of the login come before the login is complete; Flask-Security guards them
# by the state it keeps in the session.
PUBLIC_ENDPOINTS = {
    "security.login",
    "static",
    "bootstrap.static",
    "security.static",
    "security.two_factor_setup",
    "security.two_factor_setup_validate",
    "security.two_factor_token_validation",
    "security.two_factor_rescue",
    "security.mf_recovery",
    "security.tf_select",
    "security.forgot_password",
    "security.reset_password",
    "accounts.accept_invitation",
    # Single sign-on (signon/routes.py): the way in through a provider, and the provider's server
    # ending a person's sessions with a signed logout token.
    "signon.start",
    "signon.callback",
    "signon.backchannel_logout",
    "observability.metrics",  # no login: a bearer token and/or allowed networks (observability/metrics.py)
    # The load balancer's probes (health.py): no user, no personal data.
    "health.healthz",
    "health.readyz",
}


@blueprint.before_app_request
def require_login():
    # The API (referral/api/) authenticates each request with a bearer token, never with the session.
    # Unknown URLs and wrong methods under /api/ too: they answer a problem (api/errors.py), not the login.
    api = request.blueprint == "api" or request.path.startswith("/api/")
    if request.endpoint in PUBLIC_ENDPOINTS or api or current_user.is_authenticated:
        return None
    return login_redirect()


@blueprint.after_app_request
def no_store(response):
    # Pages may carry Sozialdaten: never keep them in a browser or proxy cache. (The other security
    # headers come from Flask-Talisman, see create_app.)
    if request.endpoint not in {"static", "bootstrap.static"}:
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/")
def index():
    start = start_endpoint(current_user)
    return redirect(url_for(start)) if start else render_template("home/no_role.html")


@blueprint.get("/school")
@require_roles(*SCHOOL_SIDE)
def school_start():
    ids = current_user.school_ids(*SCHOOL_SIDE)
    schools = db.session.scalars(select(School).where(School.id.in_(ids)).order_by(School.name)).all()
    return render_template("home/school.html", schools=schools)
