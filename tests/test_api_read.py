"""The API's read side (issue 15): tokens, the permission matrix, pagination, query counts, the audit
entry of every call, and errors as problem details. The contract against the OpenAPI document is in
tests/test_api_contract.py.

Permission matrix (API): every read route × scope present/absent × a referral of the client's own
district / of another district / a draft / one transferred away from the client's district. The web
routes' matrix (tests/test_permissions.py) exempts the api blueprint and points here.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from referral.accounts.operations import Actor
from referral.api import clients
from referral.api.models import ApiToken
from referral.audit.models import AuditEntry
from referral.cases import services
from referral.cases.process import State
from referral.cases.vocabulary import Urgency
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories
from .test_workflow import QueryCounter

TOKEN_URL = "/api/v1/token"
PROBLEM = "application/problem+json"


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


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.fixture
def reader(world, client):
    """A client of district WE with referrals:read, and its token."""
    client_id, secret = make_client(world, "we")
    return get_token(client, client_id, secret)


# --- Token endpoint -------------------------------------------------------------------------------


def test_token_with_client_secret_basic_and_post(app, world, client):
    client_id, secret = make_client(world, "we", scopes=("referrals:read", "referrals:reference"))
    by_basic = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    assert by_basic.status_code == 200 and by_basic.json["token_type"] == "Bearer"
    assert by_basic.json["expires_in"] == 600 and by_basic.headers["Cache-Control"] == "no-store"
    assert by_basic.json["scope"] == "referrals:read referrals:reference", "without scope: all of the client's"
    by_post = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert by_post.status_code == 200
    for issued in (by_basic, by_post):
        assert client.get("/api/v1/referrals", headers=bearer(issued.json["access_token"])).status_code == 200
    # Only hashes are stored.
    stored = set(db.session.scalars(select(ApiToken.token_hash)))
    assert stored == {clients.digest(by_basic.json["access_token"]), clients.digest(by_post.json["access_token"])}


def test_token_lifetime_is_configurable_and_expired_tokens_are_removed(app, world, client):
    app.config["API_TOKEN_MINUTES"] = 2
    client_id, secret = make_client(world, "we")
    old = get_token(client, client_id, secret)
    db.session.execute(ApiToken.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_problem(client.get("/api/v1/referrals", headers=bearer(old)), 401)
    response = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    assert response.json["expires_in"] == 120
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 1, "the expired row went"


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "unknown client", "revoked client", "no credentials", "wrong secret by post"],
)
def test_token_refused(app, world, client, how):
    client_id, secret = make_client(world, "we")
    data = {"grant_type": "client_credentials"}
    headers = basic(client_id, "falsch")
    if how == "unknown client":
        headers = basic("cl_unbekannt", secret)
    elif how == "revoked client":
        clients.revoke(Actor.operator(), clients.by_client_id(client_id))
        db.session.commit()
        headers = basic(client_id, secret)
    elif how == "no credentials":
        headers = {}
    elif how == "wrong secret by post":
        headers, data = {}, {**data, "client_id": client_id, "client_secret": "falsch"}
    response = client.post(TOKEN_URL, data=data, headers=headers)
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client" and secret not in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_rotated_secret_works_within_the_grace_period_only(app, world, client):
    client_id, old = make_client(world, "we")
    new = clients.rotate(Actor.operator(), clients.by_client_id(client_id), grace=timedelta(days=1))
    db.session.commit()
    assert get_token(client, client_id, new) and get_token(client, client_id, old)
    clients.by_client_id(client_id).previous_valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert get_token(client, client_id, new)
    response = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, headers=basic(client_id, old))
    assert_problem(response, 401)


def test_requested_scope_must_be_a_subset(app, world, client):
    client_id, secret = make_client(world, "we", scopes=("referrals:read",))
    narrow = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "referrals:read"},
        headers=basic(client_id, secret),
    )
    assert narrow.status_code == 200 and narrow.json["scope"] == "referrals:read"
    wider = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "referrals:read referrals:acknowledge"},
        headers=basic(client_id, secret),
    )
    assert assert_problem(wider, 400)["error"] == "invalid_scope"
    other_grant = client.post(TOKEN_URL, data={"grant_type": "password"}, headers=basic(client_id, secret))
    assert assert_problem(other_grant, 400)["error"] == "unsupported_grant_type"


def test_a_token_narrowed_to_another_scope_cannot_read(app, world, client):
    client_id, secret = make_client(world, "we", scopes=("referrals:read", "referrals:reference"))
    token = get_token(client, client_id, secret, scope="referrals:reference")
    assert_problem(client.get("/api/v1/referrals", headers=bearer(token)), 403)


@pytest.mark.parametrize("how", ["expired", "malformed", "revoked", "missing", "unknown", "basic instead"])
def test_invalid_tokens_answer_401(app, world, client, how):
    client_id, secret = make_client(world, "we")
    token = get_token(client, client_id, secret)
    headers = bearer(token)
    if how == "expired":
        db.session.execute(ApiToken.__table__.update().values(expires_at=utcnow()))
        db.session.commit()
    elif how == "malformed":
        headers = {"Authorization": "Bearer " + "x" * 500}
    elif how == "revoked":
        clients.revoke(Actor.operator(), clients.by_client_id(client_id))
        db.session.commit()
    elif how == "missing":
        headers = {}
    elif how == "unknown":
        headers = bearer(token[::-1])
    elif how == "basic instead":
        headers = basic(client_id, secret)
    response = client.get("/api/v1/referrals", headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- The permission matrix ---------------------------------------------------------------------


ROUTES = ["list", "referral", "attachment", "pdf"]
SITUATIONS = ["own district", "other district", "draft", "transferred away", "transferred in"]


def _situation(world, situation):
    """The referral of the situation, as seen by a client of district WE."""
    if situation == "own district":
        return factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    if situation == "other district":
        return factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    if situation == "draft":
        return factories.referral_in(State.DRAFT, world.teacher, world.asd)
    if situation == "transferred away":
        referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
        services.transfer(referral, world.asd_lead, world.districts["hm"], "Wohnort der Eltern")
        db.session.commit()
        return referral
    referral = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    services.transfer(referral, world.asd_lead_hm, world.districts["we"], "Wohnort der Eltern")
    db.session.commit()
    return referral


def _call(client, route, referral, attachment_id, headers):
    urls = {
        "list": "/api/v1/referrals",
        "referral": f"/api/v1/referrals/{referral.id}",
        "attachment": f"/api/v1/referrals/{referral.id}/attachments/{attachment_id}",
        "pdf": f"/api/v1/referrals/{referral.id}/pdf",
    }
    return client.get(urls[route], headers=headers)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize("scope", ["referrals:read", "referrals:acknowledge"])
def test_permission_matrix(app, world, client, route, situation, scope):
    referral = _situation(world, situation)
    attachment = services.add_attachment(referral, referral.author, "befund.pdf", b"%PDF-1.4 inhalt\n%%EOF\n")
    db.session.commit()
    client_id, secret = make_client(world, "we", scopes=(scope,))
    token = get_token(client, client_id, secret)
    visible = situation in ("own district", "transferred in")
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    response = _call(client, route, referral, attachment.id, bearer(token))
    if scope != "referrals:read":
        assert_problem(response, 403)
    elif route == "list":
        assert response.status_code == 200
        assert [item["id"] for item in response.json["items"]] == ([referral.id] if visible else [])
    elif visible:
        assert response.status_code == 200, response.text
    else:
        assert_problem(response, 404)
    # A refused call leaves its audit entry (and nothing else).
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) > before


@pytest.mark.parametrize("route", ["referral", "attachment", "pdf"])
def test_invisible_is_exactly_like_missing(app, world, client, reader, route):
    other = _situation(world, "other district")
    attachment = services.add_attachment(other, other.author, "befund.pdf", b"%PDF-1.4 inhalt\n%%EOF\n")
    db.session.commit()

    class Missing:
        id = 999999

    hidden = _call(client, route, other, attachment.id, bearer(reader))
    missing = _call(client, route, Missing, 999999, bearer(reader))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json


# --- The referral as JSON, attachments, PDF ------------------------------------------------------


def test_referral_shows_every_section_as_the_asd_sees_it(app, world, client, reader):
    referral = factories.referral_in(State.CLOSED, world.teacher, world.asd, lead=world.asd2)
    response = client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader))
    assert response.status_code == 200
    body = response.json
    assert response.headers["ETag"] == f'"{referral.version}"' and body["version"] == referral.version
    assert body["number"] == referral.number and body["state"] == "closed"
    assert body["child"]["first_name"] == factories.CHILD_FIRST
    assert body["household"][0]["kind"] == "mother"
    assert body["observations"]["categories"] == ["neglect"]
    assert "Beobachtungstext-7731" in body["observations"]["description"]
    assert len(body["school_actions"]) == 6
    assert body["assessment"]["result"] == "latent" and body["assessment"]["measures"] == ["help_offer"]
    assert body["feedback"]["indications_confirmed"] is True
    assert [h["action"] for h in body["history"]][:2] == ["submit", "acknowledge"]
    assert "edit" not in [h["action"] for h in body["history"]], "as the ASD's page: no draft edits"


def test_messages_and_transfer_reason(app, world, client, reader):
    referral = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    services.transfer(referral, world.asd_lead_hm, world.districts["we"], "Eltern wohnen in Wanne")
    db.session.commit()
    services.acknowledge(referral, world.asd)
    services.take_over(referral, world.asd)
    services.ask(referral, world.asd, "Seit wann?")
    services.answer(referral, world.teacher_b, "Seit Oktober.")
    db.session.commit()
    body = client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader)).json
    assert [(m["kind"], m["body"]) for m in body["messages"]] == [
        ("question", "Seit wann?"),
        ("answer", "Seit Oktober."),
    ]
    transfer = next(h for h in body["history"] if h["action"] == "transfer")
    assert (transfer["from_district"], transfer["to_district"], transfer["reason"]) == (
        "HM",
        "WE",
        "Eltern wohnen in Wanne",
    )


def test_attachment_is_streamed_with_its_headers(app, world, client, reader):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    content = b"%PDF-1.4\n" + b"x" * 300_000 + b"\n%%EOF\n"
    attachment = services.add_attachment(referral, world.teacher, "Befund Ärztin.pdf", content)
    db.session.commit()
    listed = client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader)).json["attachments"]
    assert listed == [
        {
            "id": attachment.id,
            "filename": "Befund Ärztin.pdf",
            "content_type": "application/pdf",
            "size": len(content),
            "uploaded_at": listed[0]["uploaded_at"],
        }
    ]
    response = client.get(f"/api/v1/referrals/{referral.id}/attachments/{attachment.id}", headers=bearer(reader))
    assert response.status_code == 200 and response.data == content
    assert response.mimetype == "application/pdf" and response.content_length == len(content)
    assert "filename*=UTF-8''Befund%20%C3%84rztin.pdf" in response.headers["Content-Disposition"]
    assert response.is_streamed or response.headers.get("Content-Length") == str(len(content))


def test_pdf_of_record(app, world, client, reader):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    response = client.get(f"/api/v1/referrals/{referral.id}/pdf", headers=bearer(reader))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and referral.number in response.headers["Content-Disposition"]


# --- The list: filters, keyset pagination, sync -------------------------------------------------


def _referrals(world, count, start=datetime(2026, 11, 2, 9), step=timedelta(hours=1)):
    made = []
    for n in range(count):
        urgency = Urgency.URGENT if n % 2 else Urgency.CLARIFY
        made.append(
            factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=start + n * step, urgency=urgency)
        )
    return made


def _walk(client, token, **params):
    pages, cursor = [], None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = client.get("/api/v1/referrals", query_string=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        pages.append(response.json)
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages


def test_newest_changes_first_and_filters(app, world, client, reader):
    made = _referrals(world, 5)
    pages = _walk(client, reader, limit=2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [i["id"] for p in pages for i in p["items"]] == [r.id for r in reversed(made)]
    urgent = _walk(client, reader, urgency="urgent")
    assert {i["id"] for p in urgent for i in p["items"]} == {r.id for r in made if r.urgency is Urgency.URGENT}
    services.acknowledge(made[0], world.asd)
    db.session.commit()
    acknowledged = _walk(client, reader, state="acknowledged")
    assert [i["id"] for p in acknowledged for i in p["items"]] == [made[0].id]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "zwei"},
        {"limit": "²"},  # a digit to str.isdigit(), not to int()
        {"state": "draft"},
        {"urgency": "sofort"},
        {"cursor": "kaputt"},
        {
            "cursor": base64.urlsafe_b64encode(
                json.dumps({"m": "d", "t": "2026-01-01T00:00:00", "i": 1}).encode()
            ).decode()
        },
        {"changed_since": "e30"},
        {"cursor": "x", "changed_since": "y"},
    ],
)
def test_bad_parameters_are_400_problems(app, world, client, reader, query):
    body = assert_problem(client.get("/api/v1/referrals", query_string=query, headers=bearer(reader)), 400)
    assert body["parameter"] in query


def test_pagination_is_stable_when_a_referral_changes_between_pages(app, world, client, reader):
    app.config["API_SYNC_SETTLE_SECONDS"] = 0
    made = _referrals(world, 6)
    first = client.get("/api/v1/referrals", query_string={"limit": 2}, headers=bearer(reader)).json
    assert [i["id"] for i in first["items"]] == [made[5].id, made[4].id]
    # Between the pages: one not yet listed changes (it moves to the top), one already listed too.
    services.acknowledge(made[1], world.asd)
    services.acknowledge(made[5], world.asd)
    db.session.commit()
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = client.get("/api/v1/referrals", query_string={"limit": 2, "cursor": cursor}, headers=bearer(reader)).json
        rest += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    # Neither repeated nor skipped: the unchanged ones come once, in order.
    assert rest == [made[3].id, made[2].id, made[0].id]
    # The changes since the first page are what the sync cursor returns.
    changed = client.get(
        "/api/v1/referrals", query_string={"changed_since": first["sync_cursor"]}, headers=bearer(reader)
    )
    assert sorted(i["id"] for i in changed.json["items"]) == sorted([made[1].id, made[5].id])


def test_changed_since_walks_oldest_first_and_a_change_during_the_walk_comes_again(app, world, client, reader):
    app.config["API_SYNC_SETTLE_SECONDS"] = 0
    first = client.get("/api/v1/referrals", headers=bearer(reader)).json
    assert first["items"] == []
    made = _referrals(world, 4, start=utcnow(), step=timedelta(milliseconds=1))
    page = client.get(
        "/api/v1/referrals", query_string={"changed_since": first["sync_cursor"], "limit": 2}, headers=bearer(reader)
    ).json
    assert [i["id"] for i in page["items"]] == [made[0].id, made[1].id]
    services.acknowledge(made[0], world.asd)
    db.session.commit()
    seen = [i["id"] for i in page["items"]]
    cursor = page["next_cursor"]
    while cursor:
        page = client.get(
            "/api/v1/referrals", query_string={"changed_since": cursor, "limit": 2}, headers=bearer(reader)
        ).json
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [made[0].id, made[1].id, made[2].id, made[3].id, made[0].id]
    # Nothing new: the sync cursor stays, the list is empty.
    again = client.get("/api/v1/referrals", query_string={"changed_since": page["sync_cursor"]}, headers=bearer(reader))
    assert again.json["items"] == [] and again.json["sync_cursor"] == page["sync_cursor"]


def test_changes_of_the_last_seconds_wait_for_the_next_sync(app, world, client, reader):
    app.config["API_SYNC_SETTLE_SECONDS"] = 60
    first = client.get("/api/v1/referrals", headers=bearer(reader)).json
    fresh = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=utcnow())
    since = {"changed_since": first["sync_cursor"]}
    assert client.get("/api/v1/referrals", query_string=since, headers=bearer(reader)).json["items"] == []
    app.config["API_SYNC_SETTLE_SECONDS"] = 0
    items = client.get("/api/v1/referrals", query_string=since, headers=bearer(reader)).json["items"]
    assert [i["id"] for i in items] == [fresh.id]


def test_a_bounded_number_of_queries_whatever_the_size(app, world, client, reader):
    _referrals(world, 2)
    with QueryCounter(db.engine) as few:
        assert client.get("/api/v1/referrals", headers=bearer(reader)).status_code == 200
    _referrals(world, 25, start=datetime(2026, 11, 10, 9))
    with QueryCounter(db.engine) as many:
        assert len(client.get("/api/v1/referrals", headers=bearer(reader)).json["items"]) == 27
    assert many.count == few.count, (few.count, many.count)


def test_a_referral_with_many_messages_reads_in_a_bounded_number_of_queries(app, world, client, reader):
    referral = factories.referral_in(State.INFO_REQUESTED, world.teacher, world.asd)
    services.answer(referral, world.teacher, "Antwort")
    services.add_attachment(referral, world.teacher, "erste.pdf", b"%PDF-1.4\n%%EOF\n")
    db.session.commit()
    with QueryCounter(db.engine) as few:
        assert client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader)).status_code == 200
    for n in range(6):
        services.ask(referral, world.asd, f"Frage {n}")
        services.answer(referral, world.teacher, f"Antwort {n}")
    services.add_attachment(referral, world.teacher, "a.pdf", b"%PDF-1.4\n%%EOF\n")
    services.add_attachment(referral, world.teacher, "b.pdf", b"%PDF-1.4\n%%EOF\n")
    db.session.commit()
    with QueryCounter(db.engine) as many:
        assert len(client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader)).json["messages"]) == 14
    assert many.count == few.count, (few.count, many.count)


# --- Audit, rate limit, transport, errors --------------------------------------------------------


def test_every_call_is_an_audit_entry(app, world, client):
    client_id, secret = make_client(world, "we")
    token = get_token(client, client_id, secret)
    own = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    other = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    client.get(f"/api/v1/referrals/{own.id}", headers=bearer(token))
    client.get(f"/api/v1/referrals/{other.id}", headers=bearer(token))
    client.get("/api/v1/referrals", headers=bearer("falsch"))
    calls = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "api.call").order_by(AuditEntry.id)))
    assert [(c.actor_role, c.actor_scope, c.object_id, c.fields) for c in calls] == [
        ("api", f"API: {client_id}", "api.token", ["200", "api.token"]),
        ("api", f"API: {client_id}", str(own.id), ["200", "api.referral"]),
        ("api", f"API: {client_id}", str(other.id), ["404", "api.referral"]),
        ("api", "API: unbekannt", "api.referrals", ["401", "api.referrals"]),
    ]
    views = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.view")))
    assert [(v.object_id, v.actor_role, v.actor_scope) for v in views] == [(str(own.id), "api", f"API: {client_id}")]


def test_rate_limit_per_client(app, world, client):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    first_id, first_secret = make_client(world, "we")
    second_id, second_secret = make_client(world, "we")
    token = get_token(client, first_id, first_secret)
    for _ in range(3):
        client.get("/api/v1/referrals", headers=bearer(token))
    body = assert_problem(client.get("/api/v1/referrals", headers=bearer(token)), 429)
    assert "Anfragen" in body["detail"]
    response = client.get("/api/v1/referrals", headers=bearer(token))
    assert int(response.headers["Retry-After"]) > 0
    throttled = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "api.call").order_by(AuditEntry.id.desc())
    ).first()
    assert (throttled.actor_scope, throttled.fields) == (f"API: {first_id}", ["429", "api.referrals"])
    # A new token does not reset the count; another client has its own.
    renewed = get_token(client, first_id, first_secret)
    assert client.get("/api/v1/referrals", headers=bearer(renewed)).status_code == 429
    other = get_token(client, second_id, second_secret)
    assert client.get("/api/v1/referrals", headers=bearer(other)).status_code == 200


@pytest.mark.parametrize("claimed", ["cl_\x00abc", "\x00", "cl_" + "0" * 24 + "\x00", "ä" * 50])
def test_a_client_id_of_no_clients_shape_is_refused_before_any_query(app, world, client, claimed):
    """A NUL byte is a database error on PostgreSQL (found by Schemathesis): refused as unknown instead."""
    for sent in (
        {"data": {"grant_type": "client_credentials", "client_id": claimed, "client_secret": "x"}},
        {"data": {"grant_type": "client_credentials"}, "headers": basic(claimed, "x")},
    ):
        assert_problem(client.post(TOKEN_URL, **sent), 401)


def test_failed_token_requests_naming_a_client_do_not_lock_it_out(app, world, client):
    """The token endpoint counts per address: the client_id a request names is not proven yet."""
    app.config["API_RATE_LIMIT"] = "3 per minute"
    victim_id, victim_secret = make_client(world, "we")
    token = get_token(client, victim_id, victim_secret)
    attacker = app.test_client()
    answers = [
        attacker.post(
            TOKEN_URL,
            data={"grant_type": "client_credentials"},
            headers=basic(victim_id, "falsch"),
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        ).status_code
        for _ in range(5)
    ]
    assert answers[-1] == 429 and 401 in answers[:3]
    assert client.get("/api/v1/referrals", headers=bearer(token)).status_code == 200


def test_production_answers_only_over_https(database_url):
    from referral import create_app

    from .test_hardening import PRODUCTION

    app = create_app(env={**PRODUCTION, "DATABASE_URL": database_url})
    app.config["TESTING"] = True
    http = app.test_client()
    data = {"grant_type": "client_credentials", "client_id": "cl_x", "client_secret": "geheim"}
    plain = http.post(TOKEN_URL, data=data, base_url="http://referral.example")
    assert_problem(plain, 403)
    assert "HTTPS" in plain.json["detail"]
    assert_problem(http.get("/api/v1/referrals", base_url="http://referral.example"), 403)
    secure = http.post(TOKEN_URL, data=data, base_url="https://referral.example")
    assert_problem(secure, 401)


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("get", "/api/v1/gibt-es-nicht", 404),
        ("get", "/api/v1/referrals/99999999999", 404),
        ("delete", "/api/v1/referrals", 405),
        ("get", "/api/v1/token", 405),
    ],
)
def test_errors_under_api_are_problems_not_pages(app, world, client, reader, method, url, status):
    response = getattr(client, method)(url, headers=bearer(reader))
    body = assert_problem(response, status)
    assert "<html" not in response.get_data(as_text=True).lower() and body["detail"]


def test_too_large_is_a_problem(app, world, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(TOKEN_URL, data={"grant_type": "client_credentials", "scope": "x" * 5000})
    assert_problem(response, 413)


def test_a_server_error_is_a_problem(app, world, client, reader, monkeypatch):
    from referral.api import serialize

    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def broken(referral):
        raise RuntimeError("kaputt")

    monkeypatch.setattr(serialize, "detail", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.testing = False
    try:
        response = client.get(f"/api/v1/referrals/{referral.id}", headers=bearer(reader))
    finally:
        app.testing = True
    body = assert_problem(response, 500)
    assert "kaputt" not in body["detail"]


def test_an_outage_is_a_503_problem(app, world, client, reader, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from referral.api import routes

    def unreachable(referral_id):
        raise OperationalError("SELECT 1", {}, Exception("could not connect to server: Connection refused"))

    monkeypatch.setattr(routes, "visible_referral", unreachable)
    response = client.get("/api/v1/referrals/1", headers=bearer(reader))
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_documentation_is_public_and_rendered_without_scripts(app, client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.json["openapi"].startswith("3.1")
    page = client.get("/api/v1/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script" not in html and "http://" not in html.replace("http://localhost", "")
    assert '<th scope="col">' in html and "Vorname des Kindes / child&#39;s first name" in html
    assert "/api/v1/referrals/{referral_id}/acknowledge" in html and "referral.submitted" in html
