"""Authlib's OpenID Connect client, made strict where its defaults are lenient.

Authlib does discovery, PKCE (S256), `state` and `nonce`, the code exchange and fetches the JWKS.
Its ID token check would accept every algorithm the provider's discovery document lists (a provider
listing `none` or `HS256` would let a forged token through) and checks the audience only when told
to. Here: asymmetric signatures only, the issuer pinned to the configured one (also in the discovery
document), the audience and authorised party must be this client, `exp`, `iat`, `sub` and `nonce`
are required. The validation itself is the libraries' (joserfc's signature check, Authlib's claims);
nothing of it is written by hand.
"""

from __future__ import annotations

import time

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.oauth2.claims import JWTClaims
from authlib.oidc.core import CodeIDToken, UserInfo
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from .settings import Provider

# Signatures a provider may use: public-key ones only. HMAC would be keyed with the client secret,
# which the client itself knows; `none` is no signature at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60  # clock skew between the provider and this server
HTTP_TIMEOUT_SECONDS = 10
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE_SECONDS = 300
KEY_REFETCH_SECONDS = 60
# The audit entry names the failed check by one of these codes, never by text the token or caller chose.
REASONS = {
    "BadSignatureError": "signature",
    "InvalidKeyIdError": "key",
    "MissingKeyError": "key",
    "UnsupportedAlgorithmError": "algorithm",
    "MissingAlgorithmError": "algorithm",
    "ExpiredTokenError": "expired",
    "InvalidClaimError": "claims",
    "MissingClaimError": "claims",
    "InvalidTokenError": "claims",
    "DecodeError": "malformed",
    "InvalidPayloadError": "malformed",
}

__all__ = ["REASONS", "JoseError", "OAuthError", "OpenIdClient", "SignOnError", "register"]


class SignOnError(Exception):
    """A response of the provider that must not log anyone in; `reason` names the failed check."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OpenIdClient(FlaskOAuth2App):
    provider: Provider

    def load_server_metadata(self):
        metadata = super().load_server_metadata()
        if metadata.get("issuer") != self.provider.issuer:
            # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer asked for.
            self.server_metadata.clear()
            raise SignOnError("discovery_issuer")
        return metadata

    def _registry(self) -> JWSRegistry:
        offered = self.load_server_metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        return JWSRegistry(algorithms=[alg for alg in offered if alg in ALGORITHMS] or ["RS256"])

    _refetched_at = 0.0

    def verified(self, token: str):
        """The signed token, checked against the provider's keys. A key id not yet known fetches the key
        set again (the provider has rotated its keys), at most once a minute: forged tokens with made-up
        key ids must not make this server fetch for every request."""
        registry = self._registry()
        try:
            return jwt.decode(token, KeySet.import_key_set(self.fetch_jwk_set()), registry=registry)
        except InvalidKeyIdError:
            if time.monotonic() - self._refetched_at < KEY_REFETCH_SECONDS:
                raise
            self._refetched_at = time.monotonic()
            return jwt.decode(token, KeySet.import_key_set(self.fetch_jwk_set(force=True)), registry=registry)

    def parse_id_token(self, token, nonce, claims_options=None, claims_cls=None, leeway=None):
        leeway = LEEWAY_SECONDS  # Authlib passes its own (120 s); the clock skew allowed here is ours
        if "id_token" not in token:
            raise SignOnError("no_id_token")
        decoded = self.verified(token["id_token"])
        options = {
            "iss": {"essential": True, "value": self.provider.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.client_id, "access_token": token.get("access_token")}
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        claims.validate(leeway=leeway)
        if not nonce:
            raise SignOnError("nonce")
        return UserInfo(claims)

    def logout_claims(self, logout_token: str) -> tuple[str, str]:
        """The subject and token id of a valid back-channel logout token (OpenID Connect Back-Channel
        Logout 1.0, section 2.6); SignOnError or JoseError otherwise. Replays: the caller's (by `jti`)."""
        decoded = self.verified(logout_token)
        if decoded.header.get("typ", "logout+jwt").lower() not in {"logout+jwt", "application/logout+jwt"}:
            raise SignOnError("logout_typ")  # an ID or access token of the provider is no logout token
        options = {
            "iss": {"essential": True, "value": self.provider.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "iat": {"essential": True},
            "exp": {"essential": True},
            "jti": {"essential": True},
        }
        claims = JWTClaims(decoded.claims, decoded.header, options)
        claims.validate(leeway=LEEWAY_SECONDS)
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise SignOnError("logout_events")
        if "nonce" in claims:  # a logout token must never be mistaken for an ID token, nor the reverse
            raise SignOnError("logout_nonce")
        if claims["iat"] < time.time() - LOGOUT_TOKEN_MAX_AGE_SECONDS:
            raise SignOnError("logout_too_old")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            # `sid` alone is valid for the specification, but sessions are ended per person here.
            raise SignOnError("logout_subject")
        if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 200:
            raise SignOnError("logout_jti")
        return subject, claims["jti"]


class SignOn(OAuth):
    oauth2_client_cls = OpenIdClient


def register(app) -> SignOn:
    return SignOn(app)


def client(app, name: str) -> OpenIdClient | None:
    """The client of a configured provider; registered at first use, so that the providers are read
    from the configuration as it is then (a test may configure one after the app was built)."""
    provider = app.config["OIDC_PROVIDERS"].get(name)
    if provider is None:
        return None
    oauth: SignOn = app.extensions["authlib.integrations.flask_client"]
    found = oauth._clients.get(name)
    if found is None or found.provider != provider:
        oauth._clients.pop(name, None)  # a changed setting makes a new client (with a new discovery)
        found = oauth.register(
            provider.name,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": "openid email profile",
                "code_challenge_method": "S256",
                "default_timeout": HTTP_TIMEOUT_SECONDS,
            },
        )
        found.provider = provider
    return found
