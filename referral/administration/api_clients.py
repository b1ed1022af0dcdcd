"""The admin's pages for API clients (the Jugendamt's case software): list, create, edit, rotate, revoke.

Every change goes through referral/api/clients.py, as `flask api-clients` does, which writes the audit
entry. A secret is shown exactly once: rendered into the response to the POST that made it, with
`Cache-Control: no-store`; it never goes into the session (no flash), a log line or the database in
clear (only its hash is stored).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, ValidationError

from ..accounts import operations as accounts
from ..api import clients
from ..api.models import SCOPES, ApiClient
from ..audit.log import ACTION_LABELS
from ..audit.models import AuditEntry
from ..extensions import db
from ..kernel.forms import ActionForm, BaseForm, ErrorSummary, MultiCheckboxField, at_most, options
from ..organisation.models import District
from ..printable import Printable


def _at_least_one(message: str):
    def check(form, field):
        if not field.data:
            raise ValidationError(message)

    return check


# Made before the other fields, so that WTForms (which orders fields by creation) lists it first, as the page does.
NAME = StringField(
    "Name des Zugangs",
    validators=[DataRequired("Bitte einen Namen angeben."), at_most(120), Printable()],
)


class ApiClientAccessForm(ErrorSummary, BaseForm):
    """Districts and scopes: what a client sees and may do."""

    districts = MultiCheckboxField(
        "Bezirke", coerce=int, validators=[_at_least_one("Bitte mindestens einen Bezirk wählen.")]
    )
    scopes = MultiCheckboxField(
        "Berechtigungen",
        choices=options((scope, f"{label} ({scope})") for scope, label in SCOPES.items()),
        validators=[_at_least_one("Bitte mindestens eine Berechtigung wählen.")],
    )

    def offer(self, districts: list[District]) -> ApiClientAccessForm:
        self.districts.choices = options((d.id, f"{d.name} ({d.code})") for d in districts)
        return self


class ApiClientForm(ApiClientAccessForm):
    name = NAME


def _districts() -> list[District]:
    return list(db.session.scalars(select(District).order_by(District.name)))


def _chosen(ids: list[int]) -> list[District]:
    return [d for d in _districts() if d.id in set(ids)]


def _actor() -> accounts.Actor:
    return accounts.Actor.admin(current_user._get_current_object())


def _client_or_404(api_client_id: int) -> ApiClient:
    return db.session.get(ApiClient, api_client_id) or abort(404)


def _form_page(template: str, status: int, **context):
    return render_template(template, scope_labels=SCOPES, grace_days=clients.DEFAULT_GRACE.days, **context), status


def _secret_page(client: ApiClient, secret: str, created: bool):
    """The secret, once: in this response only, never cached by the browser or a proxy."""
    response = make_response(
        render_template("administration/api_client_secret.html", client=client, secret=secret, created=created)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def api_clients():
    rows = db.session.scalars(select(ApiClient).order_by(ApiClient.revoked_at.is_not(None), ApiClient.name)).all()
    return render_template("administration/api_clients.html", rows=rows, scope_labels=SCOPES)


def new_api_client():
    form = ApiClientForm().offer(_districts())
    if form.validate_on_submit():
        try:
            client, secret = clients.create(
                _actor(), form.name.data, _chosen(form.districts.data), list(form.scopes.data)
            )
        except clients.Refused as refusal:
            db.session.rollback()
            form.name.errors.append(str(refusal))
        else:
            return _secret_page(client, secret, created=True)
    return _form_page("administration/api_client_new.html", 422 if request.method == "POST" else 200, form=form)


def _changes_of(client: ApiClient) -> list[AuditEntry]:
    return db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "api_client", AuditEntry.object_id == str(client.id))
        .order_by(AuditEntry.id.desc())
        .limit(20)
    ).all()


def client_page(client: ApiClient, form: ApiClientAccessForm | None = None, status: int = 200, **extra):
    """The client's page; `extra`: e.g. the webhook form with its errors (referral/api/webhooks_admin.py)."""
    if form is None:
        form = ApiClientAccessForm(
            formdata=None, data={"districts": sorted(client.district_ids), "scopes": list(client.scopes)}
        ).offer(_districts())
    return _form_page(
        "administration/api_client.html",
        status,
        client=client,
        form=form,
        action_form=ActionForm(),
        changes=_changes_of(client),
        action_labels=ACTION_LABELS,
        **extra,
    )


def api_client(api_client_id: int):
    client = _client_or_404(api_client_id)
    return client_page(client)


def update_api_client(api_client_id: int):
    client = _client_or_404(api_client_id)
    form = ApiClientAccessForm().offer(_districts())
    if not client.active:
        flash("Ein widerrufener Zugang kann nicht mehr geändert werden.", "info")
        return redirect(url_for(".api_client", api_client_id=client.id))
    if form.validate_on_submit():
        try:
            clients.update(_actor(), client, _chosen(form.districts.data), list(form.scopes.data))
        except clients.Refused as refusal:
            db.session.rollback()
            form.districts.errors.append(str(refusal))
        else:
            flash(
                "Bezirke und Berechtigungen sind gespeichert. Ausgegebene Zugriffstokens sind beendet; "
                "neue Tokens haben die neuen Berechtigungen.",
                "success",
            )
            return redirect(url_for(".api_client", api_client_id=client.id))
    return client_page(client, form, 422)


def rotate_api_client(api_client_id: int):
    client = _client_or_404(api_client_id)
    ActionForm().validate_on_submit() or abort(400)
    try:
        secret = clients.rotate(_actor(), client)
    except clients.Refused as refusal:
        flash(str(refusal), "danger")
        return redirect(url_for(".api_client", api_client_id=client.id))
    return _secret_page(client, secret, created=False)


def revoke_api_client(api_client_id: int):
    client = _client_or_404(api_client_id)
    ActionForm().validate_on_submit() or abort(400)
    if not client.active:
        flash("Dieser Zugang ist bereits widerrufen.", "info")
    else:
        clients.revoke(_actor(), client)
        flash(f"Der Zugang „{client.name}“ ist widerrufen; seine Tokens gelten nicht mehr.", "success")
    return redirect(url_for(".api_client", api_client_id=client.id))


def register(blueprint: Blueprint) -> None:
    """The pages on the admin blueprint (whose before_request lets only the admin in)."""
    if getattr(blueprint, "_api_client_views", None):
        return
    routes = [
        ("/api-clients", api_clients, ["GET"]),
        ("/api-clients/new", new_api_client, ["GET", "POST"]),
        ("/api-clients/<int:api_client_id>", api_client, ["GET"]),
        ("/api-clients/<int:api_client_id>/edit", update_api_client, ["POST"]),
        ("/api-clients/<int:api_client_id>/rotate", rotate_api_client, ["POST"]),
        ("/api-clients/<int:api_client_id>/revoke", revoke_api_client, ["POST"]),
    ]
    for rule, view, methods in routes:
        blueprint.add_url_rule(rule, view.__name__, view, methods=methods)
    blueprint._api_client_views = [view.__name__ for _, view, _ in routes]  # type: ignore[attr-defined]
