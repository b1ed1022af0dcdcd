"""Webhooks: events about referrals POSTed to the case software, signed, delivered at least once.

Events (`EVENT_TYPES`) are written as `webhook_delivery` rows, one per receiving client, in the same
transaction as the change they report (a listener on `referral_changed`, like the audit log and the
notification outbox): a rolled-back action sends nothing, a committed one is never lost. "Feedback
due soon" comes from the daily reminders job, once per referral and due date.

Who receives an event: every active client with a webhook URL whose districts include the referral's
district. A transfer tells the old district's clients "transferred_out" and the new district's
"transferred_in".

The body names the event and the referral by ids and case number only: no child data, no free text
(the case software fetches the rest over the API with its own scopes)::

    {"id": "<uuid>", "type": "referral.submitted", "timestamp": "2026-12-02T10:00:00Z",
     "data": {"referral_id": 17, "case_number": "WE-2026-0001"}}

Signing follows the Standard Webhooks specification (https://www.standardwebhooks.com): headers
`webhook-id` (the event id, for deduplication), `webhook-timestamp` (unix seconds of this attempt) and
`webhook-signature` = "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the key being the
base64-decoded part of the client's secret after "whsec_". `verify()` below is the receiver's side.

Delivery (`deliver_webhooks`, called by `flask worker` next to the mail outbox): each due row is
claimed with a lease (a conditional UPDATE, committed; on PostgreSQL the candidate row is selected
`FOR UPDATE SKIP LOCKED`, on SQLite the UPDATE takes the write lock), so two workers never send one
row at the same time. The HTTP call runs outside any database transaction, with a short timeout and
without following redirects; 2xx is delivered, anything else is tried again after 1 min, 5 min,
30 min, 2 h, 12 h, and given up (marked failed, shown to the admin) 24 h after the event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from prometheus_client.core import Metric
from sqlalchemy import ForeignKey, Index, String, Text, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import to_local, utcnow
from .models import ApiClient, api_client_district

log = logging.getLogger("referral.webhooks")

SUBMITTED = "referral.submitted"
TRANSFERRED_IN = "referral.transferred_in"
TRANSFERRED_OUT = "referral.transferred_out"
MESSAGE_RECEIVED = "referral.message_received"
FEEDBACK_DUE_SOON = "referral.feedback_due_soon"
EVENT_TYPES = {
    SUBMITTED: "Mitteilung eingegangen",
    TRANSFERRED_IN: "Mitteilung von anderem Bezirk übernommen",
    TRANSFERRED_OUT: "Mitteilung an anderen Bezirk abgegeben",
    MESSAGE_RECEIVED: "Antwort oder Nachtrag der Schule",
    FEEDBACK_DUE_SOON: "Rückmeldung an die Schule bald fällig",
}

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 10.0  # connect and read; a slow receiver must not stall the worker's round
LEASE = timedelta(minutes=5)  # a worker that dies while sending lets another try after this
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
GIVE_UP_AFTER = timedelta(hours=24)  # the last attempt is made then; after it the delivery is failed
FEEDBACK_SOON = timedelta(days=2)  # "feedback due soon": due within this time from the daily run
TOLERANCE = timedelta(minutes=5)  # verify(): how old (or early) a timestamp may be, against replays
# Delivered rows are kept this long (the admin's overview shows the latest; the receiver has the event),
# then the daily "prune" job deletes them: one row per event and client would otherwise grow forever.
# Failed ones stay: the admin's page counts them until the client is removed.
DELIVERED_KEPT = timedelta(days=30)


class WebhookDelivery(db.Model):
    """One event for one client: its body as sent (the same bytes on every attempt) and its delivery state."""

    __tablename__ = "webhook_delivery"
    audit_ignored = True  # a consequence of the change the audit entry names, not a change of the referral
    __table_args__ = (
        Index("ix_webhook_delivery_due", "delivered_at", "failed_at", "next_attempt_at"),
        Index("ix_webhook_delivery_client", "client_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id", ondelete="CASCADE"))
    # Only for the admin's overview; the body carries the id itself. A referral deleted by the retention
    # job leaves the delivery (its body has no data worth deleting).
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # given up
    last_status: Mapped[int | None]  # the receiver's HTTP status of the last attempt, if it answered
    last_error: Mapped[str] = mapped_column(String(200), default="")

    client: Mapped[ApiClient] = relationship(lazy="joined")

    @property
    def state(self) -> str:
        if self.delivered_at is not None:
            return "zugestellt"
        if self.failed_at is not None:
            return "fehlgeschlagen"
        return "wartet" if self.attempts == 0 else "erneuter Versuch"


# --- Secrets, URLs and signatures -------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret as Standard Webhooks libraries read it: "whsec_" + standard base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def check_url(url: str, *, production: bool | None = None) -> str | None:
    """Why `url` cannot be a webhook URL (German, for the admin), or None if it can.

    https only in production (http also elsewhere, for local receivers in tests and demos); no user or
    password in the URL (they would be shown on the admin page and end up in logs)."""
    if production is None:
        production = bool(current_app.config.get("REFERRAL_PRODUCTION"))
    if len(url) > 500:
        return "Die Adresse ist zu lang (höchstens 500 Zeichen)."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "Bitte eine gültige Adresse angeben (https://…)."
    allowed = {"https"} if production else {"https", "http"}
    if parts.scheme not in allowed or not parts.hostname:
        return "Bitte eine Adresse mit https:// angeben."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "Die Adresse darf keinen Benutzernamen und kein Passwort enthalten."
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "Die Adresse darf keine Leer- oder Steuerzeichen enthalten."
    return None


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("not a webhook secret")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def sign(secret: str, event_id: str, timestamp: int, body: str | bytes) -> str:
    """The `webhook-signature` header's value: "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{event_id}.{timestamp}.".encode() + payload
    return "v1," + base64.b64encode(hmac.new(_key(secret), message, hashlib.sha256).digest()).decode("ascii")


