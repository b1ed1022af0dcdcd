"""Webhooks (referral/api/webhooks.py): who gets which event, what the body holds (never child data),
signatures a receiver can check with nothing but the documented algorithm, and delivery by the worker
to a real HTTP receiver on a local port: retried with backoff during an outage, once after it, never
twice when two workers run, given up and shown to the admin after 24 hours."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from datetime import timedelta

import pytest
from flask import render_template_string
from sqlalchemy import func, select, text

from referral.accounts.operations import Actor
from referral.api import clients
from referral.api import webhooks as hooks
from referral.api.webhooks import WebhookDelivery, deliver_webhooks, verify
from referral.audit.models import AuditEntry
from referral.cases import services
from referral.cases.process import State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories


class Receiver:
    """A webhook receiver on a free local port: records every POST (headers, body) and answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", receiver.url + "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def restart(self) -> None:
        """Up again on the same port (after `stop`): the outage is over."""
        handler = self._server.RequestHandlerClass
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.stop()


def _client(name: str, district, url: str | None = None):
    client, _ = clients.create(Actor.operator(), name, [district], ["referrals:read"])
    secret = clients.set_webhook(Actor.operator(), client, url) if url else None
    db.session.commit()
    return client, secret


@pytest.fixture
def setup(world, receiver):
    """A client per district with the receiver's URL, a revoked one and one without a webhook (both WE)."""
    we, we_secret = _client("Fachsoftware WE", world.districts["we"], receiver.url)
    hm, hm_secret = _client("Fachsoftware HM", world.districts["hm"], receiver.url + "?bezirk=hm")
    revoked, _ = _client("Alt WE", world.districts["we"], receiver.url)
    clients.revoke(Actor.operator(), revoked)
    silent, _ = _client("Ohne Webhook WE", world.districts["we"])
    db.session.commit()
    return {"we": we, "hm": hm, "revoked": revoked, "silent": silent, "secrets": {we.id: we_secret, hm.id: hm_secret}}


def deliveries(**where) -> list[WebhookDelivery]:
    db.session.expire_all()
    statement = select(WebhookDelivery).order_by(WebhookDelivery.id)
    for name, value in where.items():
        statement = statement.where(getattr(WebhookDelivery, name) == value)
    return list(db.session.scalars(statement))


def submitted(world, state=State.SUBMITTED):
    return factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)


def independent_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The documented algorithm, written out here without the app's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    message = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


# --- Who gets which event ----------------------------------------------------------------------------


def test_a_submission_goes_to_the_active_clients_of_its_district_with_a_webhook(world, setup):
    referral = submitted(world)

    rows = deliveries()
    assert [(row.client_id, row.event_type) for row in rows] == [(setup["we"].id, "referral.submitted")]
    assert rows[0].referral_id == referral.id


def test_a_transfer_tells_the_old_district_out_and_the_new_district_in(world, setup):
    referral = submitted(world)
    services.transfer(referral, world.asd, world.districts["hm"], "Wohnort im anderen Bezirk")
    db.session.commit()

    rows = deliveries()
    assert [(row.client_id, row.event_type) for row in rows] == [
        (setup["we"].id, "referral.submitted"),
        (setup["we"].id, "referral.transferred_out"),
        (setup["hm"].id, "referral.transferred_in"),
    ]
    # A later answer is news only for the district that has the referral now.
    services.add_addendum(referral, world.teacher, "Nachtrag")
    db.session.commit()
    assert [(row.client_id, row.event_type) for row in deliveries()][3:] == [
        (setup["hm"].id, "referral.message_received")
    ]


def test_answers_and_addenda_are_events_questions_and_acknowledgements_are_not(world, setup):
    referral = submitted(world, State.INFO_REQUESTED)  # submitted, acknowledged, taken over, asked
    assert [row.event_type for row in deliveries()] == ["referral.submitted"]
    services.answer(referral, world.teacher, "Die Antwort")
    db.session.commit()
    other = submitted(world)
    services.add_addendum(other, world.teacher, "Der Nachtrag")
    db.session.commit()

    assert [(row.referral_id, row.event_type) for row in deliveries()] == [
        (referral.id, "referral.submitted"),
        (referral.id, "referral.message_received"),
        (other.id, "referral.submitted"),
        (other.id, "referral.message_received"),
    ]


def test_an_action_rolled_back_sends_nothing(world, setup):
    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    services.submit(referral, world.teacher)
    db.session.flush()
    assert len(db.session.scalars(select(WebhookDelivery)).all()) == 1  # written with the action …
    db.session.rollback()  # … and gone with it
    assert deliveries() == []


