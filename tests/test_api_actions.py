"""The API's changing endpoints: acknowledging on behalf of a named ASD worker and recording the case
software's Aktenzeichen, with idempotency keys and ETag/If-Match, through the real app."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from referral.accounts.operations import Actor
from referral.api import clients
from referral.api.idempotency import ApiIdempotencyKey
from referral.audit.models import AuditEntry
from referral.cases import process, services
from referral.cases.models import Referral, StateChange
from referral.cases.process import Action, State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories
from .test_api_admin import with_token

ALL_SCOPES = ("referrals:read", "referrals:acknowledge", "referrals:reference")


def token_for(world, districts=("we",), scopes=ALL_SCOPES) -> str:
    """A client of `districts` with `scopes` and a valid bearer token (inserted as the token endpoint would)."""
    client, _ = clients.create(Actor.operator(), "Fachsoftware", [world.districts[d] for d in districts], list(scopes))
    return with_token(client)


def version_of(referral_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(select(Referral.version).where(Referral.id == referral_id))


def send(app, token, method, path, body, *, key="auto", if_match="current", referral_id=None):
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "auto" else key
    if if_match == "current":
        if_match = f'"{version_of(referral_id)}"' if referral_id else None
    if if_match is not None:
        headers["If-Match"] = if_match
    return app.test_client().open(path, method=method, json=body, headers=headers)


def acknowledge(app, token, referral_id, email, **kwargs):
    path = f"/api/v1/referrals/{referral_id}/acknowledge"
    return send(app, token, "POST", path, {"asd_worker_email": email}, referral_id=referral_id, **kwargs)


def put_reference(app, token, referral_id, reference, **kwargs):
    path = f"/api/v1/referrals/{referral_id}/case-reference"
    return send(app, token, "PUT", path, {"case_reference": reference}, referral_id=referral_id, **kwargs)


def acknowledgements(referral_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(StateChange)
        .where(StateChange.referral_id == referral_id, StateChange.action == Action.ACKNOWLEDGE)
    )


def is_problem(response, status: int) -> bool:
    return (
        response.status_code == status
        and response.mimetype == "application/problem+json"
        and response.json["status"] == status
        and response.json["detail"]
    )


@pytest.fixture
def submitted(world):
    return factories.referral_in(State.SUBMITTED, world.teacher, world.asd)


# --- Acknowledging ------------------------------------------------------------------------------


def test_acknowledge_on_behalf_of_a_named_worker(app, world, submitted):
    token = token_for(world)
    before = version_of(submitted.id)

    response = acknowledge(app, token, submitted.id, "ASD2@test.example")

    assert response.status_code == 200, response.json
    db.session.expire_all()
    referral = db.session.get(Referral, submitted.id)
    assert referral.state is State.ACKNOWLEDGED
    assert referral.acknowledged_by_id == world.asd2.id
    assert response.json == {
        "id": referral.id,
        "case_number": referral.number,
        "state": "acknowledged",
        "case_reference": None,
        "version": referral.version,
    }
    assert response.headers["ETag"] == f'"{referral.version}"' and referral.version > before
    change = referral.history[-1]
    assert change.action is Action.ACKNOWLEDGE and change.actor_id == world.asd2.id
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.acknowledge")).one()
    assert entry.actor_id == world.asd2.id and entry.object_id == str(referral.id)
    assert entry.actor_role == "asd_worker"


def test_a_lead_of_the_district_may_be_named_too(app, world, submitted):
    response = acknowledge(app, token_for(world), submitted.id, world.asd_lead.email)
    assert response.status_code == 200
    assert db.session.get(Referral, submitted.id).acknowledged_by_id == world.asd_lead.id


def test_acknowledging_in_the_wrong_state_is_409_with_the_rules_sentence(app, world):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    token = token_for(world)
    before = version_of(referral.id)

    response = acknowledge(app, token, referral.id, world.asd2.email, key="k-409")

    assert is_problem(response, 409)
    assert response.json["detail"] == process.refusal(Action.ACKNOWLEDGE, State.ACKNOWLEDGED)
    assert "nicht möglich" in response.json["detail"]
    assert version_of(referral.id) == before and acknowledgements(referral.id) == 1
    # A refusal is not stored: nothing happened, the key can be asked again.
    assert db.session.scalar(select(func.count()).select_from(ApiIdempotencyKey)) == 0


@pytest.mark.parametrize(
    "email",
    ["asd_hm@test.example", "niemand@test.example", "teacher@test.example", "", None],
    ids=["other-district", "unknown", "school-side", "empty", "missing"],
)
def test_worker_not_of_the_referrals_district_is_422(app, world, submitted, email):
    before = version_of(submitted.id)
    response = acknowledge(app, token_for(world), submitted.id, email)
    assert is_problem(response, 422)
    assert "ASD" in response.json["detail"]
    assert version_of(submitted.id) == before


def test_unknown_and_foreign_workers_get_the_same_answer(app, world, submitted):
    token = token_for(world)
    unknown = acknowledge(app, token, submitted.id, "niemand@test.example")
    foreign = acknowledge(app, token, submitted.id, world.asd_hm.email)
    assert unknown.json == foreign.json


def test_a_deactivated_worker_cannot_be_named(app, world, submitted):
    world.asd2.active = False
    db.session.commit()
    assert is_problem(acknowledge(app, token_for(world), submitted.id, world.asd2.email), 422)


def test_other_districts_referral_and_drafts_are_404_like_a_missing_one(app, world):
    token = token_for(world, districts=("hm",))
    own_district = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    missing = acknowledge(app, token, 999_999, world.asd_hm.email, if_match='"1"')
    foreign = acknowledge(app, token, own_district.id, world.asd_hm.email)
    assert is_problem(missing, 404) and foreign.status_code == 404 and foreign.json == missing.json

    we_token = token_for(world)
    draft = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    as_draft = acknowledge(app, we_token, draft.id, world.asd.email)
    assert as_draft.status_code == 404 and as_draft.json == missing.json
    assert db.session.get(Referral, own_district.id).state is State.SUBMITTED


def test_after_a_transfer_the_sending_districts_client_loses_the_referral(app, world, submitted):
    token = token_for(world)
    services.transfer(submitted, world.asd, world.districts["hm"], "Umzug")
    db.session.commit()
    assert acknowledge(app, token, submitted.id, world.asd.email).status_code == 404
    hm_token = token_for(world, districts=("hm",))
    assert acknowledge(app, hm_token, submitted.id, world.asd_hm.email).status_code == 200


def test_without_the_scope_403(app, world, submitted):
    token = token_for(world, scopes=("referrals:read", "referrals:reference"))
    response = acknowledge(app, token, submitted.id, world.asd.email)
    assert is_problem(response, 403)
    reference_token = token_for(world, scopes=("referrals:read", "referrals:acknowledge"))
    assert is_problem(put_reference(app, reference_token, submitted.id, "AZ-1"), 403)
    assert db.session.get(Referral, submitted.id).state is State.SUBMITTED


def test_without_a_token_401(app, world, submitted):
    response = acknowledge(app, "kein-token", submitted.id, world.asd.email)
    assert is_problem(response, 401)


# --- Idempotency ---------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_same_answer_and_acts_once(app, world, submitted, outbox):
    token = token_for(world)
    first = acknowledge(app, token, submitted.id, world.asd.email, key="retry-1")
    sent = len(outbox)
    # The retry carries the same If-Match as the first try (now stale): the stored answer comes back.
    retry = acknowledge(
        app, token, submitted.id, world.asd.email, key="retry-1", if_match=f'"{first.json["version"] - 1}"'
    )

    assert first.status_code == retry.status_code == 200
    assert retry.json == first.json and retry.headers["ETag"] == first.headers["ETag"]
    assert retry.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert acknowledgements(submitted.id) == 1
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("referral.%"))).all()
    assert actions.count("referral.acknowledge") == 1
    assert len(outbox) == sent  # no second notification


def test_the_same_key_for_another_request_is_422(app, world, submitted):
    token = token_for(world)
    assert acknowledge(app, token, submitted.id, world.asd.email, key="reused").status_code == 200
    other_body = acknowledge(app, token, submitted.id, world.asd2.email, key="reused")
    assert is_problem(other_body, 422) and "Idempotency-Key" in other_body.json["detail"]
    other_path = put_reference(app, token, submitted.id, "AZ 7", key="reused")
    assert is_problem(other_path, 422)
    assert db.session.get(Referral, submitted.id).case_reference is None


def test_keys_are_per_client(app, world, submitted):
    first, second = token_for(world), token_for(world)
    assert acknowledge(app, first, submitted.id, world.asd.email, key="shared").status_code == 200
    # Another client's same key is another key: this one acts (and is refused by the state).
    assert acknowledge(app, second, submitted.id, world.asd.email, key="shared").status_code == 409


@pytest.mark.parametrize("key", [None, "", "x" * 201], ids=["missing", "empty", "too-long"])
def test_a_change_without_a_valid_key_is_400(app, world, submitted, key):
    token = token_for(world)
    response = acknowledge(app, token, submitted.id, world.asd.email, key=key)
    assert is_problem(response, 400) and "Idempotency-Key" in response.json["detail"]
    assert is_problem(put_reference(app, token, submitted.id, "AZ", key=key), 400)
    assert db.session.get(Referral, submitted.id).state is State.SUBMITTED


def test_a_key_of_200_characters_is_fine(app, world, submitted):
    assert acknowledge(app, token_for(world), submitted.id, world.asd.email, key="k" * 200).status_code == 200


def test_keys_older_than_a_day_are_forgotten(app, world, submitted):
    token = token_for(world)
    assert put_reference(app, token, submitted.id, "AZ 1", key="old").status_code == 200
    db.session.execute(ApiIdempotencyKey.__table__.update().values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    # A day later the key means nothing any more; the new request acts, the old row is gone.
    assert put_reference(app, token, submitted.id, "AZ 2", key="old").json["case_reference"] == "AZ 2"
    assert db.session.scalar(select(func.count()).select_from(ApiIdempotencyKey)) == 1


def test_two_requests_with_the_same_key_at_once_act_once(app, world, submitted):
    """PostgreSQL: the second request waits at the key's unique index while the first acts; then it
    answers with the first one's stored response. SQLite (development) serialises writers: the two
    requests run one after the other, and the second is the replay."""
    token = token_for(world)
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": "parallel",
        "If-Match": f'"{version_of(submitted.id)}"',
    }
    path = f"/api/v1/referrals/{submitted.id}/acknowledge"
    body = {"asd_worker_email": world.asd.email}  # read here: the threads have no app context
    other_waited = threading.Event()
    calls = []

    postgres = db.engine.dialect.name == "postgresql"

    def hold(referral, action):
        """The first request, key claimed and action checked, waits until the second one waits for a lock."""
        calls.append(action)
        if len(calls) > 1 or not postgres:
            other_waited.set()
            return
        deadline = time.monotonic() + 20
        with db.engine.connect() as connection:
            while time.monotonic() < deadline:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar()
                if waiting:
                    other_waited.set()
                    return
                time.sleep(0.05)

    def request():
        return app.test_client().post(path, json=body, headers=headers)

    process.action_checked.connect(hold)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = [f.result(timeout=60) for f in [pool.submit(request), pool.submit(request)]]
    finally:
        process.action_checked.disconnect(hold)

    assert other_waited.is_set(), "the second request never waited for the first"
    assert calls == [Action.ACKNOWLEDGE], "only one request got as far as the action"
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json == responses[1].json
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    db.session.expire_all()
    assert acknowledgements(submitted.id) == 1


# --- If-Match ------------------------------------------------------------------------------------


def test_a_change_without_if_match_is_428(app, world, submitted):
    token = token_for(world)
    response = acknowledge(app, token, submitted.id, world.asd.email, if_match=None)
    assert is_problem(response, 428) and "If-Match" in response.json["detail"]
    assert is_problem(put_reference(app, token, submitted.id, "AZ", if_match=None), 428)
    assert db.session.get(Referral, submitted.id).state is State.SUBMITTED


def test_a_stale_etag_is_412_with_the_current_one(app, world, submitted):
    token = token_for(world)
    stale = f'"{version_of(submitted.id)}"'
    assert put_reference(app, token, submitted.id, "AZ 1").status_code == 200
    response = acknowledge(app, token, submitted.id, world.asd.email, if_match=stale)
    assert is_problem(response, 412)
    assert response.headers["ETag"] == f'"{version_of(submitted.id)}"'
    assert db.session.get(Referral, submitted.id).state is State.SUBMITTED
    weak = acknowledge(app, token, submitted.id, world.asd.email, if_match="W/" + response.headers["ETag"])
    assert weak.status_code == 412, "If-Match compares strong ETags"
    fresh = acknowledge(app, token, submitted.id, world.asd.email, if_match=response.headers["ETag"])
    assert fresh.status_code == 200


# --- Aktenzeichen --------------------------------------------------------------------------------


def test_the_case_reference_is_recorded_audited_and_shown_to_the_asd(app, world, submitted, as_user):
    token = token_for(world)
    response = put_reference(app, token, submitted.id, "  51-2026/0815 Kö  ")

    assert response.status_code == 200
    assert response.json["case_reference"] == "51-2026/0815 Kö"
    assert response.headers["ETag"] == f'"{version_of(submitted.id)}"'
    assert db.session.get(Referral, submitted.id).case_reference == "51-2026/0815 Kö"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.case_reference")).one()
    assert entry.fields == ["case_reference"] and entry.actor_role == "api" and entry.actor_id is None
    assert entry.object_id == str(submitted.id) and entry.actor_scope.startswith("API: cl_")

    asd_page = as_user(world.asd).get(f"/referrals/{submitted.id}")
    assert "Aktenzeichen der Fachsoftware" in asd_page.text and "51-2026/0815 Kö" in asd_page.text
    school_page = as_user(world.teacher).get(f"/referrals/{submitted.id}")
    assert school_page.status_code == 200 and "51-2026/0815" not in school_page.text


def test_the_case_reference_can_be_corrected(app, world, submitted):
    token = token_for(world)
    assert put_reference(app, token, submitted.id, "AZ 1").status_code == 200
    assert put_reference(app, token, submitted.id, "AZ 2").json["case_reference"] == "AZ 2"
    assert db.session.get(Referral, submitted.id).case_reference == "AZ 2"


@pytest.mark.parametrize(
    "value, words",
    [
        ("", "1 bis 60 Zeichen"),
        ("   ", "1 bis 60 Zeichen"),
        ("x" * 61, "1 bis 60 Zeichen"),
        ("AZ\n1", "Steuerzeichen"),
        ("AZ\x001", "Steuerzeichen"),
        ("AZ\u202e1", "Steuerzeichen"),  # right-to-left override: would turn the shown number around
        ("AZ\u20281", "Steuerzeichen"),
        (42, "als Text"),
        (None, "als Text"),
    ],
    ids=["empty", "blank", "too-long", "newline", "nul", "bidi-override", "line-separator", "number", "null"],
)
def test_an_invalid_case_reference_is_422_in_german(app, world, submitted, value, words):
    before = version_of(submitted.id)
    response = put_reference(app, token_for(world), submitted.id, value)
    assert is_problem(response, 422)
    assert words in response.json["detail"]
    assert response.json["errors"][0]["field"] == "case_reference"
    assert version_of(submitted.id) == before


def test_a_body_that_is_no_json_object_is_422(app, world, submitted):
    token = token_for(world)
    response = app.test_client().put(
        f"/api/v1/referrals/{submitted.id}/case-reference",
        data="kein json",
        content_type="application/json",
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "k",
            "If-Match": f'"{version_of(submitted.id)}"',
        },
    )
    assert is_problem(response, 422)


def test_sixty_characters_are_fine(app, world, submitted):
    assert put_reference(app, token_for(world), submitted.id, "A" * 60).status_code == 200


def test_control_characters_in_what_a_client_sends_are_refused_not_database_errors(app, world, submitted):
    """A NUL byte is a database error on PostgreSQL: it must be refused before any query (found by Schemathesis)."""
    token = token_for(world)
    assert is_problem(acknowledge(app, token, submitted.id, "asd\x00@test.example"), 422)
    assert is_problem(acknowledge(app, token, submitted.id, world.asd.email, key="schl\x00ssel"), 400)
    assert is_problem(acknowledge(app, token, submitted.id, world.asd.email, key="schl\x07ssel"), 400)
    assert acknowledgements(submitted.id) == 0
