"""Single sign-on through a real OpenID Provider (issue 14).

The provider is the OpenID-certified `oidc-provider` package from the npm registry, run by Node.js on a free
local port (tests/oidc_provider.py). The app is driven through the Flask test client; its requests to the
provider (discovery, keys, code exchange) are real HTTP. The user's browser at the provider is a
`requests.Session`. Forged ID tokens come from the provider's real token endpoint, tampered with on the way by
the harness's proxy, so each refusal below is the app's own check, not a missing response.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from referral.accounts.models import User
from referral.audit.models import AuditEntry
from referral.extensions import db
from referral.signon.models import SignOnIdentity
from referral.signon.settings import Provider

from . import factories
from .conftest import csrf_token
from .oidc_provider import ATTACKS, OTHER_CLIENT, OidcProvider, require_oidc_tools

SECRET = "geheimnis-des-clients-mit-mindestens-32-zeichen"
CALLBACK = "http://localhost/login/oidc/stadt/callback"
AFTER_LOGOUT = "http://localhost/login"
LABEL = "Mit dem Konto der Stadt anmelden"
USERS = {
    # The provider asserts a second factor ("otp") for this one, not for the others.
    "s-asd": {"email": "asd@test.example", "email_verified": True, "amr": ["pwd", "otp"], "acr": "urn:stadt:mfa"},
    "s-lead": {"email": "asd_lead@test.example", "email_verified": True, "amr": ["pwd"], "acr": "urn:stadt:pwd"},
    "s-unverified": {"email": "asd2@test.example", "email_verified": False},
    "s-stranger": {"email": "fremd@stadt.example", "email_verified": True},
    "s-hm": {"email": "asd_hm@test.example", "email_verified": True, "amr": ["pwd", "otp"]},
    "s-teacher": {"email": "teacher@test.example", "email_verified": True, "amr": ["pwd", "otp"]},
    "s-upper": {"email": "ASD@TEST.EXAMPLE", "email_verified": True, "amr": ["otp"]},
    # The Kelvin sign: Python lowers it to "k", so a naive comparison would find kim@test.example.
    "s-kelvin": {"email": "\u212aim@test.example", "email_verified": True, "amr": ["otp"]},
}


@pytest.fixture(scope="module")
def op():
    require_oidc_tools()
    provider = OidcProvider(users=USERS)
    provider.receiver = provider.backchannel_receiver()
    provider.add_client(
        "referral",
        SECRET,
        [CALLBACK],
        post_logout_redirect_uris=[AFTER_LOGOUT],
        backchannel_logout_uri=provider.receiver.url,
    )
    # Another relying party of the same provider: its codes must not work for this app.
    provider.add_client(OTHER_CLIENT, "secret-of-the-other-client-with-32-chars", [CALLBACK])
    with provider:
        yield provider


@pytest.fixture
def city(app, op, world):
    """The app with the provider configured (the app fixture puts the settings back afterwards)."""
    provider = Provider("stadt", op.issuer, "referral", SECRET, LABEL, frozenset({"otp"}), None)
    app.config["OIDC_PROVIDERS"] = {"stadt": provider}
    op.receiver.clear()
    return provider


def authorize(client, path="/login/oidc/stadt") -> str:
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.startswith("http://127.0.0.1:")
    return response.location


def back_at_the_app(client, op, sub: str, http: requests.Session | None = None, authorize_url: str | None = None):
    """Through the provider's login as `sub`, back to the app's callback; the app's answer."""
    http = http or requests.Session()
    callback = urlsplit(op.login(http, authorize_url or authorize(client), sub))
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == CALLBACK
    return client.get(f"{callback.path}?{callback.query}")


def signed_in(client) -> bool:
    response = client.get("/")  # signed in: sent on to the start page of the role
    assert response.status_code == 302, response.status_code
    return urlsplit(response.location).path not in {"/login", "/tf-setup", "/tf-validate"}


def signed_in_as(client) -> str | None:
    """The e-mail address of the account the client is signed in as (from the session), or None."""
    with client.session_transaction() as session:
        uniquifier = session.get("_user_id")
    if not uniquifier or not signed_in(client):
        return None
    return db.session.scalar(select(User.email).where(User.fs_uniquifier == uniquifier))