def test_the_body_has_ids_and_the_case_number_only(world, setup):
    referral = submitted(world, State.INFO_REQUESTED)
    services.answer(referral, world.teacher, "Antwort mit Namen Henrietta und Geheimtext-5521")
    db.session.commit()

    for row in deliveries():
        body = json.loads(row.body)
        assert set(body) == {"id", "type", "timestamp", "data"}
        assert body["data"] == {"referral_id": referral.id, "case_number": referral.number}
        assert body["timestamp"].endswith("Z")
        for secret_text in (
            factories.CHILD_FIRST,
            factories.CHILD_LAST,
            "Geheimtext-5521",
            "Beobachtungstext-7731",
            referral.child_address,
            referral.school.name,
            world.teacher.name,
        ):
            assert secret_text not in row.body


def test_feedback_due_soon_is_sent_once_per_referral_by_the_daily_reminders(world, setup):
    from referral.notifications import reminders

    soon = submitted(world, State.IN_ASSESSMENT)
    later = submitted(world, State.IN_ASSESSMENT)
    now = utcnow()
    soon.feedback_due_at = now + timedelta(days=1)
    later.feedback_due_at = now + timedelta(days=10)
    db.session.commit()

    reminders.send(now)
    reminders.send(now + timedelta(hours=1))  # the next run, or an overlapping one
    reminders.send(now + timedelta(days=1, hours=-1))

    due = deliveries(event_type="referral.feedback_due_soon")
    assert [(row.client_id, row.referral_id) for row in due] == [(setup["we"].id, soon.id)]


def test_feedback_due_soon_waits_for_a_client_with_a_webhook(world, setup):
    from referral.notifications import reminders

    referral = submitted(world, State.IN_ASSESSMENT)
    services.transfer(referral, world.asd, world.districts["hm"], "Wohnort im anderen Bezirk")
    now = utcnow()
    referral.feedback_due_at = now + timedelta(days=1)
    clients.set_webhook(Actor.operator(), setup["hm"], None)  # HM's client has no webhook today
    db.session.commit()
    reminders.send(now)
    assert deliveries(event_type="referral.feedback_due_soon") == []

    clients.set_webhook(Actor.operator(), setup["hm"], "https://fachsoftware.stadt.example/hooks")
    db.session.commit()
    reminders.send(now + timedelta(hours=2))
    reminders.send(now + timedelta(hours=3))
    due = deliveries(event_type="referral.feedback_due_soon")
    assert [(row.client_id, row.referral_id) for row in due] == [(setup["hm"].id, referral.id)]


# --- Signatures ---------------------------------------------------------------------------------------


def test_the_worker_delivers_signed_events_that_verify_with_the_documented_algorithm(world, setup, receiver):
    referral = submitted(world)

    assert deliver_webhooks() == (1, 0)

    [(headers, body)] = receiver.received
    secret = setup["secrets"][setup["we"].id]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:], validate=True)) == 32
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == independent_signature(secret, headers, body)
    assert verify(secret, headers, body)
    event = json.loads(body)
    assert event["id"] == headers["webhook-id"]
    assert event["type"] == "referral.submitted"
    assert event["data"] == {"referral_id": referral.id, "case_number": referral.number}
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert deliveries()[0].delivered_at is not None

    # Tampering with anything the signature covers fails the check.
    tampered = body.replace(referral.number.encode(), b"WE-2026-9999")
    assert tampered != body and not verify(secret, headers, tampered)
    assert not verify(secret, {**headers, "webhook-id": "anderes-ereignis"}, body)
    assert not verify(secret, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}, body)
    assert not verify(setup["secrets"][setup["hm"].id], headers, body)  # another client's secret
    # An old message replayed later fails too, even unaltered.
    assert not verify(secret, headers, body, now=utcnow() + timedelta(minutes=10))
    # Several signatures (a receiver during a key change): one that matches is enough.
    both = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert verify(secret, both, body)


