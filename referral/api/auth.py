"""Bearer tokens on the API's routes.

A client gets a short-lived token at the token endpoint (OAuth 2.0 client credentials) and sends it as
`Authorization: Bearer …`. Tokens are stored as hashes; a token names its client and the scopes it was
issued with. A revoked client's tokens are deleted at once (clients.revoke).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from sqlalchemy import select

from ..extensions import db
from ..timeutil import utcnow
from .clients import digest
from .models import ApiClient, ApiToken
from .problems import problem


def current_client() -> ApiClient:
    client: ApiClient = g.api_client
    return client


def _token() -> ApiToken | None:
    header = request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != "bearer" or not value.strip() or len(value) > 200:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(value.strip())))
    if token is None or token.expires_at <= utcnow() or not token.client.active:
        return None
    return token


def require_scope(scope: str) -> Callable:
    """The view runs only for a valid token with `scope`; `g.api_client` is its client."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            token = _token()
            if token is None:
                return problem(
                    401,
                    "Nicht angemeldet",
                    "Es fehlt ein gültiges Zugriffstoken (Authorization: Bearer …). Tokens gibt es am "
                    "Token-Endpunkt /api/v1/token; sie gelten nur kurz.",
                    "unauthorized",
                    headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
                )
            g.api_client = token.client
            if scope not in token.scopes:
                return problem(
                    403,
                    "Keine Berechtigung",
                    f"Dieser Zugang hat die Berechtigung „{scope}“ nicht.",
                    "insufficient-scope",
                    headers={"WWW-Authenticate": f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'},
                )
            return view(*args, **kwargs)

        guarded.api_scope = scope  # type: ignore[attr-defined]  # read by the permission matrix
        return guarded

    return decorate