def entries(action: str) -> list[list]:
    db.session.expire_all()
    return [e.fields for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == action))]


def identities() -> list[tuple[str, str, str]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(User.email, SignOnIdentity.subject, SignOnIdentity.linked_by).join(SignOnIdentity.user)
    )
    return sorted(tuple(row) for row in rows)


# --- Logging in ------------------------------------------------------------------------------------------


def test_the_login_page_shows_the_provider_first_and_the_password_form_only_for_the_allowed_roles(app, client, city):
    page = client.get("/login").get_data(as_text=True)
    assert LABEL in page and page.index(LABEL) < page.index('name="password"')
    assert 'href="/login/oidc/stadt"' in page
    assert "Nur für" not in page  # LOCAL_LOGIN_ROLES unset: everyone may still use a password
    app.config["LOCAL_LOGIN_ROLES"] = frozenset({"admin"})
    page = client.get("/login").get_data(as_text=True)
    assert "Nur für: Administration." in page and 'name="password"' in page
    app.config["LOCAL_LOGIN_ROLES"] = frozenset()
    page = client.get("/login").get_data(as_text=True)
    assert LABEL in page and 'name="password"' not in page


def test_without_providers_the_login_page_is_as_before(client, world):
    page = client.get("/login").get_data(as_text=True)
    assert "Dienstkonto" not in page and 'name="password"' in page


def test_a_first_login_links_the_invited_account_by_its_verified_address(client, op, city, world):
    response = back_at_the_app(client, op, "s-asd")
    assert response.status_code == 302 and urlsplit(response.location).path == "/"
    assert signed_in_as(client) == "asd@test.example"
    assert identities() == [("asd@test.example", "s-asd", "email")]
    assert entries("user.link_sign_on") == [["email", "stadt"]]
    assert entries("login.success") == [["oidc", "stadt"]]
    # The provider's identity only: no e-mail, name, claims or tokens in the database.
    assert not db.session.scalar(select(func.count()).select_from(SignOnIdentity).where(SignOnIdentity.subject == ""))


def test_a_later_login_goes_by_issuer_and_subject_not_by_the_address(client, op, city, world, as_user):
    # The admin linked s-teacher (whose address at the provider is the teacher's) to the coordinator.
    admin = as_user(world.admin)
    response = admin.post(
        f"/admin/users/{world.coordinator.id}/sign-on",
        data={"provider": "stadt", "subject": "s-teacher", "csrf_token": csrf_token(admin, "/")},
    )
    assert response.status_code == 302
    assert identities() == [("coordinator@test.example", "s-teacher", "admin")]
    assert entries("user.link_sign_on") == [["admin", "stadt"]]
    back_at_the_app(client, op, "s-teacher")
    assert signed_in_as(client) == "coordinator@test.example"


def test_an_unknown_identity_gets_a_german_page_saying_whom_to_ask(client, op, city, world):
    response = back_at_the_app(client, op, "s-stranger")
    text = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "Kein Konto verbunden" in text and "Administration" in text and "Schulleitung" in text
    assert not signed_in(client) and identities() == []
    assert ["sso", "stadt", "unknown"] in entries("login.failure")


def test_an_unverified_address_links_nothing(client, op, city, world):
    response = back_at_the_app(client, op, "s-unverified")
    assert response.status_code == 403 and "Kein Konto verbunden" in response.get_data(as_text=True)
    assert not signed_in(client) and identities() == []
    assert ["sso", "stadt", "unverified"] in entries("login.failure")


def test_a_deactivated_account_stays_refused_whatever_the_provider_says(client, op, city, world):
    world.asd_hm.active = False
    db.session.commit()
    response = back_at_the_app(client, op, "s-hm")
    assert response.status_code == 403 and "Konto deaktiviert" in response.get_data(as_text=True)
    assert not signed_in(client)
    assert ["active", "sso", "stadt"] in entries("login.failure")