def unix_seconds(at: datetime) -> int:
    """`at` (naive UTC, as stored) in unix seconds; `.timestamp()` alone would read it as local time."""
    return int(at.replace(tzinfo=UTC).timestamp())


def headers_for(secret: str, event_id: str, body: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "referral-webhooks/1",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: str | bytes, *, now: datetime | None = None) -> bool:
    """The receiver's check (Standard Webhooks): is this request from us, unaltered and recent?

    `headers` as received (names in any case), `body` the raw request body (before any JSON parsing:
    the signature is over the exact bytes). The signature header may carry several space-separated
    signatures (during a key rotation); one matching is enough. Receivers should also drop an event
    whose `webhook-id` they have already processed: delivery is at least once."""
    lower = {name.lower(): value for name, value in headers.items()}
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    event_id, timestamp, signatures = (lower.get(name, "") for name in names)
    if not event_id or not (timestamp.isascii() and timestamp.isdigit()) or not signatures:
        return False
    if abs(unix_seconds(now or utcnow()) - int(timestamp)) > TOLERANCE.total_seconds():
        return False
    try:
        expected = sign(secret, event_id, int(timestamp), body).encode()
    except ValueError:  # a malformed secret
        return False
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split(" ") if candidate)


# --- Events -----------------------------------------------------------------------------------------


def _receivers(district_id: int) -> list[ApiClient]:
    return list(
        db.session.scalars(
            select(ApiClient)
            .join(api_client_district, api_client_district.c.client_id == ApiClient.id)
            .where(
                api_client_district.c.district_id == district_id,
                ApiClient.revoked_at.is_(None),
                ApiClient.webhook_url.is_not(None),
            )
            .order_by(ApiClient.id)
        )
    )


def body_of(event_id: str, event_type: str, at: datetime, referral_id: int, case_number: str) -> str:
    """The JSON body: ids and the case number only (see the module's docstring)."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "timestamp": at.replace(microsecond=0).isoformat() + "Z",
            "data": {"referral_id": referral_id, "case_number": case_number},
        },
        separators=(",", ":"),
    )


def emit(event_type: str, referral: Any, district_id: int, now: datetime | None = None) -> list[WebhookDelivery]:
    """One event about `referral` for the clients of `district_id`, in the caller's transaction."""
    if not referral.number:
        return []
    now = now or utcnow()
    event_id = str(uuid.uuid4())
    body = body_of(event_id, event_type, now, referral.id, referral.number)
    rows = [
        WebhookDelivery(
            event_id=event_id,
            event_type=event_type,
            client_id=client.id,
            referral_id=referral.id,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )
        for client in _receivers(district_id)
    ]
    db.session.add_all(rows)
    return rows


