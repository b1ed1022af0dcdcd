"""`flask api-clients`: API clients from the console, through the same operations as the admin page."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from ..accounts.operations import Actor
from ..extensions import db
from ..organisation.models import District
from . import clients
from .models import SCOPES, ApiClient

api_clients = AppGroup("api-clients", help="Clients of the REST API (the Jugendamt's case software).")


def _districts(codes: tuple[str, ...]) -> list[District]:
    found = []
    for code in codes:
        district = db.session.scalar(select(District).where(func.upper(District.code) == code.strip().upper()))
        if district is None:
            raise click.ClickException(f"No district with the code {code!r}.")
        found.append(district)
    return found


def _client(client_id: str) -> ApiClient:
    client = clients.by_client_id(client_id)
    if client is None:
        raise click.ClickException(f"No API client {client_id!r}.")
    return client


def _commit(operation, *args):
    try:
        result = operation(Actor.operator(), *args)
    except clients.Refused as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal)) from refusal
    db.session.commit()
    return result


@api_clients.command("create")
@click.option("--name", required=True, help="Who connects, e.g. the case software of the Jugendamt Herne.")
@click.option("--district", "districts", multiple=True, required=True, help="District code; repeat for more.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(sorted(SCOPES)))
def create(name, districts, scopes):
    """Create a client; its secret is printed once, on the last line."""
    client, secret = _commit(clients.create, name, _districts(districts), list(scopes))
    click.echo(f"Created API client {client.name!r}: client_id {client.client_id}")
    click.echo("The secret is shown only now; store it in the case software's configuration:")
    click.echo(secret)


@api_clients.command("rotate")
@click.argument("client_id")
def rotate(client_id):
    """A new secret (printed once, on the last line); the old one stays valid for 7 days."""
    secret = _commit(clients.rotate, _client(client_id))
    click.echo(f"New secret for {client_id}; the old one stays valid for {clients.DEFAULT_GRACE.days} days:")
    click.echo(secret)


@api_clients.command("revoke")
@click.argument("client_id")
def revoke(client_id):
    """End the client's access at once (its tokens too)."""
    _commit(clients.revoke, _client(client_id))
    click.echo(f"Revoked {client_id}.")


@api_clients.command("list")
def list_clients():
    for client in db.session.scalars(select(ApiClient).order_by(ApiClient.id)):
        districts = ",".join(sorted(d.code for d in client.districts))
        state = "revoked" if client.revoked_at else "active"
        click.echo(f"{client.client_id}\t{state}\t{districts}\t{' '.join(client.scopes)}\t{client.name}")