def test_the_timestamp_is_unix_time_whatever_the_servers_time_zone(world, setup, receiver, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        submitted(world)
        assert deliver_webhooks() == (1, 0)
    finally:
        monkeypatch.undo()
        time.tzset()
    [(headers, body)] = receiver.received
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert verify(setup["secrets"][setup["we"].id], headers, body)


def test_verify_agrees_with_an_independent_signer(app):
    secret = hooks.new_secret()
    body = b'{"id":"e1","type":"referral.submitted"}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = independent_signature(secret, headers, body)
    assert verify(secret, {k.title(): v for k, v in headers.items()}, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(secret, {**headers, "webhook-signature": ""}, body)
    assert not verify("kein-geheimnis", headers, body)
    for timestamp in ("99999999999999999999", "²", "-1", "", "1e3"):
        assert not verify(secret, {**headers, "webhook-timestamp": timestamp}, body)


# --- Delivery: outages, backoff, exactly one arrival --------------------------------------------------


def test_a_receiver_outage_is_retried_with_backoff_and_the_event_arrives_once(world, setup, receiver):
    submitted(world)
    now = utcnow()
    [row] = deliveries()

    receiver.status = 500  # the receiver is broken
    assert deliver_webhooks(now=now) == (0, 1)
    [row] = deliveries()
    assert (row.attempts, row.last_status, row.last_error) == (1, 500, "HTTP 500")
    assert row.next_attempt_at == now + timedelta(minutes=1)
    assert deliver_webhooks(now=now + timedelta(seconds=59)) == (0, 0)  # not before the backoff

    receiver.stop()  # then down altogether
    assert deliver_webhooks(now=now + timedelta(minutes=1)) == (0, 1)
    [row] = deliveries()
    assert row.attempts == 2 and row.last_status is None and row.last_error.startswith("Nicht erreichbar")
    assert "127.0.0.1" not in row.last_error
    assert row.next_attempt_at == now + timedelta(minutes=6)
    assert deliver_webhooks(now=now + timedelta(minutes=5)) == (0, 0)

    receiver.restart()  # recovered
    receiver.status = 200
    later = now + timedelta(minutes=6)
    assert deliver_webhooks(now=later) == (1, 0)
    assert deliver_webhooks(now=later + timedelta(days=2)) == (0, 0)

    bodies = [body for _, body in receiver.received]
    assert len(bodies) == 2  # the 500 and the success; nothing while down, nothing after
    assert bodies[0] == bodies[1]  # the same body on every attempt …
    assert json.loads(bodies[1])["id"] == receiver.received[1][0]["webhook-id"] == row.event_id  # … and event id
    [row] = deliveries()
    assert row.delivered_at == later and row.attempts == 3 and row.last_error == ""


def test_a_redirect_is_not_followed(world, setup, receiver):
    submitted(world)
    receiver.status = 302
    assert deliver_webhooks() == (0, 1)
    assert len(receiver.received) == 1  # not sent on to the Location
    assert deliveries()[0].last_error == "HTTP 302"


def test_after_24_hours_of_failures_the_delivery_is_failed_and_shown_to_the_admin(app, world, setup, receiver):
    referral = submitted(world)
    receiver.status = 503
    start = deliveries()[0].created_at
    times = [start]
    while True:
        row = deliveries()[0]
        if row.failed_at is not None:
            break
        times.append(row.next_attempt_at)
        assert deliver_webhooks(now=row.next_attempt_at) == (0, 1)
    gaps = [later - earlier for earlier, later in zip(times[1:], times[2:], strict=False)]
    assert gaps[:5] == [timedelta(minutes=m) for m in (1, 5, 30, 120, 720)]
    assert times[-1] == start + timedelta(hours=24)  # the last attempt, then it is given up
    assert row.failed_at == start + timedelta(hours=24)
    assert deliver_webhooks(now=start + timedelta(days=3)) == (0, 0)

    overview = hooks.webhook_overview(setup["we"])
    assert overview["failed"] == 1 and overview["waiting"] == 0 and overview["last_error"] == "HTTP 503"
    assert overview["recent"][0]["state"] == "fehlgeschlagen"
    with app.test_request_context():
        page = render_template_string('{% include "administration/_api_client_webhook.html" %}', client=setup["we"])
    assert 'data-webhook-failed="1"' in page and "HTTP 503" in page and "fehlgeschlagen" in page
    assert referral.number in page
    metrics = {metric.name: metric.samples[0].value for metric in hooks._metrics(utcnow())}
    assert metrics["referral_webhook_deliveries_failed"] == 1


def test_no_transaction_is_open_while_the_receiver_is_called(world, setup, receiver, monkeypatch):
    submitted(world)
    seen = []
    real_post = hooks.post

    def watched(url, body, headers):
        seen.append(db.session().in_transaction())
        return real_post(url, body, headers)

    monkeypatch.setattr(hooks, "post", watched)
    assert deliver_webhooks() == (1, 0)
    assert seen == [False]


def test_a_removed_webhook_or_revoked_client_ends_its_waiting_deliveries(world, setup, receiver):
    submitted(world)
    clients.revoke(Actor.operator(), setup["we"])
    db.session.commit()
    assert deliver_webhooks() == (0, 1)
    assert receiver.received == []
    assert deliveries()[0].failed_at is not None


def test_two_workers_never_send_one_delivery_twice(app, world, setup, receiver):
    for _ in range(6):
        submitted(world)
    receiver.delay = 0.05  # each call takes a moment, so that the workers overlap
    results, errors = [], []

    def work():
        try:
            with app.app_context():
                results.append(deliver_webhooks())
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors
    ids = [event["id"] for event in receiver.events()]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert sum(delivered for delivered, _ in results) == 6


def test_a_claimed_row_is_not_claimed_again_and_one_being_claimed_is_skipped(app, world, setup):
    submitted(world)
    [row] = deliveries()
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # FOR UPDATE SKIP LOCKED; SQLite serialises claims by its write lock
        with db.engine.connect() as other:  # another worker, in the middle of its claim
            other.execute(text("SELECT id FROM webhook_delivery WHERE id = :id FOR UPDATE"), {"id": row.id})
            db.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert hooks._claim(utcnow()) is None  # skipped at once, not waited for
            other.rollback()
    assert hooks._claim(utcnow()) == row.id
    assert hooks._claim(utcnow()) is None  # now leased to this worker


def test_the_worker_round_delivers_webhooks(world, setup, receiver):
    from referral.jobs import worker

    submitted(world)
    lines = []
    worker.tick(lambda: False, lines.append)
    assert len(receiver.received) == 1
    assert any(line.startswith("webhooks: 1 delivered") for line in lines)


# --- Registration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "production", "accepted"),
    [
        ("https://fachsoftware.stadt.example/hooks", True, True),
        ("https://fachsoftware.stadt.example:8443/hooks?kanal=asd", True, True),
        ("http://fachsoftware.stadt.example/hooks", True, False),
        ("http://127.0.0.1:8080/hooks", False, True),
        ("https://nutzer:passwort@fachsoftware.stadt.example/hooks", True, False),
        ("https://nutzer@fachsoftware.stadt.example/hooks", False, False),
        ("ftp://fachsoftware.stadt.example/hooks", False, False),
        ("https:///hooks", False, False),
        ("https://fachsoftware.stadt.example:port/hooks", False, False),
        ("https://fachsoftware.stadt.example/ho oks", False, False),
        ("https://fachsoftware.stadt.example/" + "a" * 500, False, False),
    ],
)
def test_webhook_urls_are_checked_at_registration(app, url, production, accepted):
    assert (hooks.check_url(url, production=production) is None) is accepted


def test_production_refuses_a_plain_http_webhook(app, world):
    app.config["REFERRAL_PRODUCTION"] = True
    client, _ = clients.create(Actor.operator(), "Fachsoftware", [world.districts["we"]], ["referrals:read"])
    with pytest.raises(clients.Refused):
        clients.set_webhook(Actor.operator(), client, "http://fachsoftware.stadt.example/hooks")
    assert client.webhook_url is None


def test_the_admin_sets_the_webhook_and_sees_its_secret_once(app, world, as_user):
    app.config["WTF_CSRF_ENABLED"] = False
    client, _ = clients.create(Actor.operator(), "Fachsoftware", [world.districts["we"]], ["referrals:read"])
    db.session.commit()
    admin = as_user(world.admin)
    url = f"/admin/api-clients/{client.id}/webhook"

    response = admin.post(url, data={"url": " https://fachsoftware.stadt.example/hooks "})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    db.session.expire_all()
    assert client.webhook_url == "https://fachsoftware.stadt.example/hooks"
    assert client.webhook_secret in response.text
    audit = db.session.scalar(
        select(func.count()).where(AuditEntry.action == "api_client.webhook", AuditEntry.actor_id == world.admin.id)
    )
    assert audit == 1

    refused = admin.post(url, data={"url": "https://nutzer:pw@fachsoftware.stadt.example/"})
    assert refused.status_code == 422 and "keinen Benutzernamen" in refused.text
    assert 'value="https://nutzer:pw@fachsoftware.stadt.example/"' in refused.text, "what was typed is kept"
    assert 'aria-describedby="url-fehler' in refused.text, "the error is tied to the field"
    db.session.expire_all()
    assert client.webhook_url == "https://fachsoftware.stadt.example/hooks"
    secret = client.webhook_secret
    # Saving the same address again keeps the key: a new one would break deliveries under way.
    again = admin.post(url, data={"url": "https://fachsoftware.stadt.example/hooks"})
    assert again.status_code == 422 and "Signaturschlüssel bleibt" in again.text
    db.session.expire_all()
    assert client.webhook_secret == secret

    removed = admin.post(url, data={"url": ""})
    assert removed.status_code == 302
    db.session.expire_all()
    assert client.webhook_url is None and client.webhook_secret is None

    assert admin.post("/admin/api-clients/999999/webhook", data={"url": ""}).status_code == 404
    clients.revoke(Actor.operator(), client)
    db.session.commit()
    revoked = admin.post(url, data={"url": "https://fachsoftware.stadt.example/neu"})
    assert revoked.status_code == 422 and "widerrufener Zugang" in revoked.text
    assert as_user(world.asd_lead).post(url, data={"url": "https://x.example/"}).status_code == 403
