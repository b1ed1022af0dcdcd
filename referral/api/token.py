"""The token endpoint (OAuth 2.0 client credentials, RFC 6749 § 4.4) and the API's rate limit.

Why client credentials and not the secret itself as bearer: the long-lived secret travels once per
token (every 10 minutes) instead of with every call, a leaked access token is worth minutes, and every
OAuth library of the case software vendors speaks it. Authlib's authorization server does the protocol
(client_secret_basic and client_secret_post, grant type, scope); the client's secret is checked by
`clients.authenticate` (hash, rotation grace), tokens are stored only as hashes.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from flask import Flask, Response, current_app, g, json, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import delete, select

from ..extensions import db
from ..timeutil import utcnow
from . import clients
from .models import ApiClient, ApiToken
from .problems import problem

# German texts for the OAuth errors (RFC 6749 § 5.2); `error` stays in the body for OAuth libraries.
OAUTH_ERRORS = {
    "invalid_client": (
        "Zugang nicht erkannt",
        "client_id oder client_secret sind falsch, oder der Zugang ist widerrufen.",
    ),
    "invalid_request": ("Ungültige Anfrage", "Die Token-Anfrage ist unvollständig oder fehlerhaft."),
    "unsupported_grant_type": (
        "Grant-Typ nicht unterstützt",
        "Nur grant_type=client_credentials wird unterstützt.",
    ),
    "invalid_scope": (
        "Berechtigung nicht erlaubt",
        "Der Zugang hat nicht alle angefragten Berechtigungen (scope).",
    ),
    "unauthorized_client": ("Grant-Typ nicht erlaubt", "Dieser Zugang darf diesen Grant-Typ nicht verwenden."),
}


class OAuthClient(ClientMixin):
    """Authlib's view of an ApiClient: the secret is checked by `clients.authenticate`."""

    def __init__(self, client: ApiClient):
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str | None) -> str:
        # Requested scope: validated as a subset before (Grant.validate_requested_scope); none: all of them.
        return scope or " ".join(sorted(self.client.scopes))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.authenticate(self.client.client_id, client_secret) is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def check_response_type(self, response_type: str) -> bool:
        return False


class Grant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        wanted = set((self.request.payload.scope or "").split())
        if wanted - set(self.request.client.client.scopes):
            raise InvalidScopeError()


class _Request(FlaskOAuth2Request):
    """Authlib refuses plain http except for loopback addresses; the transport is checked by
    `_transport_refused` instead (production: HTTPS, also as seen by the TLS proxy)."""

    def __init__(self, flask_request: Any):
        OAuth2Request.__init__(
            self, flask_request.method, "https://" + flask_request.url.split("://", 1)[1], headers=flask_request.headers
        )
        self.uri = flask_request.url
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class Server(AuthorizationServer):
    def create_oauth2_request(self, flask_request: Any) -> FlaskOAuth2Request:
        return _Request(request)

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        if status_code < 400:
            body = payload if isinstance(payload, str) else json.dumps(payload)
            return Response(body, status=status_code, headers=headers, mimetype="application/json")
        error = payload.get("error", "invalid_request") if isinstance(payload, dict) else "invalid_request"
        title, detail = OAUTH_ERRORS.get(error, OAUTH_ERRORS["invalid_request"])
        extra = {name: value for name, value in dict(headers or {}).items() if name == "WWW-Authenticate"}
        if error == "invalid_client":
            status_code = 401  # also for client_secret_post (RFC 6749 allows 400; one answer is simpler)
            extra["WWW-Authenticate"] = 'Basic realm="api"'
        return problem(status_code, title, detail, "oauth-" + error.replace("_", "-"), headers=extra, error=error)


def _query_client(client_id: str) -> OAuthClient | None:
    found = clients.by_client_id(client_id)
    if found is None or not found.active:
        clients.digest(client_id)  # about the same work whether the client exists or not
        return None
    return OAuthClient(found)


