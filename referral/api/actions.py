"""The API's changing endpoints: acknowledging a referral and recording the case software's file number.

Each one, in this order:
1. the token's scope (`require_scope`: 401/403);
2. an `Idempotency-Key` (400 without one), see idempotency.py;
3. the referral, if the client sees it (its districts, never a draft): else 404, as for a missing id;
4. a retry of an earlier request with the same key gets that request's stored response;
5. `If-Match` with the referral's current ETag `"<version>"` (428 without, 412 when stale);
6. the body (422 with a German `detail`);
7. the key is claimed, the change made through the same operation as on the ASD's pages, the response
   stored with the key. A refusal rolls everything back, the key with it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from ..accounts.models import User
from ..audit.log import record
from ..cases import services
from ..cases.models import Referral
from ..cases.process import Action
from ..extensions import db
from ..policy import referrals as policy
from ..timeutil import utcnow
from ..workflow.engine import lock_row
from ..workflow.errors import ConcurrentChange, ProcessError, lost_a_race
from . import idempotency
from .auth import current_client, require_scope
from .problems import problem
from .routes import visible_referral

MAX_REFERENCE = 60
# Checks a request's body: the arguments of the change after the referral, or the problem to answer.
Validate = Callable[[Referral, dict[str, Any]], tuple[Any, ...] | Response]


# --- Shared by both endpoints ------------------------------------------------------------------


def etag(referral: Referral) -> str:
    """Strong ETag of the referral's current state: every write bumps its version."""
    return f'"{referral.version}"'


def serialize(referral: Referral) -> dict[str, Any]:
    """The referral as the write endpoints answer (schema WriteResult): brief and without child data,
    because the answer is stored for retries with the same Idempotency-Key; the rest is GET /referrals/{id}."""
    return {
        "id": referral.id,
        "case_number": referral.number,
        "state": referral.state.value,
        "case_reference": referral.case_reference,
        "version": referral.version,
    }


def _not_found() -> Response:
    return problem(
        404, "Nicht gefunden", "Diese Mitteilung gibt es nicht, oder dieser Zugang sieht sie nicht.", "not-found"
    )


def _precondition(referral: Referral) -> Response | None:
    given = request.headers.get("If-Match", "").strip()
    if not given:
        return problem(
            428,
            "If-Match fehlt",
            "Änderungen brauchen den Header „If-Match“ mit dem ETag der Mitteilung, wie ihn GET "
            f"/api/v1/referrals/{referral.id} liefert (z. B. {etag(referral)}).",
            "precondition-required",
        )
    if etag(referral) not in {tag.strip() for tag in given.split(",")}:
        return _stale(referral.id)
    return None


def _stale(referral_id: int) -> Response:
    db.session.rollback()
    current = db.session.scalar(select(Referral.version).where(Referral.id == referral_id))
    return problem(
        412,
        "Mitteilung inzwischen geändert",
        "Die Mitteilung wurde inzwischen geändert (der ETag in „If-Match“ ist veraltet). Bitte die Mitteilung "
        "neu abrufen und die Änderung mit dem aktuellen ETag erneut senden.",
        "precondition-failed",
        headers={"ETag": f'"{current}"'} if current is not None else None,
    )


def _json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _invalid(detail: str, field: str) -> Response:
    db.session.rollback()
    return problem(422, "Ungültige Angaben", detail, "invalid-body", errors=[{"field": field, "detail": detail}])


def _answer(referral: Referral) -> Response:
    response = jsonify(serialize(referral))
    response.headers["ETag"] = etag(referral)
    response.headers["Cache-Control"] = "no-store"
    return response


def _change(referral_id: int, validate: Validate, act: Callable[..., object]) -> Response:
    """Steps 2 to 7 of the module's docstring. `validate(referral, body)` returns the arguments for
    `act(referral, *args)` or a problem response; `act` changes and flushes, raising ProcessError."""
    key = idempotency.key_from_request()
    if isinstance(key, Response):
        return key
    client = current_client()
    referral = visible_referral(referral_id)
    if referral is None:
        return _not_found()
    replayed = idempotency.replay(client.id, key)
    if replayed is not None:
        return replayed
    refused = _precondition(referral)
    if refused is not None:
        return refused
    body = _json_body()
    if body is None:
        return _invalid("Der Inhalt der Anfrage muss ein JSON-Objekt sein.", "")
    arguments = validate(referral, body)
    if isinstance(arguments, Response):
        return arguments
    claimed = idempotency.claim(client.id, key)
    if isinstance(claimed, Response):
        return claimed
    try:
        act(referral, *arguments)
        db.session.flush()
    except ConcurrentChange:
        return _stale(referral_id)
    except (StaleDataError, DBAPIError) as error:
        if not lost_a_race(error):
            raise
        return _stale(referral_id)
    except ProcessError as error:
        db.session.rollback()
        return problem(409, "Nicht möglich", str(error), "conflict")
    return idempotency.store(claimed, _answer(referral))


