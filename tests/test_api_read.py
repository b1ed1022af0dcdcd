"""The API's read side: tokens, the permission matrix, pagination, audit, errors as problem details."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from referral.api import clients
from referral.api.models import ApiClient, ApiToken
from referral.accounts.operations import Actor
from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db

from . import factories

TOKEN_URL = "/api/v1/token"


def make_client(world, *district_keys, scopes=("referrals:read",)):
    client, secret = clients.create(
        Actor.operator(), "Fachsoftware", [world.districts[k] for k in district_keys], list(scopes)
    )
    db.session.commit()
    return client.client_id, secret


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def get_token(http, client_id, secret, **form):
    response = http.post(TOKEN_URL, data={"grant_type": "client_credentials", **form}, headers=basic(client_id, secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["access_token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_smoke(app, world, client):
    cid, secret = make_client(world, "we")
    r = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    token = get_token(client, cid, secret)
    listing = client.get("/api/v1/referrals", headers=bearer(token))
    assert listing.status_code == 200, listing.text
    assert [i["id"] for i in listing.json["items"]] == [r.id]
    one = client.get(f"/api/v1/referrals/{r.id}", headers=bearer(token))
    assert one.status_code == 200, one.text
    print(one.json)


def test_docs(app, client):
    assert client.get("/api/v1/openapi.json").status_code == 200
    page = client.get("/api/v1/docs")
    assert page.status_code == 200, page.text[:3000]