def _referral_changed(referral: Any, action: Any, change: Any = None, **extra: Any) -> None:
    from ..cases.process import Action

    if action is Action.SUBMIT:
        emit(SUBMITTED, referral, referral.district_id)
    elif action is Action.TRANSFER and change is not None and change.from_district_id is not None:
        emit(TRANSFERRED_OUT, referral, change.from_district_id)
        emit(TRANSFERRED_IN, referral, change.to_district_id or referral.district_id)
    elif action in (Action.ANSWER, Action.ADDENDUM):
        emit(MESSAGE_RECEIVED, referral, referral.district_id)


def feedback_due_soon(now: datetime | None = None) -> int:
    """The daily job's part: "feedback due soon" for open referrals whose feedback falls due within
    FEEDBACK_SOON, once per referral and due date (a reminder row guards it, also against an
    overlapping run). Each referral is committed on its own. Returns the number of events."""
    from ..cases.models import Referral
    from ..cases.process import OPEN_STATES
    from ..notifications.models import Reminder

    now = now or utcnow()
    soon = db.session.execute(
        select(Referral.id, Referral.feedback_due_at, Referral.district_id)
        .where(
            Referral.state.in_(OPEN_STATES),
            Referral.feedback_due_at >= now,
            Referral.feedback_due_at < now + FEEDBACK_SOON,
        )
        .order_by(Referral.id)
    ).all()
    count = 0
    for referral_id, due_at, district_id in soon:
        if not _receivers(district_id):
            continue  # nobody to tell: a client given a webhook later still hears of it
        db.session.add(Reminder(subject=f"referral:{referral_id}:feedback-soon", day=to_local(due_at).date()))
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            continue
        referral = db.session.get(Referral, referral_id)
        if referral is not None:
            count += bool(emit(FEEDBACK_DUE_SOON, referral, referral.district_id, now))
        db.session.commit()
    return count


# --- Delivery ---------------------------------------------------------------------------------------


def next_attempt(delivery: WebhookDelivery, now: datetime) -> datetime | None:
    """When to try again after the failed attempt number `delivery.attempts`; None: give up."""
    if now - delivery.created_at >= GIVE_UP_AFTER:
        return None
    delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
    return min(now + delay, delivery.created_at + GIVE_UP_AFTER)


def _claim(now: datetime) -> int | None:
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.failed_at.is_(None),
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == due.scalar_subquery(),
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.failed_at.is_(None),
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        .returning(WebhookDelivery.id)
    ).scalar()
    db.session.commit()
    return claimed


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is the receiver's answer, not a place to send the event on to


# No proxies from the environment: the URL the admin registered is the one called.
_OPENER = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))


