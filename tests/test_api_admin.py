"""The admin's pages for API clients and `flask api-clients`: secrets shown once and stored as hashes,
rotation with a grace period, revocation that ends tokens at once, districts and scopes, audit entries."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from referral.accounts.operations import Actor
from referral.api import clients
from referral.api.models import ApiClient, ApiToken
from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories


@pytest.fixture
def admin(world, as_user, app):
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF has its own test (tests/test_attacks.py)
    return as_user(world.admin)


def shown_secret(html: str) -> str:
    match = re.search(r'id="client-secret"[^>]*>([^<]+)<', html)
    assert match, "no secret on the page"
    return match.group(1)


def shown_client_id(html: str) -> str:
    return re.search(r'id="client-id">([^<]+)<', html).group(1)


def entries(action: str) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def with_token(client: ApiClient) -> str:
    raw = secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            client=client,
            token_hash=clients.digest(raw),
            scopes=client.scopes,
            expires_at=utcnow() + timedelta(minutes=10),
        )
    )
    db.session.commit()
    return raw


def new_client(world, districts=("we",), scopes=("referrals:read",)) -> ApiClient:
    client, _ = clients.create(
        Actor.operator(), "Fachsoftware Herne", [world.districts[d] for d in districts], list(scopes)
    )
    db.session.commit()
    return client


def session_files(app) -> str:
    folder = Path(app.config["SESSION_FILE_DIR"])
    return "".join(p.read_bytes().decode("latin-1") for p in folder.glob("*") if p.is_file())


# --- Creating -------------------------------------------------------------------------------------


def test_the_admin_creates_a_client_and_sees_its_secret_once(app, world, admin, caplog):
    caplog.set_level("DEBUG")
    form = admin.get("/admin/api-clients/new")
    assert form.status_code == 200 and "Bezirke" in form.text and "referrals:acknowledge" in form.text

    response = admin.post(
        "/admin/api-clients/new",
        data={
            "name": "Fachsoftware Herne",
            "districts": [world.districts["we"].id],
            "scopes": ["referrals:read", "referrals:acknowledge"],
        },
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret, client_id = shown_secret(response.text), shown_client_id(response.text)
    client = db.session.scalars(select(ApiClient)).one()
    assert client.client_id == client_id and client.name == "Fachsoftware Herne"
    assert [d.code for d in client.districts] == ["WE"]
    assert client.scopes == ["referrals:acknowledge", "referrals:read"]
    # Only the hash is stored; the secret is nowhere in the row, nor in the session store.
    assert client.secret_hash == clients.digest(secret)
    row = db.session.execute(select(ApiClient.__table__)).one()
    assert all(secret not in str(value) for value in row)
    assert secret not in session_files(app)
    assert "new_api_client" in caplog.text and secret not in caplog.text  # the request was logged, not the secret
    assert clients.authenticate(client_id, secret) is not None
    # Never again: neither on the client's page nor on the list.
    assert secret not in admin.get(f"/admin/api-clients/{client.id}").text
    listing = admin.get("/admin/api-clients")
    assert "Fachsoftware Herne" in listing.text and secret not in listing.text
    entry = entries("api_client.create")[0]
    assert entry.actor_id == world.admin.id and entry.object_id == str(client.id)
    assert sorted(entry.fields) == ["districts", "name", "scopes"]


def test_a_refused_form_keeps_what_was_typed_and_ties_errors_to_fields(app, world, admin):
    response = admin.post("/admin/api-clients/new", data={"name": "Fachsoftware Herne", "districts": [], "scopes": []})

    assert response.status_code == 422
    assert 'value="Fachsoftware Herne"' in response.text
    assert 'id="districts-fehler"' in response.text and "Bitte mindestens einen Bezirk wählen." in response.text
    assert 'id="scopes-fehler"' in response.text and "Bitte mindestens eine Berechtigung wählen." in response.text
    assert 'href="#districts-0"' in response.text  # the error summary links to the group
    assert db.session.scalars(select(ApiClient)).all() == []

    unnamed = admin.post(
        "/admin/api-clients/new",
        data={"name": "", "districts": [world.districts["hm"].id], "scopes": ["referrals:read"]},
    )
    assert unnamed.status_code == 422 and re.search(r'aria-describedby="[^"]*name-fehler"', unnamed.text)
    assert re.search(rf'value="{world.districts["hm"].id}"\s+checked', unnamed.text), "the district stays checked"


def test_an_offered_scope_only(app, world, admin):
    response = admin.post(
        "/admin/api-clients/new",
        data={"name": "X", "districts": [world.districts["we"].id], "scopes": ["referrals:everything"]},
    )
    assert response.status_code == 422 and db.session.scalars(select(ApiClient)).all() == []


# --- The client's page ----------------------------------------------------------------------------


def test_the_client_page_shows_districts_scopes_dates_and_links_the_docs(app, world, admin):
    client = new_client(world, districts=("we", "hm"), scopes=("referrals:read", "referrals:reference"))
    page = admin.get(f"/admin/api-clients/{client.id}")
    assert page.status_code == 200
    for text in ("Wanne-Eickel (WE)", "Herne-Mitte (HM)", "referrals:reference", client.client_id, "aktiv"):
        assert text in page.text
    assert 'href="/api/v1/docs"' in page.text
    assert "Schlüssel erneuern" in page.text and "Zugang widerrufen" in page.text
    assert "API-Zugang angelegt" in page.text  # its changes, with the audit label
    assert admin.get("/admin/api-clients/999999").status_code == 404


def test_the_admin_navigation_and_the_change_list_show_api_clients(app, world, admin):
    client = new_client(world)
    overview = admin.get("/admin/")
    assert 'href="/admin/api-clients"' in overview.text and "API-Zugänge" in overview.text
    changes = admin.get("/admin/changes")
    assert "API-Zugang angelegt" in changes.text
    assert f'href="/admin/api-clients/{client.id}"' in changes.text


def test_rotating_shows_a_new_secret_once_and_keeps_the_old_one_for_seven_days(app, world, admin):
    created = admin.post(
        "/admin/api-clients/new",
        data={"name": "Fachsoftware", "districts": [world.districts["we"].id], "scopes": ["referrals:read"]},
    )
    old, client_id = shown_secret(created.text), shown_client_id(created.text)
    client = clients.by_client_id(client_id)

    rotated = admin.post(f"/admin/api-clients/{client.id}/rotate")

    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = shown_secret(rotated.text)
    assert new != old and "gilt noch bis" in rotated.text
    db.session.expire_all()
    assert clients.authenticate(client_id, new) is not None
    assert clients.authenticate(client_id, old) is not None
    assert clients.authenticate(client_id, old, now=utcnow() + timedelta(days=7, minutes=1)) is None
    assert clients.authenticate(client_id, new, now=utcnow() + timedelta(days=8)) is not None
    assert new not in session_files(app)
    assert entries("api_client.rotate")[0].actor_id == world.admin.id


def test_revoking_ends_the_client_and_its_tokens_at_once(app, world, admin):
    client = new_client(world)
    client_id, secret = client.client_id, clients.rotate(Actor.operator(), client)
    db.session.commit()
    token = with_token(client)
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def api_call():
        return app.test_client().put(
            f"/api/v1/referrals/{referral.id}/case-reference",
            json={"case_reference": "AZ"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k", "If-Match": '"1"'},
        )

    assert api_call().status_code != 401

    response = admin.post(f"/admin/api-clients/{client.id}/revoke")

    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(ApiClient, client.id).revoked_at is not None
    assert db.session.scalars(select(ApiToken)).all() == []
    assert clients.authenticate(client_id, secret) is None
    assert api_call().status_code == 401
    page = admin.get(f"/admin/api-clients/{client.id}")
    assert "widerrufen am" in page.text and "Schlüssel erneuern" not in page.text
    assert entries("api_client.revoke")[0].actor_id == world.admin.id
    # A revoked client gets no new secret.
    assert admin.post(f"/admin/api-clients/{client.id}/rotate").status_code == 302
    assert len(entries("api_client.rotate")) == 1  # the one above, from the console


def test_editing_districts_and_scopes_ends_the_tokens(app, world, admin):
    client = new_client(world, scopes=("referrals:read", "referrals:acknowledge"))
    with_token(client)

    response = admin.post(
        f"/admin/api-clients/{client.id}/edit",
        data={"districts": [world.districts["hm"].id], "scopes": ["referrals:read"]},
    )

    assert response.status_code == 302
    db.session.expire_all()
    client = db.session.get(ApiClient, client.id)
    assert [d.code for d in client.districts] == ["HM"] and client.scopes == ["referrals:read"]
    assert db.session.scalars(select(ApiToken)).all() == []
    entry = entries("api_client.update")[0]
    assert entry.actor_id == world.admin.id and sorted(entry.fields) == ["districts", "scopes"]


def test_an_edit_without_scopes_is_refused_and_keeps_the_choice(app, world, admin):
    client = new_client(world)
    response = admin.post(
        f"/admin/api-clients/{client.id}/edit", data={"districts": [world.districts["hm"].id], "scopes": []}
    )
    assert response.status_code == 422
    assert "Bitte mindestens eine Berechtigung wählen." in response.text
    assert re.search(rf'value="{world.districts["hm"].id}"\s+checked', response.text)
    db.session.expire_all()
    assert [d.code for d in db.session.get(ApiClient, client.id).districts] == ["WE"]


# --- The console ----------------------------------------------------------------------------------


def test_the_cli_prints_the_secret_on_its_last_line(app, world, runner):
    result = runner.invoke(
        args=["api-clients", "create", "--name", "Fachsoftware", "--district", "we", "--scope", "referrals:read"]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    secret = lines[-1]
    client_id = re.search(r"client_id (cl_[0-9a-f]+)", result.output).group(1)
    client = clients.authenticate(client_id, secret)
    assert client is not None and [d.code for d in client.districts] == ["WE"]
    assert client.secret_hash == clients.digest(secret)
    entry = entries("api_client.create")[0]
    assert entry.actor_id is None and entry.actor_role == "cli"

    unknown = runner.invoke(
        args=["api-clients", "create", "--name", "X", "--district", "ZZ", "--scope", "referrals:read"]
    )
    assert unknown.exit_code != 0 and "ZZ" in unknown.output
