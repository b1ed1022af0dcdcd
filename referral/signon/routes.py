"""The way in through an identity provider: start, callback, back-channel logout, and the provider's
logout after the tool's own. Thin views: the checks are in client.py, the rules in identities.py."""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_security import login_user, logout_user
from flask_security.utils import validate_redirect_url
from requests import RequestException

from ..audit.log import login_refused, record
from ..extensions import csrf
from . import client as openid
from .identities import complete_link, identify
from .settings import Provider

blueprint = Blueprint("signon", __name__)

# The page for each way a login through a provider ends without a session: (status, title, text).
ASK_ADMINISTRATION = (
    "Bitte wenden Sie sich an die Administration dieses Dienstes (Lehrkräfte über ihre Schulleitung, "
    "ASD-Fachkräfte über ihre Teamleitung) und nennen Sie die E-Mail-Adresse, mit der Sie sich bei {label} anmelden."
)
REFUSALS = {
    "failed": (
        400,
        "Anmeldung fehlgeschlagen",
        "Die Anmeldung über {label} konnte nicht bestätigt werden; Sie sind nicht angemeldet. Bitte beginnen Sie "
        "die Anmeldung noch einmal auf der Anmeldeseite. Wenn es wieder nicht klappt, wenden Sie sich an die "
        "Administration dieses Dienstes.",
    ),
    "unknown": (
        403,
        "Kein Konto verbunden",
        "Zu Ihrem Konto bei {label} gibt es in diesem Dienst kein Konto, oder der Anmeldedienst hat Ihre "
        "E-Mail-Adresse nicht als bestätigt übermittelt. Konten richtet nur die Administration ein. "
        + ASK_ADMINISTRATION,
    ),
    "other_identity": (
        403,
        "Konto schon verbunden",
        "Das Konto mit Ihrer E-Mail-Adresse ist schon mit einer anderen Kennung bei {label} verbunden. "
        + ASK_ADMINISTRATION,
    ),
    "inactive": (
        403,
        "Konto deaktiviert",
        "Ihr Konto in diesem Dienst ist deaktiviert. Die Anmeldung über {label} ändert daran nichts. "
        + ASK_ADMINISTRATION,
    ),
    "role": (
        403,
        "Anmeldung so nicht vorgesehen",
        "Mit Ihrer Rolle in diesem Dienst ist die Anmeldung über {label} nicht vorgesehen. Bitte nutzen Sie "
        "auf der Anmeldeseite den für Sie vorgesehenen Weg.",
    ),
    "unreachable": (
        503,
        "Anmeldedienst nicht erreichbar",
        "{label}: Der Anmeldedienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut.",
    ),
}


def _provider(name: str) -> tuple[Provider, openid.OpenIdClient]:
    found = openid.client(current_app, name)
    if found is None:
        abort(404)
    return found.provider, found


def _refusal(provider: Provider, kind: str, subject: str | None = None):
    status, title, text = REFUSALS[kind]
    # The person's own identifier at the provider, for the administration to link the account by it.
    shown = subject if kind in {"unknown", "other_identity"} else None
    page = render_template(
        "signon/refused.html", title=title, text=text.format(label=provider.label), provider=provider, subject=shown
    )
    response = current_app.make_response((page, status))
    if status == 503:
        response.headers["Retry-After"] = "60"
    return response


@blueprint.get("/login/oidc/<name>")
def start(name: str):
    provider, found = _provider(name)
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    next_url = request.args.get("next", "")
    session["signon_next"] = next_url if validate_redirect_url(next_url) else ""
    try:
        return found.authorize_redirect(url_for(".callback", name=provider.name, _external=True))
    except (RequestException, ValueError, openid.SignOnError):
        # No discovery document (or not the issuer's): say so; nobody got anywhere.
        current_app.logger.warning("identity provider %s unreachable or misconfigured at login start", name)
        return _refusal(provider, "unreachable")


