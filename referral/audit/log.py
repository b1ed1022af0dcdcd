"""Writing audit entries. `record()` adds an entry to the current transaction; it joins the chain
when that transaction commits: if the event's change is rolled back, so is its entry, and if the
entry cannot be written, the change fails.

What is recorded (PROCESS.md, "Audit log"): logins (success, failure), logouts, every view of a
referral, downloads and exports, every change and transition of a referral, permission denials, and
every change to users, schools, districts and settings. Field names only, never their values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import g, has_request_context, request
from flask_login import current_user, user_logged_out
from flask_security import FormInfo, LoginForm
from flask_security.signals import (
    password_changed,
    password_reset,
    tf_code_confirmed,
    tf_disabled,
    tf_profile_changed,
    user_authenticated,
    user_failed_authn,
)
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from .. import lifecycle
from ..extensions import db
from ..timeutil import utcnow
from . import chain
from .models import AuditEntry

# Readable names of the recorded actions (admin's change list, coordinator's search).
ACTION_LABELS = {
    "login.success": "Anmeldung",
    "login.failure": "Fehlgeschlagene Anmeldung",
    "logout": "Abmeldung",
    "access.denied": "Zugriff verweigert",
    "referral.view": "Mitteilung angesehen",
    "referral.edit": "Entwurf gespeichert",
    "referral.submit": "Mitteilung eingereicht",
    "referral.delete": "Entwurf gelöscht",
    "referral.acknowledge": "Eingang bestätigt",
    "referral.transfer": "An anderen Bezirk abgegeben",
    "referral.take_over": "Übernommen",
    "referral.assign": "Zugewiesen",
    "referral.ask": "Rückfrage gestellt",
    "referral.answer": "Rückfrage beantwortet",
    "referral.addendum": "Nachtrag",
    "referral.reassign": "Neu zugewiesen",
    "referral.record_assessment": "Gefährdungseinschätzung erfasst",
    "referral.give_feedback": "Rückmeldung gegeben",
    "referral.close": "Abgeschlossen",
    "referral.access_history": "Zugriffsprotokoll angesehen",
    "attachment.add": "Anhang hinzugefügt",
    "attachment.delete": "Anhang entfernt",
    "attachment.download": "Anhang heruntergeladen",
    "referral.export_pdf": "PDF exportiert",
    "referral.purge": "Daten gelöscht (Aufbewahrungsfrist)",
    "user.create": "Konto mit Passwort angelegt (Konsole)",
    "user.invite": "Person eingeladen",
    "user.invite_again": "Einladung erneut gesendet",
    "user.accept_invitation": "Einladung angenommen (Passwort gesetzt)",
    "user.change_password": "Passwort geändert",
    "user.reset_password": "Passwort über den E-Mail-Link neu gesetzt",
    "user.setup_two_factor": "Zwei-Faktor-Anmeldung eingerichtet",
    "user.disable_two_factor": "Zwei-Faktor-Anmeldung abgeschaltet",
    "user.update": "Konto geändert",
    "user.deactivate": "Konto deaktiviert",
    "user.reactivate": "Konto reaktiviert",
    "user.reset_two_factor": "Zwei-Faktor-Anmeldung zurückgesetzt",
    "user.end_sessions": "Sitzungen beendet",
    "user.link_sign_on": "Anmeldedienst verbunden",
    "user.unlink_sign_on": "Verbindung zum Anmeldedienst gelöst",
    "api_client.webhook": "Webhook eines API-Zugangs geändert",
    "logout.backchannel": "Abmeldung durch den Anmeldedienst",
    "logout.backchannel_refused": "Abmeldung durch den Anmeldedienst abgelehnt",
    "user.email_choices": "E-Mail-Benachrichtigungen geändert",
    "membership.add": "Rolle hinzugefügt",
    "membership.remove": "Rolle entfernt",
    "district.create": "Bezirk angelegt",
    "district.update": "Bezirk geändert",
    "school.create": "Schule angelegt",
    "school.update": "Schule geändert",
    "settings.update": "Fristen geändert",
    "export.users": "Kontenliste exportiert",
    "contact.create": "Ansprechperson eingetragen",
    "contact.update": "Ansprechperson geändert",
    "contact.delete": "Ansprechperson entfernt",
    "export.audit": "Protokoll exportiert",
    "audit.verify": "Protokollkette geprüft",
    "export.evaluation": "Auswertung exportiert (CSV)",
    "evaluation.print": "Auswertung gedruckt",
    "survey.open_round": "Quartalsumfrage geöffnet",
    "survey.read_comments": "Freitextantworten der Umfrage gelesen",
    "consultation.view": "Fachberatung angesehen",
    "consultation.request": "Fachberatung angefragt",
    "consultation.cancel": "Fachberatung zurückgezogen",
    "consultation.accept": "Fachberatung angenommen",
    "consultation.arrange": "Beratungstermin vereinbart",
    "consultation.answer": "Empfehlung erfasst",
    "consultation.start_referral": "Mitteilung aus Fachberatung begonnen",
    "consultation.purge": "Fachberatung gelöscht (Aufbewahrungsfrist)",
    "api.call": "Aufruf der Schnittstelle (Fachsoftware)",
    "referral.case_reference": "Aktenzeichen der Fachsoftware eingetragen (API)",
    "api_client.create": "API-Zugang angelegt",
    "api_client.update": "API-Zugang geändert (Bezirke, Berechtigungen)",
    "api_client.rotate": "Schlüssel eines API-Zugangs erneuert",
    "api_client.revoke": "API-Zugang widerrufen",
    "guide.publish": "Neue Version des Leitfadens veröffentlicht",
}
# The admin's change list shows these: changes to accounts, organisation and settings.
ADMIN_ACTIONS = {
    a
    for a in ACTION_LABELS
    if a.split(".")[0] in {"user", "membership", "district", "school", "settings", "contact", "api_client"}
    or a == "export.users"
}


def request_id() -> str:
    if not has_request_context():
        return ""
    if "request_id" not in g:
        g.request_id = str(uuid.uuid4())
    return g.request_id


def changed_fields(obj) -> list[str]:
    """Names of the attributes of `obj` changed in this transaction (names only, never values)."""
    state = inspect(obj)
    return sorted(attr.key for attr in state.attrs if attr.history.has_changes())


def _where(obj) -> tuple[int | None, int | None]:
    """The school and district an object belongs to, for the coordinator's search."""
    school_id = getattr(obj, "school_id", None)
    district_id = getattr(obj, "district_id", None)
    if obj is not None and obj.__tablename__ == "school":
        school_id = obj.id
    if obj is not None and obj.__tablename__ == "district":
        district_id = obj.id
    return school_id, district_id