def test_a_provider_only_for_some_roles_refuses_the_others(client, op, city, world, app):
    app.config["OIDC_PROVIDERS"] = {"stadt": Provider(**{**city.__dict__, "roles": frozenset({"asd_worker"})})}
    response = back_at_the_app(client, op, "s-teacher")
    assert response.status_code == 403 and "nicht vorgesehen" in response.get_data(as_text=True)
    assert not signed_in(client) and identities() == []
    assert ["role", "sso", "stadt"] in entries("login.failure")


def test_a_second_factor_asserted_by_the_provider_replaces_the_tools_own(client, op, city, world, app):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True
    response = back_at_the_app(client, op, "s-asd")  # amr holds "otp"
    assert urlsplit(response.location).path == "/"
    assert signed_in_as(client) == "asd@test.example"


def test_without_an_asserted_second_factor_the_tools_own_rules_apply(client, op, city, world, app):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True
    response = back_at_the_app(client, op, "s-lead")  # amr: password only
    assert response.status_code == 302 and urlsplit(response.location).path == "/tf-setup"
    assert client.get("/referrals").status_code == 302, "nothing is reachable before the second factor"
    assert signed_in_as(client) is None


def test_the_page_asked_for_before_the_login_follows_it(client, op, city, world):
    response = back_at_the_app(
        client, op, "s-asd", authorize_url=authorize(client, "/login/oidc/stadt?next=/notifications")
    )
    assert urlsplit(response.location).path == "/notifications"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    response = back_at_the_app(
        client, op, "s-asd", authorize_url=authorize(client, "/login/oidc/stadt?next=https://evil.example/")
    )
    assert urlsplit(response.location).netloc in {"", "localhost"}, "no redirect to another site after the login"


def test_local_login_roles_send_everyone_else_to_the_provider(client, city, world, app):
    app.config["LOCAL_LOGIN_ROLES"] = frozenset({"admin"})
    for user, allowed in ((world.teacher, False), (world.admin, True)):
        client.post("/logout", data={"csrf_token": csrf_token(client, "/login")})
        response = client.post(
            "/login",
            data={"email": user.email, "password": factories.PASSWORD, "csrf_token": csrf_token(client, "/login")},
        )
        if allowed:
            assert signed_in(client)
        else:
            text = response.get_data(as_text=True)
            assert not signed_in(client)
            # The same answer as for a wrong password (no oracle); the page says who may use a password.
            assert "E-Mail-Adresse oder Passwort ist falsch." in text and "Nur für: Administration." in text
            assert LABEL in text
    assert [world.teacher.id] == [
        int(e.object_id)
        for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login.failure"))
        if "local_login" in e.fields
    ]


def test_an_unreachable_provider_is_a_german_503(client, world, app):
    with socket_closed() as port:
        app.config["OIDC_PROVIDERS"] = {
            "stadt": Provider("stadt", f"http://127.0.0.1:{port}", "referral", SECRET, LABEL, frozenset(), None)
        }
        response = client.get("/login/oidc/stadt")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "Der Anmeldedienst ist gerade nicht erreichbar" in response.get_data(as_text=True)


