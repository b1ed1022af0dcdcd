"""The API's routes under /api/v1 (JSON; the OpenAPI document describes each)."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import csrf

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(blueprint)  # no cookies, no session: a bearer token authenticates each request


def register(app) -> None:
    app.register_blueprint(blueprint)
