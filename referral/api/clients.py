"""Operations on API clients: the only door through which the admin page and `flask api-clients`
change them. Each writes its audit entry and flushes; the caller commits (as accounts/operations.py).

Secrets are shown once, when made, and stored only as hashes. A rotation keeps the old secret valid for
a grace period, so that the case software can switch without an outage; a revocation ends the client's
tokens at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..accounts.operations import Actor, Refused
from ..audit.log import record
from ..extensions import db
from ..organisation.models import District
from ..timeutil import utcnow
from .models import SCOPES, ApiClient, ApiToken

__all__ = ["Refused", "authenticate", "create", "digest", "revoke", "rotate", "set_webhook"]

DEFAULT_GRACE = timedelta(days=7)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _audit(actor: Actor, action: str, client: ApiClient, fields: list[str]) -> None:
    record(action, client, role=actor.role, scope=actor.scope, actor=actor.user, fields=fields)


def _check(name: str, districts: list[District], scopes: list[str]) -> None:
    if not name.strip() or len(name) > 120:
        raise Refused("Bitte einen Namen für den Zugang angeben (höchstens 120 Zeichen).")
    if not districts:
        raise Refused("Bitte mindestens einen Bezirk angeben.")
    if not scopes or set(scopes) - set(SCOPES):
        raise Refused(f"Bitte Berechtigungen aus {', '.join(SCOPES)} angeben.")


def create(actor: Actor, name: str, districts: list[District], scopes: list[str]) -> tuple[ApiClient, str]:
    """A new client and its secret (shown once)."""
    _check(name, districts, scopes)
    secret = _new_secret()
    client = ApiClient(
        name=name.strip(),
        client_id="cl_" + secrets.token_hex(12),
        secret_hash=digest(secret),
        scopes=sorted(set(scopes)),
        districts=list(districts),
    )
    db.session.add(client)
    db.session.flush()
    _audit(actor, "api_client.create", client, ["name", "districts", "scopes"])
    return client, secret


def update(actor: Actor, client: ApiClient, districts: list[District], scopes: list[str]) -> None:
    _check(client.name, districts, scopes)
    client.districts = list(districts)
    client.scopes = sorted(set(scopes))
    _end_tokens(client)  # a token carries its scopes; the new ones apply from the next token
    db.session.flush()
    _audit(actor, "api_client.update", client, ["districts", "scopes"])


def rotate(actor: Actor, client: ApiClient, grace: timedelta = DEFAULT_GRACE) -> str:
    """A new secret (shown once); the old one keeps working for `grace`."""
    if not client.active:
        raise Refused("Ein widerrufener Zugang kann keinen neuen Schlüssel bekommen.")
    secret = _new_secret()
    client.previous_secret_hash = client.secret_hash
    client.previous_valid_until = utcnow() + grace
    client.secret_hash = digest(secret)
    db.session.flush()
    _audit(actor, "api_client.rotate", client, ["secret_hash"])
    return secret


def revoke(actor: Actor, client: ApiClient) -> None:
    if not client.active:
        return
    client.revoked_at = utcnow()
    client.previous_secret_hash = None
    client.previous_valid_until = None
    _end_tokens(client)
    db.session.flush()
    _audit(actor, "api_client.revoke", client, ["revoked_at"])


def set_webhook(actor: Actor, client: ApiClient, url: str | None) -> str | None:
    """Registers (or, with None, removes) the webhook URL; returns a new signing secret (shown once)."""
    if not url:
        client.webhook_url = client.webhook_secret = None
        db.session.flush()
        _audit(actor, "api_client.webhook", client, ["webhook_url"])
        return None
    from .webhooks import check_url, new_secret

    if not client.active:
        raise Refused("Ein widerrufener Zugang bekommt keinen Webhook.")
    if problem := check_url(url):
        raise Refused(problem)
    if url == client.webhook_url and client.webhook_secret:
        # A new key would break the signatures of deliveries under way: only a new address makes one.
        raise Refused("Die Adresse ist unverändert; der Signaturschlüssel bleibt, wie er ist.")
    secret = new_secret()  # Standard Webhooks: "whsec_" + standard base64 of the key
    client.webhook_url = url
    client.webhook_secret = secret
    db.session.flush()
    _audit(actor, "api_client.webhook", client, ["webhook_url", "webhook_secret"])
    return secret


def _end_tokens(client: ApiClient) -> None:
    db.session.execute(delete(ApiToken).where(ApiToken.client_id == client.id))


CLIENT_ID = re.compile(r"cl_[0-9a-f]{24}")  # as create() makes them


def authenticate(client_id: str, secret: str, now: datetime | None = None) -> ApiClient | None:
    """The active client whose current (or, within the grace period, previous) secret this is. Whatever a
    caller sends as client_id reaches no query unless it has the shape of one (a NUL byte, for one, would
    be a database error on PostgreSQL, not a refusal)."""
    client = by_client_id(client_id)
    if client is None or not client.active:
        digest(secret)  # the same work whether the client exists or not
        return None
    given = digest(secret)
    now = now or utcnow()
    if hmac.compare_digest(given, client.secret_hash):
        return client
    previous = client.previous_secret_hash
    in_grace = previous and client.previous_valid_until and now < client.previous_valid_until
    if in_grace and hmac.compare_digest(given, previous):
        return client
    return None


def by_client_id(client_id: str) -> ApiClient | None:
    if not (isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id)):
        return None
    return db.session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