class socket_closed:
    """A local port on which nothing listens."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None


# --- Attacks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_forged_id_token_is_refused(client, op, city, world, attack):
    with op.attacking(attack):
        response = back_at_the_app(client, op, "s-asd")
    assert op.token_log and op.token_log[-1][0] != op.token_log[-1][1], "the harness did not tamper"
    assert response.status_code == 400
    assert "Anmeldung fehlgeschlagen" in response.get_data(as_text=True)
    assert not signed_in(client) and identities() == []
    assert any({"sso", "stadt"} <= set(f) for f in entries("login.failure"))
    assert entries("login.success") == []


def test_a_replayed_state_is_refused(client, op, city, world):
    http = requests.Session()
    callback = urlsplit(op.login(http, authorize(client), "s-asd"))
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    replay = client.get(f"{callback.path}?{callback.query}")
    assert replay.status_code == 400 and not signed_in(client)
    other_browser = client.application.test_client()
    assert other_browser.get(f"{callback.path}?{callback.query}").status_code == 400
    assert not signed_in(other_browser)


def test_a_code_issued_to_another_client_is_refused(client, op, city, world):
    ours = authorize(client)
    query = parse_qs(urlsplit(ours).query)
    query["client_id"] = [OTHER_CLIENT]  # the same request, state and PKCE challenge, for the other client
    theirs = urlsplit(ours)._replace(
        query="&".join(f"{k}={requests.utils.quote(v[0], safe='')}" for k, v in query.items())
    )
    response = back_at_the_app(client, op, "s-asd", authorize_url=theirs.geturl())
    assert response.status_code == 400 and not signed_in(client)
    assert identities() == []


def test_new_keys_of_the_provider_are_fetched_again_at_most_once_a_minute(client, op, city, world, app):
    """Key rotation: the app holds an old key set; a token signed with a key it does not know yet makes it
    fetch the provider's keys again. Not more than once a minute: forged key ids must not make the server
    fetch for every request."""
    from referral.signon.client import client as openid_client

    stale = RSAKey.generate_key(2048, parameters={"kid": "alt"}, private=False)
    with app.test_request_context():
        found = openid_client(app, "stadt")
        found.load_server_metadata()
        found.server_metadata["jwks"] = {"keys": [stale.as_dict(private=False)]}
        found._refetched_at = 0.0
    back_at_the_app(client, op, "s-asd")
    assert signed_in_as(client) == "asd@test.example"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    found.server_metadata["jwks"] = {"keys": [stale.as_dict(private=False)]}  # rotated again, at once
    response = back_at_the_app(client, op, "s-asd")
    assert response.status_code == 400 and signed_in_as(client) is None
    assert ["key", "sso", "stadt"] in entries("login.failure")
    found._refetched_at = 0.0  # a minute later
    back_at_the_app(client, op, "s-asd")
    assert signed_in_as(client) == "asd@test.example"


# --- Logging out -----------------------------------------------------------------------------------------


def test_logging_out_ends_the_provider_session_too(client, op, city, world):
    http = requests.Session()
    back_at_the_app(client, op, "s-asd", http)
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert not signed_in(client)
    end_session = urlsplit(response.location)
    assert f"{end_session.scheme}://{end_session.netloc}" == op.issuer
    query = parse_qs(end_session.query)
    assert query["post_logout_redirect_uri"] == [AFTER_LOGOUT] and query["id_token_hint"]
    assert op.end_session(http, response.location).startswith(AFTER_LOGOUT)
    # The provider's session has ended: the next login at the provider asks again (a login form, not a code).
    again = http.get(authorize(client), allow_redirects=True, timeout=10)
    assert 'name="login"' in again.text
    with client.session_transaction() as session:
        assert "signon" not in session, "the ID token left with the login"


def test_a_password_login_logs_out_only_here(client, world, city, login):
    login(world.teacher)
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert urlsplit(response.location).path == "/login" and not urlsplit(response.location).netloc.startswith("127")


def test_the_providers_back_channel_logout_ends_every_session_of_the_person(client, op, city, world, app):
    http = requests.Session()
    back_at_the_app(client, op, "s-asd", http)
    second = app.test_client()
    second.post(
        "/login",
        data={"email": world.asd.email, "password": factories.PASSWORD, "csrf_token": csrf_token(second, "/login")},
    )
    assert signed_in(client) and signed_in(second)
    # The person logs out at the provider (from another application): the provider calls the app's server.
    op.end_session(http, op.metadata["end_session_endpoint"])
    (token,) = op.receiver.wait(1)
    response = app.test_client().post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 200
    assert not signed_in(client) and not signed_in(second)
    assert entries("logout.backchannel") == [["stadt"]]


@pytest.mark.parametrize(
    "forgery",
    [
        {"omit": ("events",)},
        {"events": {"http://schemas.openid.net/event/other": {}}},
        {"nonce": "n-0S6_WzA2Mj"},
        {"aud": OTHER_CLIENT},
        {"iss": "http://127.0.0.1:1"},
        {"iat": 1_000_000_000, "exp": 1_000_000_120},
        {"omit": ("sub",)},
        {"foreign_key": True},
    ],
    ids=lambda f: "-".join(f),
)
def test_a_forged_logout_token_ends_nothing(client, op, city, world, app, forgery):
    back_at_the_app(client, op, "s-asd")
    forgery = dict(forgery)
    key = RSAKey.generate_key(2048, parameters={"kid": op.key.kid}) if forgery.pop("foreign_key", False) else None
    token = op.logout_token("referral", "s-asd", key=key, **forgery)
    response = app.test_client().post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 400 and response.json == {"error": "invalid_request"}
    assert signed_in(client)
    assert len(entries("logout.backchannel_refused")) == 1 and entries("logout.backchannel") == []


def test_a_back_channel_logout_for_an_unknown_person_answers_alike(client, op, city, world, app):
    token = op.logout_token("referral", "s-niemand")
    response = app.test_client().post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 200 and entries("logout.backchannel") == []


# --- The admin's account page ----------------------------------------------------------------------------


def test_the_admin_sees_links_and_unlinks_them(client, op, city, world, as_user):
    back_at_the_app(client, op, "s-asd")
    admin = as_user(world.admin)
    page = admin.get(f"/admin/users/{world.asd.id}").get_data(as_text=True)
    assert "Anmeldedienste" in page and "bestätigte E-Mail-Adresse" in page and LABEL in page
    identity = db.session.scalar(select(SignOnIdentity))
    response = admin.post(
        f"/admin/users/{world.asd.id}/sign-on/{identity.id}/delete", data={"csrf_token": csrf_token(admin, "/")}
    )
    assert response.status_code == 302 and identities() == []
    assert entries("user.unlink_sign_on") == [["stadt"]]


def test_the_admin_cannot_link_an_identity_twice(client, op, city, world, as_user):
    back_at_the_app(client, op, "s-asd")
    admin = as_user(world.admin)
    response = admin.post(
        f"/admin/users/{world.coordinator.id}/sign-on",
        data={"provider": "stadt", "subject": "s-asd", "csrf_token": csrf_token(admin, "/")},
    )
    assert response.status_code == 422
    assert "schon mit einem Konto verbunden" in response.get_data(as_text=True)
    assert 'value="s-asd"' in response.get_data(as_text=True), "what the admin typed is kept"
    assert identities() == [("asd@test.example", "s-asd", "email")]


# --- What the review found -------------------------------------------------------------------------------


def test_the_link_waits_for_the_tools_own_second_factor(client, op, city, world, app):
    """Someone who controls the address at the provider but not the authenticator links nothing."""
    from .test_two_factor import code_for

    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True
    response = back_at_the_app(client, op, "s-lead")  # no second factor asserted: the tool asks its own
    assert urlsplit(response.location).path == "/tf-setup"
    assert identities() == [] and entries("user.link_sign_on") == []
    page = client.post("/tf-setup", data={"setup": "authenticator", "csrf_token": csrf_token(client, "/tf-setup")})
    key = re.search(r"<div>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3,})</div>", page.get_data(as_text=True)).group(1)
    done = client.post("/tf-validate", data={"code": code_for(key), "csrf_token": csrf_token(client, "/tf-setup")})
    assert done.status_code == 302 and signed_in_as(client) == "asd_lead@test.example"
    assert identities() == [("asd_lead@test.example", "s-lead", "email")]
    assert entries("login.success") == [["oidc", "stadt"]], "an SSO login is recorded as one, also after the code"
    with client.session_transaction() as session:
        assert session["signon"]["provider"] == "stadt" and "signon_pending" not in session


def test_an_abandoned_sign_on_leaves_nothing_for_the_next_person(client, op, city, world, app, login):
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = True
    back_at_the_app(client, op, "s-lead")  # stops at the tool's second factor; the person walks away
    app.config["SECURITY_TWO_FACTOR_REQUIRED"] = False
    login(world.teacher)  # the next person on the same browser, with a password
    with client.session_transaction() as session:
        assert "signon" not in session and "signon_pending" not in session
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert urlsplit(response.location).netloc in {"", "localhost"}, "no logout at the provider with another's token"
    assert identities() == []


def test_a_sign_on_replaces_whoever_was_signed_in(client, op, city, world):
    started = authorize(client)  # then someone else logs in with a password on the same browser
    client.post(
        "/login",
        data={"email": world.teacher.email, "password": factories.PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert signed_in_as(client) == "teacher@test.example"
    back_at_the_app(client, op, "s-asd", authorize_url=started)
    assert signed_in_as(client) == "asd@test.example"
    db.session.expire_all()
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "logout", AuditEntry.actor_id == world.teacher.id)
        )
        == 1
    )


def test_an_error_from_the_provider_is_recorded_by_a_fixed_code(client, city, world):
    response = client.get("/login/oidc/stadt/callback?error=access_denied&error_description=%3Cscript%3Eboese")
    assert response.status_code == 400 and "<script>boese" not in response.get_data(as_text=True)
    assert entries("login.failure") == [["provider_error", "sso", "stadt"]]
    client.get("/login/oidc/stadt/callback?code=x&state=ausgedacht")
    assert ["sso", "stadt", "state"] in entries("login.failure")


def test_addresses_are_compared_in_plain_ascii_only(client, op, city, world):
    factories.user("kim@test.example", "Kim Kelvin", (factories.Role.ASD_WORKER, world.districts["we"]))
    db.session.commit()
    response = back_at_the_app(client, op, "s-kelvin")
    assert response.status_code == 403 and identities() == []
    back_at_the_app(client, op, "s-upper")  # capitals are the same address
    assert signed_in_as(client) == "asd@test.example"


@pytest.mark.parametrize(
    "forgery",
    [{"omit": ("exp",)}, {"header": {"typ": "JWT"}}, {"iat": "old"}],
    ids=["without-exp", "typ-jwt", "iat-older-than-5-minutes"],
)
def test_more_forged_logout_tokens_end_nothing(client, op, city, world, app, forgery):
    import time

    back_at_the_app(client, op, "s-asd")
    forgery = dict(forgery)
    if forgery.get("iat") == "old":
        forgery["iat"] = int(time.time()) - 400  # exp (iat + 120 by default) is set explicitly below
        forgery["exp"] = int(time.time()) + 60
    token = op.logout_token("referral", "s-asd", **forgery)
    response = app.test_client().post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 400 and response.headers["Cache-Control"] == "no-store"
    assert signed_in(client)


def test_a_replayed_logout_token_is_refused(client, op, city, world, app):
    back_at_the_app(client, op, "s-asd")
    token = op.logout_token("referral", "s-asd")
    server = app.test_client()
    assert server.post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token}).status_code == 200
    assert not signed_in(client)
    back_at_the_app(client, op, "s-asd")
    assert server.post("/login/oidc/stadt/backchannel-logout", data={"logout_token": token}).status_code == 400
    assert signed_in(client)
    assert entries("logout.backchannel_refused") == [["logout_replay"]]


def test_callbacks_and_logout_tokens_are_limited_per_address(client, city, world, app):
    app.config["SIGN_ON_REQUESTS_PER_ADDRESS"] = "3 per minute"
    answers = [
        client.post("/login/oidc/stadt/backchannel-logout", data={"logout_token": "x"}).status_code for _ in range(4)
    ]
    assert answers == [400, 400, 400, 429]
    assert len(entries("logout.backchannel_refused")) == 3


def test_unlinking_ends_the_persons_sessions_and_tells_them(client, op, city, world, as_user, outbox):
    back_at_the_app(client, op, "s-asd")
    identity = db.session.scalar(select(SignOnIdentity))
    admin = as_user(world.admin)
    admin.post(f"/admin/users/{world.asd.id}/sign-on/{identity.id}/delete", data={"csrf_token": csrf_token(admin, "/")})
    assert not signed_in(client)
    subjects = [m.subject for m in outbox if m.to == ["asd@test.example"]]
    assert subjects == [
        "Anmeldedienst verbunden – Mitteilungen Schule-ASD",
        "Verbindung zum Anmeldedienst gelöst – Mitteilungen Schule-ASD",
    ]
