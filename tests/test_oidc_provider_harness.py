"""The single sign-on test harness on its own, without the app: the real OpenID Provider behind the proxy,
driven by Authlib's requests client as the relying party, tokens checked with joserfc.

Proves what the app's single sign-on tests rely on: discovery shows the proxy as issuer; a login with PKCE and
nonce ends at the redirect_uri with code and state; the ID token carries the configured claims; every attack
mode yields a token that signature or claims checks refuse (while the untouched original passes them); the
RP-initiated logout makes the provider deliver a signed logout token to the back-channel receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet, OctKey
from joserfc.jwt import JWTClaimsRegistry

from tests.oidc_provider import (
    ATTACKS,
    BACKCHANNEL_EVENT,
    BackchannelReceiver,
    OidcProvider,
    OidcProviderError,
    require_oidc_tools,
)

CLIENT_ID = "referral"
SECRET = "client-secret-for-the-tests-0123456789abcdef"
POST_CLIENT_ID = "referral-post"
POST_SECRET = "another-client-secret-0123456789abcdef-post"
REDIRECT_URI = "http://localhost/login/oidc/test/callback"
POST_LOGOUT_URI = "http://localhost/logged-out"
USERS = {
    "anna": {
        "email": "anna@example.org",
        "email_verified": True,
        "name": "Anna Beispiel",
        "acr": "urn:test:acr:mfa",
        "amr": ["pwd", "otp"],
    },
    "bert": {"email": "bert@example.org", "email_verified": False, "name": "Bert", "acr": "urn:test:acr:pwd"},
}


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[OidcProvider, BackchannelReceiver]]:
    require_oidc_tools()
    provider = OidcProvider(users=USERS)
    receiver = provider.backchannel_receiver()
    provider.add_client(CLIENT_ID, SECRET, [REDIRECT_URI], [POST_LOGOUT_URI], backchannel_logout_uri=receiver.url)
    provider.add_client(POST_CLIENT_ID, POST_SECRET, [REDIRECT_URI], token_endpoint_auth_method="client_secret_post")
    with provider:
        yield provider, receiver


@pytest.fixture
def op(harness: tuple[OidcProvider, BackchannelReceiver]) -> OidcProvider:
    return harness[0]


@pytest.fixture
def receiver(harness: tuple[OidcProvider, BackchannelReceiver]) -> BackchannelReceiver:
    harness[1].clear()
    return harness[1]


def keys(op: OidcProvider) -> KeySet:
    return KeySet.import_key_set(requests.get(op.metadata["jwks_uri"], timeout=10).json())


def sign_in(
    op: OidcProvider,
    sub: str = "anna",
    client_id: str = CLIENT_ID,
    secret: str = SECRET,
    auth: str = "client_secret_basic",
) -> tuple[dict[str, Any], str, requests.Session]:
    """A full code flow with PKCE and nonce, Authlib as the client; returns the token response, nonce, browser."""
    client = OAuth2Session(
        client_id,
        secret,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth,
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(
        op.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    browser = requests.Session()
    callback = op.login(browser, url, sub)
    assert callback.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [state] and query["code"][0]
    token = client.fetch_token(op.metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    return dict(token), nonce, browser


def claims_registry(op: OidcProvider, nonce: str, client_id: str = CLIENT_ID) -> JWTClaimsRegistry:
    return JWTClaimsRegistry(
        iss={"essential": True, "value": op.issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        azp={"value": client_id},
    )


def verify(op: OidcProvider, id_token: str, nonce: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    token = jwt.decode(id_token, keys(op), algorithms=["RS256"])
    claims_registry(op, nonce, client_id).validate(token.claims)
    return token.claims


def test_discovery_through_the_proxy_names_the_proxy_as_issuer(op: OidcProvider) -> None:
    metadata = requests.get(op.discovery_url, timeout=10).json()
    assert metadata["issuer"] == op.issuer != op.node_url
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint"):
        assert metadata[endpoint].startswith(op.issuer + "/")
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert [key["kid"] for key in requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]] == [op.key.kid]


def test_login_returns_a_code_and_the_id_token_carries_the_configured_claims(op: OidcProvider) -> None:
    token, nonce, _ = sign_in(op)
    claims = verify(op, token["id_token"], nonce)
    assert claims["sub"] == "anna"
    assert claims["email"] == "anna@example.org" and claims["email_verified"] is True
    assert claims["name"] == "Anna Beispiel"
    assert claims["acr"] == "urn:test:acr:mfa" and claims["amr"] == ["pwd", "otp"]
    assert claims["sid"]
    assert op.token_log[-1] == (token["id_token"], token["id_token"])  # untouched without an attack

    other, other_nonce, _ = sign_in(op, "bert")
    claims = verify(op, other["id_token"], other_nonce)
    assert (claims["sub"], claims["email_verified"], claims["acr"]) == ("bert", False, "urn:test:acr:pwd")
    assert "amr" not in claims


def test_client_secret_post_clients_work_too(op: OidcProvider) -> None:
    token, nonce, _ = sign_in(op, client_id=POST_CLIENT_ID, secret=POST_SECRET, auth="client_secret_post")
    assert verify(op, token["id_token"], nonce, POST_CLIENT_ID)["aud"] == POST_CLIENT_ID


def test_an_unknown_user_is_refused_at_the_login_form(op: OidcProvider) -> None:
    client = OAuth2Session(CLIENT_ID, SECRET, scope="openid", redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    url, _ = client.create_authorization_url(op.metadata["authorization_endpoint"], code_verifier=generate_token(48))
    with pytest.raises(OidcProviderError, match="does not know the user 'mallory'"):
        op.login(requests.Session(), url, "mallory")


def test_pkce_is_required(op: OidcProvider) -> None:
    url = (
        op.metadata["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "client_id": CLIENT_ID,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": REDIRECT_URI,
                "state": "s",
            }
        )
    )
    location = op.login(requests.Session(), url, "anna")
    assert location.startswith(REDIRECT_URI + "?")
    assert parse_qs(urlsplit(location).query)["error"] == ["invalid_request"]


# Why joserfc refuses each forgery: the claims checks for those re-signed with the real key.
REFUSAL: dict[str, tuple[type[JoseError], str | None]] = {
    "wrong_issuer": (InvalidClaimError, "'iss'"),
    "wrong_audience": (InvalidClaimError, "'aud'"),
    "expired": (ExpiredTokenError, "expired"),
    "bad_signature": (BadSignatureError, None),
    "alg_none": (UnsupportedAlgorithmError, "'none'"),
    "hmac": (UnsupportedAlgorithmError, "'HS256'"),
    "foreign_key": (InvalidKeyIdError, "foreign-"),
    "foreign_key_same_kid": (BadSignatureError, None),
    "wrong_nonce": (InvalidClaimError, "'nonce'"),
    "wrong_azp": (InvalidClaimError, "'azp'"),
}
RESIGNED = {"wrong_issuer", "wrong_audience", "expired", "wrong_nonce", "wrong_azp"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_yields_an_id_token_that_verification_refuses(op: OidcProvider, attack: str) -> None:
    with op.attacking(attack):
        token, nonce, _ = sign_in(op)
    original, sent = op.token_log[-1]
    assert token["id_token"] == sent != original
    verify(op, original, nonce)  # the provider's own token passes: the refusal below is the forgery's
    error, reason = REFUSAL[attack]
    with pytest.raises(error, match=reason):
        verify(op, sent, nonce)
    if attack == "hmac":  # a verifier that took the header's word for the algorithm would accept it
        assert jwt.decode(sent, OctKey.import_key(SECRET), algorithms=["HS256"]).claims["sub"] == "anna"
    if attack in RESIGNED:
        # Signed with the provider's real key: only the claims checks can catch it.
        decoded = jwt.decode(sent, keys(op), algorithms=["RS256"])
        with pytest.raises(JoseError):
            claims_registry(op, nonce).validate(decoded.claims)
    assert op.attack is None  # attacking() restores the untouched pass-through
    with pytest.raises(ValueError, match="unknown attack"):
        op.attack = "typo"


def test_rp_initiated_logout_delivers_a_signed_logout_token(op: OidcProvider, receiver: BackchannelReceiver) -> None:
    token, nonce, browser = sign_in(op)
    sid = verify(op, token["id_token"], nonce)["sid"]
    end_session = (
        op.metadata["end_session_endpoint"]
        + "?"
        + urlencode({"id_token_hint": token["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "bye"})
    )
    live_app = BackchannelReceiver()  # stands in for a live app server that the receiver forwards to
    receiver.forward_to = live_app.url
    try:
        assert op.end_session(browser, end_session) == POST_LOGOUT_URI + "?state=bye"
        (logout_token,) = receiver.wait(1)
        assert live_app.wait(1) == [logout_token]
    finally:
        receiver.forward_to = None
        live_app.close()
    decoded = jwt.decode(logout_token, keys(op), algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    JWTClaimsRegistry(
        iss={"essential": True, "value": op.issuer},
        aud={"essential": True, "value": CLIENT_ID},
        iat={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["sub"] == "anna" and decoded.claims["sid"] == sid
    assert decoded.claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert "nonce" not in decoded.claims

    # The provider session is gone: the next authorization asks for the login again.
    client = OAuth2Session(CLIENT_ID, SECRET, scope="openid", redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    url, _ = client.create_authorization_url(op.metadata["authorization_endpoint"], code_verifier=generate_token(48))
    assert "Benutzer" in browser.get(url, timeout=10).text


def test_forged_logout_tokens_are_signed_with_the_real_key(op: OidcProvider) -> None:
    valid = jwt.decode(op.logout_token(CLIENT_ID, "anna", "sid-1"), keys(op), algorithms=["RS256"]).claims
    assert valid["events"] == {BACKCHANNEL_EVENT: {}} and valid["sid"] == "sid-1" and valid["iss"] == op.issuer
    forged = jwt.decode(
        op.logout_token(CLIENT_ID, "anna", omit=("events",), nonce="n", aud="other"), keys(op), algorithms=["RS256"]
    ).claims
    assert "events" not in forged and forged["nonce"] == "n" and forged["aud"] == "other" and "sid" not in forged