def _save_token(token: dict[str, Any], oauth_request: Any) -> None:
    client: ApiClient = oauth_request.client.client
    now = utcnow()
    # Expired tokens are useless; they go when a new one is issued (no separate cleaning job).
    db.session.execute(delete(ApiToken).where(ApiToken.expires_at <= now))
    db.session.add(
        ApiToken(
            client_id=client.id,
            token_hash=clients.digest(token["access_token"]),
            scopes=token["scope"].split(),
            issued_at=now,
            expires_at=now + timedelta(seconds=token["expires_in"]),
        )
    )
    g.api_client = client  # for the audit entry of this call


def _expires_in(client: Any, grant_type: str) -> int:
    return int(current_app.config.get("API_TOKEN_MINUTES", 10) * 60)


def make_server(app: Flask) -> Server:
    server = Server(query_client=_query_client, save_token=_save_token)
    server.init_app(app)
    server.register_token_generator(
        "default",
        server.create_bearer_token_generator({"OAUTH2_TOKEN_EXPIRES_IN": "referral.api.token._expires_in"}),
    )
    server.register_grant(Grant)
    return server


def issue() -> Response:
    """The token endpoint's work, for the route in routes.py."""
    server: Server = current_app.extensions["api_oauth_server"]
    response = server.create_token_response()
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# --- Transport ---------------------------------------------------------------------------------


def transport_refused() -> Response | None:
    """Production: the API answers only over HTTPS (directly or as the trusted TLS proxy saw it).
    Talisman redirects plain http; for the API that redirect comes too late (the credentials have
    already crossed the network), so it becomes a refusal the connector's operator sees."""
    if not current_app.config.get("REFERRAL_PRODUCTION") or request.is_secure:
        return None
    return problem(
        403,
        "HTTPS erforderlich",
        "Die Schnittstelle ist nur über HTTPS erreichbar. Bitte die Adresse mit https:// verwenden; "
        "über http gesendete Zugangsdaten sollten ausgetauscht werden.",
        "https-required",
    )


# --- Rate limit per client --------------------------------------------------------------------


def _token_client_id() -> str | None:
    header = request.headers.get("Authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != "bearer" or not value.strip() or len(value) > 200:
        return None
    found = db.session.scalar(
        select(ApiClient.client_id)
        .join(ApiToken, ApiToken.client_id == ApiClient.id)
        .where(ApiToken.token_hash == clients.digest(value.strip()))
    )
    g.api_token_client_id = found  # for the audit entry of a call refused before authentication
    return found


def _claimed_client_id() -> str | None:
    """The token endpoint: the client_id the request names (Basic or form), before it is checked."""
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username
    return request.form.get("client_id") or None


def rate_key() -> str:
    """One counter per client, whichever token it uses; a request without a valid token per address. The
    token endpoint counts per address: the client_id it names is not checked yet, and counting it against
    that client would let anyone lock a connector out (or escape the limit with made-up ids)."""
    if "api_rate_key" not in g:
        client_id = None if request.endpoint == "api.token" else _token_client_id()
        g.api_rate_key = f"api-client:{client_id}" if client_id else f"api-address:{get_remote_address()}"
    key: str = g.api_rate_key
    return key


def retry_after() -> int:
    limiter: Limiter | None = current_app.extensions.get("api_limiter")
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)


def register(app: Flask, blueprint: Any) -> None:
    app.extensions["api_oauth_server"] = make_server(app)
    # A limiter of its own (as accounts/throttling.py): counted per client, in Redis when configured.
    limiter = Limiter(key_func=rate_key, app=app)
    app.extensions["api_limiter"] = limiter
    # Shared by all routes of the blueprint: one count per client, whatever it calls.
    limiter.shared_limit(
        lambda: current_app.config.get("API_RATE_LIMIT", "600 per minute"), scope="api", key_func=rate_key
    )(blueprint)
