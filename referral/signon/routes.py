"""The way in through an identity provider: start, callback, back-channel logout, and the provider's
logout after the tool's own. Thin views: the checks are in client.py, the rules in identities.py."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_security import login_user
from flask_security.utils import validate_redirect_url
from requests import RequestException

from ..audit.log import login_refused, record
from ..extensions import csrf
from . import client as openid
from .identities import identify
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


def _refusal(provider: Provider, kind: str):
    status, title, text = REFUSALS[kind]
    page = render_template(
        "signon/refused.html", title=title, text=text.format(label=provider.label), provider=provider
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


@blueprint.get("/login/oidc/<name>/callback")
def callback(name: str):
    provider, found = _provider(name)
    try:
        token = found.authorize_access_token()
        claims = token.get("userinfo")
        if claims is None:
            raise openid.SignOnError("no_id_token")
    except RequestException:
        current_app.logger.warning("identity provider %s unreachable at the code exchange", name)
        return _refusal(provider, "unreachable")
    except (openid.OAuthError, openid.JoseError, openid.SignOnError, ValueError, KeyError) as failure:
        reason = getattr(failure, "reason", None) or getattr(failure, "error", None) or type(failure).__name__
        current_app.logger.info("login through %s refused: %s", name, reason)
        login_refused(None, ["sso", provider.name, str(reason)[:40]])
        return _refusal(provider, "failed")
    verdict = identify(provider, claims)
    if verdict.user is None:
        return _refusal(provider, verdict.refusal)
    user = verdict.user
    next_url = session.pop("signon_next", "") or None
    # What the provider's logout needs later; the session is on the server and ends with the login.
    session["signon"] = {"provider": provider.name, "id_token": token["id_token"]}
    asserted = {claims.get("acr")} | set(claims.get("amr") or [])
    if not (provider.mfa_values & asserted):
        # No second factor asserted by the provider: the tool's own two-factor rules apply.
        second_factor = current_app.extensions["security"].two_factor_plugins.tf_enter(
            user, False, "oidc", next_loc=next_url
        )
        if second_factor:
            return second_factor
    login_user(user, authn_via=["oidc", provider.name])
    return redirect(next_url or url_for("home.index"))


@blueprint.post("/login/oidc/<name>/backchannel-logout")
@csrf.exempt  # called by the provider's server, with a signed token instead of a form of ours
def backchannel_logout(name: str):
    provider, found = _provider(name)
    try:
        subject = found.logout_subject(request.form.get("logout_token", ""))
    except RequestException:
        return {"error": "temporarily_unavailable"}, 503
    except (openid.JoseError, openid.SignOnError, ValueError, KeyError, TypeError) as failure:
        reason = getattr(failure, "reason", None) or type(failure).__name__
        current_app.logger.info("back-channel logout from %s refused: %s", name, reason)
        from .. import lifecycle

        record(
            "logout.backchannel_refused",
            object_type="sign_on",
            object_id=provider.name,
            role="",
            scope="",
            actor=None,
            fields=[str(reason)[:40]],
        )
        lifecycle.keep()
        return {"error": "invalid_request"}, 400
    from ..accounts.services import end_sessions
    from .identities import linked_account

    user = linked_account(provider, subject)
    if user is not None:
        end_sessions(user)  # every session of the person, on every server: their cookies name nothing now
        record("logout.backchannel", user, actor=user, object_type="user_account", fields=[provider.name])
    # Unknown subjects get the same answer: the provider learns nothing about the accounts here.
    response = current_app.make_response(("", 200))
    response.headers["Cache-Control"] = "no-store"
    return response


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
    app.register_blueprint(blueprint)
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
