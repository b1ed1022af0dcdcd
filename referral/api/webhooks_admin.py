"""The admin's webhook form for an API client: POST /admin/api-clients/<id>/webhook.

`register_admin(blueprint)` adds the view to the admin blueprint (referral/administration/routes.py),
whose before_request lets only admins in. The form sits on the client's page (the partial
templates/administration/_api_client_webhook.html); an empty URL removes the webhook. A new URL gets a
new signing secret, shown once on the answer page and never again (it is stored encrypted).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import StringField

from ..accounts.operations import Actor, Refused
from ..extensions import db
from ..kernel.forms import BaseForm, at_most
from . import clients
from .models import ApiClient

# The client's page (referral/administration/api_clients.py).
CLIENT_PAGE = "administration.api_client"


class WebhookForm(BaseForm):
    url = StringField("Webhook-Adresse (https://…)", validators=[at_most(500)])


def client_page(client: ApiClient) -> str:
    return url_for(CLIENT_PAGE, api_client_id=client.id)


def set_webhook(client_id: int) -> ResponseReturnValue:
    client = db.session.get(ApiClient, client_id) or abort(404)
    form = WebhookForm()
    if form.validate_on_submit():
        url = (form.url.data or "").strip() or None
        try:
            secret = clients.set_webhook(Actor.admin(current_user._get_current_object()), client, url)
        except Refused as refusal:
            form.url.errors = [str(refusal)]
        else:
            return _changed(client, secret)
    # The page again, with the error at the field and what was typed in it.
    from ..administration.api_clients import client_page as page

    return page(client, status=422, webhook_form=form)


def _changed(client: ApiClient, secret: str | None) -> ResponseReturnValue:
    if secret is None:
        flash(f"Der Webhook von „{client.name}“ ist entfernt; es werden keine Ereignisse mehr gesendet.", "success")
        return redirect(client_page(client))
    # Shown once, in this answer only: never flashed (the session store would keep it) nor cached.
    response = make_response(
        render_template("administration/webhook_secret.html", client=client, secret=secret, back=client_page(client))
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def register_admin(blueprint: Blueprint) -> None:
    blueprint.add_url_rule(
        "/api-clients/<int:client_id>/webhook", "api_client_webhook", view_func=set_webhook, methods=["POST"]
    )