def post(url: str, body: str, headers: dict[str, str]) -> int:
    """POSTs once; the receiver's HTTP status (raises OSError when it cannot be reached)."""
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(1024)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _send_one(delivery_id: int, now: Callable[[], datetime]) -> bool:
    """Sends one claimed delivery; True if the receiver took it. No transaction is open during the call."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    client = delivery.client
    target = (client.webhook_url, client.webhook_secret) if client.active and client.webhook_url else None
    event_id, body = delivery.event_id, delivery.body
    db.session.rollback()  # only read: the HTTP call below must not hold a transaction (or a lock) open

    status: int | None = None
    error = ""
    if target is None:
        error = "Kein Webhook mehr eingetragen oder Zugang widerrufen"
    else:
        url, secret = target
        try:
            status = post(url, body, headers_for(secret or "", event_id, body, unix_seconds(now())))
        except (OSError, ValueError) as problem:  # unreachable, refused, timed out, TLS; never the URL itself
            error = f"Nicht erreichbar ({type(problem).__name__})"
        else:
            error = "" if 200 <= status < 300 else f"HTTP {status}"

    delivery = db.session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    at = now()
    delivery.last_status, delivery.last_error = status, error[:200]
    if not error:
        delivery.delivered_at = at
    else:
        retry = next_attempt(delivery, at) if target is not None else None
        if retry is None:
            delivery.failed_at = at
            log.warning("webhook delivery %s to client %s failed for good: %s", delivery.id, delivery.client_id, error)
        else:
            delivery.next_attempt_at = retry
    db.session.commit()
    return not error


def deliver_webhooks(
    limit: int = 200, now: datetime | None = None, stop: Callable[[], bool] = lambda: False
) -> tuple[int, int]:
    """Send what is due; returns (delivered, failed attempts). Called by `flask worker` each round."""

    def clock() -> datetime:
        return now or utcnow()

    delivered = failed = 0
    for _ in range(limit):
        if stop():
            break
        claimed = _claim(clock())
        if claimed is None:
            break
        if _send_one(claimed, clock):
            delivered += 1
        else:
            failed += 1
    return delivered, failed


# --- What the admin sees ----------------------------------------------------------------------------


def prune_delivered(now: datetime, limit: int) -> int:
    """Delete up to `limit` deliveries delivered before `now - DELIVERED_KEPT` (the oldest first, through
    the index on delivered_at); the number deleted. The caller commits and calls again while it is `limit`."""
    oldest = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.delivered_at < now - DELIVERED_KEPT)
        .order_by(WebhookDelivery.delivered_at)
        .limit(limit)
    )
    ids = list(db.session.scalars(oldest))
    if ids:
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)


def webhook_overview(client: ApiClient, recent: int = 10) -> dict[str, Any]:
    """For the client's admin page: the latest deliveries, how many failed for good, the last error
    (a status or an error class: never the URL or a response body) and the next attempt."""
    rows = list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.client_id == client.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(recent)
        )
    )
    failed = db.session.scalar(
        select(func.count()).where(WebhookDelivery.client_id == client.id, WebhookDelivery.failed_at.is_not(None))
    )
    waiting = db.session.scalar(
        select(func.count()).where(
            WebhookDelivery.client_id == client.id,
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.failed_at.is_(None),
        )
    )
    next_at = db.session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.client_id == client.id,
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.failed_at.is_(None),
        )
    )
    last_error = db.session.execute(
        select(WebhookDelivery.last_error, WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.client_id == client.id, WebhookDelivery.last_error != "")
        .order_by(WebhookDelivery.next_attempt_at.desc(), WebhookDelivery.id.desc())
        .limit(1)
    ).first()
    return {
        "url": client.webhook_url,
        "recent": [
            {
                "event_id": row.event_id,
                "type": row.event_type,
                "label": EVENT_TYPES.get(row.event_type, row.event_type),
                "referral_id": row.referral_id,
                "case_number": json.loads(row.body)["data"]["case_number"],
                "created_at": row.created_at,
                "state": row.state,
                "attempts": row.attempts,
                "last_status": row.last_status,
                "last_error": row.last_error,
                "next_attempt_at": row.next_attempt_at if row.state in ("wartet", "erneuter Versuch") else None,
            }
            for row in rows
        ],
        "failed": failed or 0,
        "waiting": waiting or 0,
        "last_error": last_error[0] if last_error else "",
        "next_attempt_at": next_at,
    }


def register(app: Flask) -> None:
    from ..cases.process import referral_changed

    referral_changed.connect(_referral_changed)
    app.jinja_env.globals["webhook_overview"] = webhook_overview  # for the client page's partial
    _register_metrics()


def _metrics(now: datetime) -> Iterator[Metric]:
    """For /metrics: deliveries waiting (also retrying) and failed for good, counts only."""
    from prometheus_client.core import GaugeMetricFamily

    waiting, failed = db.session.execute(
        select(
            func.count().filter(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.failed_at.is_(None)),
            func.count().filter(WebhookDelivery.failed_at.is_not(None)),
        )
    ).one()
    yield GaugeMetricFamily("referral_webhook_deliveries_waiting", "Webhook deliveries not yet made.", value=waiting)
    yield GaugeMetricFamily(
        "referral_webhook_deliveries_failed", "Webhook deliveries given up after 24 hours of retries.", value=failed
    )


def _register_metrics() -> None:
    from ..observability.metrics import SCRAPE_COLLECTORS, scrape_collector

    if _metrics not in SCRAPE_COLLECTORS:
        scrape_collector(_metrics)