# --- Acknowledging -------------------------------------------------------------------------------


def _worker(referral: Referral, body: dict[str, Any]) -> tuple[User] | Response:
    email = body.get("asd_worker_email")
    # Printable only: an address holds no control characters (PostgreSQL cannot even compare a NUL).
    if not isinstance(email, str) or not email.strip() or len(email) > 254 or not email.isprintable():
        return _invalid("Bitte „asd_worker_email“ angeben: die E-Mail-Adresse der ASD-Fachkraft.", "asd_worker_email")
    worker = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    # One answer whether the address is unknown or not of this district: the client learns no accounts.
    if worker is None or not worker.active or not policy.may_by_role(worker, Action.ACKNOWLEDGE, referral):
        return _invalid(
            "Unter dieser E-Mail-Adresse gibt es keine aktive ASD-Fachkraft (oder Teamleitung) des Bezirks, "
            "in dem die Mitteilung liegt.",
            "asd_worker_email",
        )
    return (worker,)


def acknowledge(referral_id: int) -> Response:
    """Confirm receipt on behalf of a named ASD worker: the same operation as the ASD's button, so
    history, audit entry (the worker as actor) and the school's notification are the same."""

    # services.acknowledge refuses a wrong state with the rules' German sentence (ProcessError → 409).
    return _change(referral_id, _worker, services.acknowledge)


# --- The case software's file number --------------------------------------------------------------


def _reference(referral: Referral, body: dict[str, Any]) -> tuple[str] | Response:
    value = body.get("case_reference")
    if not isinstance(value, str):
        return _invalid("Bitte „case_reference“ als Text angeben (1 bis 60 Zeichen).", "case_reference")
    value = value.strip()
    if not 1 <= len(value) <= MAX_REFERENCE:
        return _invalid("Das Aktenzeichen muss 1 bis 60 Zeichen lang sein.", "case_reference")
    # Control, format and private-use characters, unassigned code points and line breaks have no place in
    # a file number shown on a page (letters, digits, punctuation and spaces of any script are fine).
    if any(unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp") for char in value):
        return _invalid("Das Aktenzeichen darf keine Steuerzeichen (z. B. Zeilenumbrüche) enthalten.", "case_reference")
    return (value,)


def record_reference(referral: Referral, reference: str) -> None:
    """Set the Aktenzeichen: the row locked and its version compared, as the workflow does, then
    changed (the version bumps, so the ETag changes) with an audit entry naming the client."""
    with db.session.no_autoflush:
        current = lock_row(Referral.__table__, referral.id)
    if current != referral.version:
        raise ConcurrentChange("")
    if referral.case_reference == reference:
        return  # nothing to change: the same ETag stays valid
    referral.case_reference = reference
    referral.updated_at = utcnow()
    db.session.flush()
    client = current_client()
    record(
        "referral.case_reference",
        referral,
        object_type="referral",
        fields=["case_reference"],
        role="api",
        scope=f"API: {client.client_id}"[:60],
        actor=None,
    )


def case_reference(referral_id: int) -> Response:
    return _change(referral_id, _reference, record_reference)


# --- Wiring --------------------------------------------------------------------------------------

ROUTES = [
    ("/referrals/<int:referral_id>/acknowledge", "acknowledge", ["POST"], "referrals:acknowledge", acknowledge),
    ("/referrals/<int:referral_id>/case-reference", "case_reference", ["PUT"], "referrals:reference", case_reference),
]


def register(blueprint: Blueprint) -> None:
    """Add the endpoints to the API blueprint (before the app registers it); a second call does nothing."""
    if blueprint.name + ".acknowledge" in getattr(blueprint, "_write_endpoints", set()):
        return
    for rule, endpoint, methods, scope, view in ROUTES:
        blueprint.add_url_rule(rule, endpoint, require_scope(scope)(view), methods=methods)
    blueprint._write_endpoints = {blueprint.name + "." + endpoint for _, endpoint, *_ in ROUTES}  # type: ignore[attr-defined]