def role_used(user, obj=None) -> tuple[str, str]:
    """The membership that let `user` act on `obj`: its role and scope."""
    if user is None:
        return "", ""
    school_id, district_id = _where(obj)
    memberships = list(user.memberships)
    for m in memberships:
        if (school_id and m.school_id == school_id) or (
            district_id and m.district_id == district_id and m.school_id is None
        ):
            return m.role.value, m.scope_label[:60]
    if memberships:
        return memberships[0].role.value, memberships[0].scope_label[:60]
    return "", ""


def record(
    action: str,
    obj=None,
    *,
    object_type: str = "",
    object_id=None,
    fields: Iterable[str] = (),
    role: str | None = None,
    scope: str | None = None,
    actor=None,
    school_id: int | None = None,
    district_id: int | None = None,
) -> AuditEntry:
    if obj is not None:
        object_type = object_type or obj.__tablename__
        if object_id is None:
            if inspect(obj).pending:
                db.session.flush([obj])  # a new object needs its id for the entry
            object_id = inspect(obj).identity[0]
        found_school, found_district = _where(obj)
        school_id, district_id = school_id or found_school, district_id or found_district
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user._get_current_object()
    if role is None:
        role, used_scope = role_used(actor, obj)
        scope = used_scope if scope is None else scope
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_role=role or "",
        actor_scope=scope or "",
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id)[:40],
        school_id=school_id,
        district_id=district_id,
        fields=sorted(set(fields)),
        request_id=request_id(),
    )
    return chain.append(entry)


# --- Hooks: logins, logouts, self-service account changes -------------------------------------------
# Receivers never commit: the entry belongs to the request's transaction, which the request lifecycle
# commits at its end (referral/lifecycle.py). A refusal's entry is kept although the response is an error.


def _account_event(action: str, user, fields: Iterable[str] = ()) -> None:
    """A change to one's own account: the owner is the actor (signed in, or holding the mailed link)."""
    record(action, user, actor=user, object_type="user_account", fields=fields)


def _login_succeeded(sender, user, authn_via=None, **extra) -> None:
    # How, where it was not the password: "oidc" and the provider's name for a single sign-on (also
    # when the tool's own second factor completed it: Flask-Security then names no way).
    fields = [] if authn_via in (None, ["password"]) else list(authn_via)
    if not fields and has_request_context():
        from ..signon.routes import provider_of_login

        if provider := provider_of_login(user):
            fields = ["oidc", provider]
    _account_event("login.success", user, fields)


def _logged_out(sender, user, **extra) -> None:
    if user is not None and getattr(user, "is_authenticated", False):
        _account_event("logout", user)


def login_refused(user, fields: Iterable[str] = ()) -> None:
    """A failed login. No actor (nobody is signed in); an unknown address is not stored, it may be a
    mistyped real name. `fields` names what failed (password, code, active), never what was typed."""
    record(
        "login.failure",
        object_type="user_account",
        object_id=user.id if user is not None else "unbekannt",
        role="",
        scope="",
        actor=None,
        fields=fields,
    )
    if has_request_context():
        lifecycle.keep()


def _authentication_failed(sender, user, auth_type: str = "", tfa: bool = False, **extra) -> None:
    # Flask-Security: a wrong password (auth_type "password") or a wrong second-factor code ("code").
    login_refused(user, [auth_type] if auth_type else [])