def _reason(failure: Exception) -> str:
    """A fixed code for the audit entry: never text the provider or a caller chose."""
    if isinstance(failure, openid.SignOnError):
        return failure.reason
    if isinstance(failure, openid.OAuthError):
        return {"mismatching_state": "state", "invalid_grant": "code", "invalid_client": "client"}.get(
            failure.error, "provider_error"
        )
    return openid.REASONS.get(type(failure).__name__, "token")


def _asserted_second_factor(provider: Provider, claims) -> bool:
    acr = claims.get("acr")
    amr = claims.get("amr")
    asserted = {acr} if isinstance(acr, str) else set()
    if isinstance(amr, list):
        asserted |= {value for value in amr if isinstance(value, str)}
    return bool(provider.mfa_values & asserted)


@blueprint.get("/login/oidc/<name>/callback")
def callback(name: str):
    provider, found = _provider(name)
    if current_user.is_authenticated:
        logout_user()  # a login through the provider replaces whoever was signed in on this browser
    try:
        token = found.authorize_access_token()
        claims = token.get("userinfo")
        if claims is None:
            raise openid.SignOnError("no_id_token")
    except RequestException:
        current_app.logger.warning("identity provider %s unreachable at the code exchange", name)
        login_refused(None, ["sso", provider.name, "unreachable"])
        return _refusal(provider, "unreachable")
    except (openid.OAuthError, openid.JoseError, openid.SignOnError, ValueError, KeyError, TypeError) as failure:
        reason = _reason(failure)
        current_app.logger.info("login through %s refused: %s", name, reason)
        login_refused(None, ["sso", provider.name, reason])
        return _refusal(provider, "failed")
    verdict = identify(provider, claims)
    if verdict.user is None:
        return _refusal(provider, verdict.refusal, subject=claims["sub"])
    user = verdict.user
    next_url = session.pop("signon_next", "") or None
    # Until the login is complete (the tool's own second factor, where asked), the link by address and
    # the ID token (for the provider's logout) wait in the session: see `completed` below.
    session["signon_pending"] = {
        "provider": provider.name,
        "user": user.fs_uniquifier,
        "subject": claims["sub"],
        "link": verdict.link,
        "id_token": token["id_token"],
    }
    if not _asserted_second_factor(provider, claims):
        # No second factor asserted by the provider: the tool's own two-factor rules apply.
        second_factor = current_app.extensions["security"].two_factor_plugins.tf_enter(
            user, False, "oidc", next_loc=next_url
        )
        if second_factor:
            return second_factor
    login_user(user, authn_via=["oidc", provider.name])
    return redirect(next_url or url_for("home.index"))


def pending_for(user) -> dict | None:
    """The single sign-on waiting in this session for `user`'s login to complete, if any."""
    pending = session.get("signon_pending")
    return pending if pending and pending.get("user") == user.fs_uniquifier else None


def provider_of_login(user) -> str | None:
    """The provider through which `user` is logging in now (read by the audit's login entry, whichever
    of the two login receivers runs first: blinker keeps no order)."""
    pending = pending_for(user)
    current = pending or session.get("signon")
    return current["provider"] if current else None


def completed(sender, user, **extra) -> None:
    """Every completed login: a sign-on that waited for it is finished (link, ID token); any other
    login (a password on the same browser) leaves nothing of an abandoned one behind."""
    pending = pending_for(user)
    session.pop("signon_pending", None)
    session.pop("signon", None)
    if pending is None:
        return
    provider = current_app.config["OIDC_PROVIDERS"].get(pending["provider"])
    if provider is None:
        return
    if pending["link"]:
        complete_link(provider, user, pending["subject"])
    session["signon"] = {"provider": provider.name, "id_token": pending["id_token"]}


def _first_use(jti: str) -> bool:
    """Whether this logout token id is new; kept as long as such a token is accepted at all, in the
    store the sessions use (Redis with several servers), so that a replay is refused on every server."""
    key = f"referral-logout-jti:{hashlib.sha256(jti.encode()).hexdigest()}"
    seconds = openid.LOGOUT_TOKEN_MAX_AGE_SECONDS + openid.LEEWAY_SECONDS
    if current_app.config["SESSION_TYPE"] == "redis":
        return bool(current_app.config["SESSION_REDIS"].set(key, b"1", nx=True, ex=seconds))
    return bool(current_app.config["SESSION_CACHELIB"].add(key, 1, timeout=seconds))


