"""Idempotency keys for the API's changing requests (POST, PUT): a retry never acts twice.

The client sends `Idempotency-Key: <its own unique value>` with every change. The first request with a
key inserts the key's row *before* it acts, in the request's one transaction, and stores its response
there once it succeeded; the request's commit makes key, change and stored response durable together.

- A retry with the same key and the same request (method, path, body) gets the stored response, with
  `Idempotent-Replayed: true`, and nothing is done again.
- The same key with a different request is refused (422): the client has a bug.
- Two requests with the same key at once: the unique constraint on (client, key) makes the second
  wait at its insert until the first has committed (then it answers with the stored response) or
  rolled back (then it acts itself). Where the wait ends in an error (a lock or statement timeout),
  it answers 409 "wird bereits verarbeitet".
- Only successful responses are stored. A refusal (wrong state, stale ETag, invalid body) changes
  nothing and is rolled back with its key, so a retry asks again and gets the current answer.
- Keys are kept for 24 hours; each new key removes its client's older ones.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow
from .problems import problem

KEY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
KEPT_FOR = timedelta(hours=24)


class ApiIdempotencyKey(db.Model):
    """One idempotency key of one client, with the fingerprint of its request and, once it succeeded,
    its response."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    # SHA-256 of method, path and body: the same key must come with the same request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


def fingerprint() -> str:
    """Method, path and body of the current request. A JSON body counts by its content (key order and
    spacing do not matter); anything else by its bytes."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), hashlib.sha256(body).hexdigest().encode()):
        digest.update(part + b"\n")
    return digest.hexdigest()


def key_from_request() -> str | Response:
    """The request's idempotency key, or the 400 problem that says what is wrong with it."""
    key = request.headers.get(KEY_HEADER, "").strip()
    # Visible ASCII only: a control character (NUL above all, which PostgreSQL cannot store) is no key.
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        return problem(
            400,
            "Idempotency-Key fehlt oder ist ungültig",
            f"Jede ändernde Anfrage braucht den Header „{KEY_HEADER}“ mit einem eindeutigen Wert (höchstens "
            f"{MAX_KEY_LENGTH} sichtbare ASCII-Zeichen), z. B. einer UUID. Eine Wiederholung mit demselben "
            "Wert wird nicht noch einmal ausgeführt.",
            "idempotency-key-missing",
        )
    return key


def _cutoff() -> datetime:
    return utcnow() - KEPT_FOR


def _find(client_id: int, key: str) -> ApiIdempotencyKey | None:
    return db.session.scalar(
        select(ApiIdempotencyKey).where(
            ApiIdempotencyKey.client_id == client_id,
            ApiIdempotencyKey.key == key,
            ApiIdempotencyKey.created_at >= _cutoff(),
        )
    )


def _replay(stored: ApiIdempotencyKey, print_: str) -> Response | None:
    if stored.fingerprint != print_:
        return problem(
            422,
            "Idempotency-Key schon verwendet",
            "Dieser Idempotency-Key wurde bereits für eine andere Anfrage verwendet. Bitte für jede neue "
            "Änderung einen neuen Wert senden.",
            "idempotency-key-reused",
        )
    if stored.status is None:  # not committed without a response; only seen if that ever changes
        return in_progress()
    response = jsonify(stored.body)
    response.status_code = stored.status
    response.headers["Idempotent-Replayed"] = "true"
    if isinstance(stored.body, dict) and "version" in stored.body:
        response.headers["ETag"] = f'"{stored.body["version"]}"'
    return response


def in_progress() -> Response:
    return problem(
        409,
        "Anfrage wird bereits verarbeitet",
        "Eine Anfrage mit diesem Idempotency-Key wird bereits verarbeitet. Bitte die Anfrage mit demselben "
        "Key in einigen Sekunden wiederholen.",
        "idempotency-key-in-progress",
    )


def replay(client_id: int, key: str) -> Response | None:
    """The stored answer to an earlier request with this key (or the refusal of a reused key);
    None when the key is new."""
    stored = _find(client_id, key)
    return None if stored is None else _replay(stored, fingerprint())


def claim(client_id: int, key: str) -> ApiIdempotencyKey | Response:
    """Insert the key's row before acting (flushed in the request's transaction). If another request
    holds the same key, this waits for it and returns its stored answer (or the 409 while it runs)."""
    db.session.execute(
        delete(ApiIdempotencyKey).where(
            ApiIdempotencyKey.client_id == client_id, ApiIdempotencyKey.created_at < _cutoff()
        )
    )
    row = ApiIdempotencyKey(client_id=client_id, key=key, fingerprint=fingerprint())
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent request with the same key committed first
        db.session.rollback()
        stored = _find(client_id, key)
        return in_progress() if stored is None else (_replay(stored, row.fingerprint) or in_progress())
    except DBAPIError:  # the wait for the other request ended in a lock or statement timeout
        db.session.rollback()
        return in_progress()
    return row


def prune_expired(now: datetime, limit: int) -> int:
    """Delete up to `limit` keys older than KEPT_FOR, of every client (`claim` only removes the old keys
    of a client that sends a new one; a client that stopped would keep its keys forever); the number
    deleted. The daily "prune" job commits and calls again while it is `limit`."""
    ids = list(
        db.session.scalars(
            select(ApiIdempotencyKey.id)
            .where(ApiIdempotencyKey.created_at < now - KEPT_FOR)
            .order_by(ApiIdempotencyKey.created_at)
            .limit(limit)
        )
    )
    if ids:
        db.session.execute(delete(ApiIdempotencyKey).where(ApiIdempotencyKey.id.in_(ids)))
    return len(ids)


def store(row: ApiIdempotencyKey, response: Response) -> Response:
    """Keep a successful response for the key's retries (committed with the change)."""
    row.status = response.status_code
    row.body = response.get_json()
    db.session.flush()
    return response