class AuditedLoginForm(LoginForm):
    """Flask-Security's login form; the refusals it does not signal are recorded here: an address
    without an account, and the right password for a deactivated account."""

    def validate(self, **kwargs) -> bool:
        if super().validate(**kwargs):
            return True
        user = getattr(self, "user", None)
        if user is None and (self.email.data or "").strip() and self.password.data:
            login_refused(None)
        elif user is not None and getattr(self, "user_authenticated", False):
            login_refused(user, ["active"] if not user.is_active else [])
        return False


def _password_changed(sender, user, **extra) -> None:
    _account_event("user.change_password", user, ["password"])


def _password_reset(sender, user, **extra) -> None:
    _account_event("user.reset_password", user, ["password"])


TWO_FACTOR_FIELDS = {"tf_primary_method", "tf_totp_secret"}


def _two_factor_confirmed(sender, user, method=None, **extra) -> None:
    # Sent for every login with a code; only the first one after setting up changes the stored method/key.
    fields = TWO_FACTOR_FIELDS & set(changed_fields(user))
    if fields:
        _account_event("user.setup_two_factor", user, fields)


def _two_factor_changed(sender, user, method=None, **extra) -> None:
    _account_event("user.setup_two_factor", user, TWO_FACTOR_FIELDS & set(changed_fields(user)) or TWO_FACTOR_FIELDS)


def _two_factor_disabled(sender, user, **extra) -> None:
    _account_event("user.disable_two_factor", user, sorted(TWO_FACTOR_FIELDS))


def _collect_changes(session, flush_context, instances) -> None:
    """Before each flush: the names of what changes on referrals and their parts, kept until the
    referral's action is recorded (autoflush may write parts of an action before the action itself)."""
    from ..cases.models import Referral, StateChange

    pending = session.info.setdefault("audit_changes", {})
    for kind, objects in (("new", session.new), ("dirty", session.dirty), ("deleted", session.deleted)):
        for obj in objects:
            if isinstance(obj, StateChange) or getattr(obj, "audit_ignored", False):
                continue
            if isinstance(obj, Referral):
                key, names = id(obj), {n for n in changed_fields(obj) if n not in {"version", "updated_at"}}
            else:
                owner = inspect(obj).dict.get("referral")
                if owner is None and getattr(obj, "referral_id", None) is None:
                    continue
                key = id(owner) if owner is not None else ("id", obj.referral_id)
                table = obj.__tablename__
                names = (
                    {f"{table}.{n}" for n in changed_fields(obj)}
                    if kind == "dirty"
                    else {f"{table} ({'neu' if kind == 'new' else 'entfernt'})"}
                )
            pending.setdefault(key, set()).update(names)


def _forget_changes(session, *args) -> None:
    session.info.pop("audit_changes", None)


def _referral_changed(referral, action, change=None, **extra) -> None:
    pending = db.session.info.get("audit_changes", {})
    fields = pending.pop(id(referral), set()) | pending.pop(("id", referral.id), set())
    record(
        f"referral.{action.value}",
        referral,
        object_type="referral",
        fields=fields,
        actor=change.actor if change is not None else None,
    )


def _consultation_changed(consultation, action, actor=None, fields=(), **extra) -> None:
    record(f"consultation.{action.value}", consultation, object_type="consultation", fields=fields, actor=actor)


def denied(status: int) -> None:
    """A 403 or 404 for a signed-in user: what they asked for, recorded with the refusal."""
    if not (has_request_context() and current_user and current_user.is_authenticated):
        return
    args = request.view_args or {}
    kind, ident = next(
        ((k.removesuffix("_id"), v) for k, v in args.items() if k.endswith("_id")), ("page", request.path)
    )
    record("access.denied", object_type=kind, object_id=ident, fields=[str(status), request.endpoint or ""])
    lifecycle.keep()


def register(app) -> None:
    from ..cases.process import referral_changed

    chain.register()
    if not event.contains(Session, "before_flush", _collect_changes):
        event.listen(Session, "before_flush", _collect_changes)
        event.listen(Session, "after_commit", _forget_changes)
        event.listen(Session, "after_rollback", _forget_changes)

    user_authenticated.connect(_login_succeeded, app)
    user_logged_out.connect(_logged_out, app)
    user_failed_authn.connect(_authentication_failed, app)
    password_changed.connect(_password_changed, app)
    password_reset.connect(_password_reset, app)
    tf_code_confirmed.connect(_two_factor_confirmed, app)
    tf_profile_changed.connect(_two_factor_changed, app)
    tf_disabled.connect(_two_factor_disabled, app)
    app.extensions["security"].set_form_info("login_form", FormInfo(cls=AuditedLoginForm))
    referral_changed.connect(_referral_changed)
    from ..consultations.process import consultation_changed

    consultation_changed.connect(_consultation_changed)

    @app.after_request
    def tell_request_id(response):
        # The id lets support find a request's audit entries without any case data in a ticket.
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response