def _logout_refused(provider: Provider, reason: str):
    from .. import lifecycle

    current_app.logger.info("back-channel logout from %s refused: %s", provider.name, reason)
    record(
        "logout.backchannel_refused",
        object_type="sign_on",
        object_id=provider.name,
        role="",
        scope="",
        actor=None,
        fields=[reason],
    )
    lifecycle.keep()
    return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}


@blueprint.post("/login/oidc/<name>/backchannel-logout")
@csrf.exempt  # called by the provider's server, with a signed token instead of a form of ours
def backchannel_logout(name: str):
    provider, found = _provider(name)
    try:
        subject, jti = found.logout_claims(request.form.get("logout_token", ""))
    except RequestException:
        return {"error": "temporarily_unavailable"}, 503, {"Cache-Control": "no-store"}
    except (openid.JoseError, openid.SignOnError, ValueError, KeyError, TypeError) as failure:
        return _logout_refused(provider, _reason(failure))
    if not _first_use(jti):
        return _logout_refused(provider, "logout_replay")
    from ..accounts.services import end_sessions
    from .identities import linked_account

    user = linked_account(provider, subject)
    if user is not None:
        end_sessions(user)  # every session of the person, on every server: their cookies name nothing now
        record("logout.backchannel", user, actor=user, object_type="user_account", fields=[provider.name])
    # Unknown subjects get the same answer: the provider learns nothing about the accounts here.
    return "", 200, {"Cache-Control": "no-store"}


def _logout_at_provider(view):
    """After the tool's own logout, the provider's (RP-initiated logout), where it offers one."""

    def logout():
        signed_on = session.pop("signon", None)
        response = view()
        if not signed_on or response.status_code >= 400:
            return response
        found = openid.client(current_app, signed_on.get("provider", ""))
        if found is None:
            return response
        try:
            metadata = found.load_server_metadata()
        except (RequestException, ValueError, openid.SignOnError):
            return response  # the tool's session has ended; the provider's ends with its own lifetime
        if not metadata.get("end_session_endpoint"):
            return response
        target = found.create_logout_url(
            post_logout_redirect_uri=url_for("security.login", _external=True),
            id_token_hint=signed_on.get("id_token"),
            client_id=found.client_id,
        )
        return redirect(target["url"])

    return logout


def register(app) -> None:
    from flask_security.signals import user_authenticated

    app.register_blueprint(blueprint)
    user_authenticated.connect(completed, app)
    openid.register(app)
    app.view_functions["security.logout"] = _logout_at_provider(app.view_functions["security.logout"])

    @app.after_request  # registered before Flask-Talisman's, so it runs after it and sees its header
    def allow_logout_at_provider(response):
        # The logout button is a form whose answer redirects to the provider's logout (RP-initiated
        # logout); browsers check form-action along the redirects, so the providers' origins are allowed.
        # Read per request: the providers are settings of the app, the header is Talisman's, shared.
        providers = app.config["OIDC_PROVIDERS"]
        policy = response.headers.get("Content-Security-Policy", "")
        if providers and "form-action 'self'" in policy:
            origins = " ".join(sorted({provider.origin for provider in providers.values()}))
            response.headers["Content-Security-Policy"] = policy.replace(
                "form-action 'self'", f"form-action 'self' {origins}", 1
            )
        return response

    @app.context_processor
    def sign_on_choices():
        from ..accounts.models import Role

        roles = app.config["LOCAL_LOGIN_ROLES"]
        return {
            "sign_on_providers": list(app.config["OIDC_PROVIDERS"].values()),
            # None: everyone may use a password; else the roles' names (an empty list: nobody).
            "local_login_roles": None if roles is None else [r.label for r in Role if r.value in roles],
        }
