"""The API's routes under /api/v1 (JSON; the OpenAPI document describes each: openapi.py).

A client sees exactly what the ASD of its districts sees: the district part of the referrals' policy
(`policy.district_scope`), never drafts; another district's referral answers 404 like a missing one.
Every call is an audit entry (after_request below), also for WRITE's routes on this blueprint.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, render_template, request, send_file, stream_with_context
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import lazyload

from .. import lifecycle
from ..audit.log import record
from ..cases import storage
from ..cases.models import Attachment, Referral
from ..cases.process import State, history_for
from ..cases.routes import _download_name
from ..cases.vocabulary import Urgency
from ..extensions import csrf, db
from ..integers import DB_INT_MAX
from ..policy.referrals import district_scope
from ..timeutil import utcnow
from . import serialize
from . import token as tokens
from .auth import current_client, require_scope
from .problems import problem

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(blueprint)  # no cookies, no session: a bearer token authenticates each request

READ = "referrals:read"
PAGE_DEFAULT, PAGE_MAX = 50, 200
# Public: the description of the API (its document and the page rendered from it).
PUBLIC_ENDPOINTS = {"api.openapi", "api.docs"}


# --- Problems ----------------------------------------------------------------------------------


def not_found() -> Response:
    return problem(
        404,
        "Nicht gefunden",
        "Diese Mitteilung oder dieser Anhang existiert nicht oder gehört nicht zu den Bezirken dieses Zugangs.",
        "not-found",
    )


def bad_parameter(name: str, detail: str) -> Response:
    return problem(400, "Ungültiger Parameter", detail, "invalid-parameter", parameter=name)


class BadParameter(Exception):
    def __init__(self, name: str, detail: str):
        super().__init__(detail)
        self.name, self.detail = name, detail


# --- Token -------------------------------------------------------------------------------------


@blueprint.post("/token")
def token() -> Response:
    """OAuth 2.0 client credentials (client_secret_basic or client_secret_post)."""
    return tokens.issue()


# --- Referrals ---------------------------------------------------------------------------------


def _visible() -> Select[tuple[Referral]]:
    """The referrals of the client's districts as their ASD sees them (never drafts)."""
    return select(Referral).where(district_scope(current_client().district_ids))


def visible_referral(referral_id: int) -> Referral | None:
    """The referral if the current client may see it (read and write endpoints alike); None otherwise,
    as for a missing id. A transferred referral is the receiving district's."""
    found: Referral | None = db.session.scalar(_visible().where(Referral.id == referral_id))
    return found


def _encode(mode: str, at: datetime, ident: int, sync: datetime | None = None) -> str:
    data: dict[str, Any] = {"m": mode, "t": at.isoformat(), "i": ident}
    if sync is not None:
        data["s"] = sync.isoformat()
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(name: str, value: str) -> tuple[str, datetime, int, datetime | None]:
    refused = BadParameter(name, f"„{name}“ ist kein gültiger Cursor dieser Schnittstelle.")
    if len(value) > 300:
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        mode, at, ident = data["m"], datetime.fromisoformat(data["t"]), int(data["i"])
        sync = datetime.fromisoformat(data["s"]) if "s" in data else None
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, OverflowError) as error:
        raise refused from error
    if mode not in ("d", "s") or not 0 <= ident <= DB_INT_MAX or (mode == "d" and sync is None):
        raise refused
    if at.tzinfo is not None or (sync is not None and sync.tzinfo is not None):
        raise refused
    return mode, at, ident, sync


def _enum(name: str, kind: Any, allowed: Any = None) -> Any:
    value = request.args.get(name)
    if value is None:
        return None
    choices = [m for m in (allowed or kind)]
    for member in choices:
        if member.value == value:
            return member
    raise BadParameter(name, f"„{name}“ muss einer dieser Werte sein: {', '.join(m.value for m in choices)}.")


def _limit() -> int:
    value = request.args.get("limit")
    if value is None:
        return PAGE_DEFAULT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= PAGE_MAX:  # "²" is a digit, too
        raise BadParameter("limit", f"„limit“ muss eine ganze Zahl von 1 bis {PAGE_MAX} sein.")
    return int(value)


def _settled() -> datetime:
    """Changes up to this moment are complete: a change is stamped when its request begins and visible
    when it commits, so the newest few seconds are delivered by the next call instead."""
    return utcnow() - timedelta(seconds=current_app.config.get("API_SYNC_SETTLE_SECONDS", 60))


def _after(at: datetime, ident: int) -> ColumnElement[bool]:
    return or_(Referral.updated_at > at, and_(Referral.updated_at == at, Referral.id > ident))


def _before(at: datetime, ident: int) -> ColumnElement[bool]:
    return or_(Referral.updated_at < at, and_(Referral.updated_at == at, Referral.id < ident))


@blueprint.get("/referrals")
@require_scope(READ)
def referrals() -> Response:
    """Newest changes first (walk on with `cursor`), or the changes after `changed_since`, oldest first."""
    try:
        limit = _limit()
        state = _enum("state", State, [s for s in State if s is not State.DRAFT])
        urgency = _enum("urgency", Urgency)
        cursor, since = request.args.get("cursor"), request.args.get("changed_since")
        if cursor is not None and since is not None:
            raise BadParameter("cursor", "Bitte entweder „cursor“ oder „changed_since“ angeben, nicht beide.")
        position = _decode("cursor", cursor) if cursor is not None else None
        if since is not None:
            position = _decode("changed_since", since)
            if position[0] != "s":
                raise BadParameter("changed_since", "„changed_since“ nimmt nur einen „sync_cursor“ entgegen.")
    except BadParameter as bad:
        return bad_parameter(bad.name, bad.detail)
    statement = _visible().options(lazyload(Referral.categories))
    if state is not None:
        statement = statement.where(Referral.state == state)
    if urgency is not None:
        statement = statement.where(Referral.urgency == urgency)
    if position is not None and position[0] == "s":
        # Changes after the cursor, oldest first, up to the settled moment: a walk that never misses one.
        _, at, ident, _ = position
        statement = statement.where(_after(at, ident), Referral.updated_at <= _settled())
        rows = list(db.session.scalars(statement.order_by(Referral.updated_at, Referral.id).limit(limit + 1)))
        more, rows = len(rows) > limit, rows[:limit]
        last = _encode("s", rows[-1].updated_at, rows[-1].id) if rows else _encode("s", at, ident)
        next_cursor, sync_cursor = (last if more else None), last
    else:
        sync = position[3] if position is not None else _settled()
        assert sync is not None
        if position is not None:
            statement = statement.where(_before(position[1], position[2]))
        order = (Referral.updated_at.desc(), Referral.id.desc())
        rows = list(db.session.scalars(statement.order_by(*order).limit(limit + 1)))
        more, rows = len(rows) > limit, rows[:limit]
        next_cursor = _encode("d", rows[-1].updated_at, rows[-1].id, sync) if more else None
        # Everything changed after the first page's moment: where the client's next sync begins.
        sync_cursor = _encode("s", sync, 0)
    body = {"items": [serialize.summary(r) for r in rows], "next_cursor": next_cursor, "sync_cursor": sync_cursor}
    response = _json(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _json(body: Any, status: int = 200) -> Response:
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status, mimetype="application/json"
    )
    return response


def referral_response(referral: Referral, status: int = 200) -> Response:
    """The referral's JSON with its version as ETag (WRITE's endpoints answer the same)."""
    response = _json(serialize.detail(referral), status)
    response.headers["ETag"] = f'"{referral.version}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _audited_view(action: str, referral: Referral, fields: list[str] | None = None) -> None:
    """As the ASD's page records its view: the client is named in role and scope."""
    client = current_client()
    record(
        action, referral, object_type="referral", role="api", scope=_scope_label(client.client_id), fields=fields or []
    )


@blueprint.get("/referrals/<int:referral_id>")
@require_scope(READ)
def referral(referral_id: int) -> Response:
    found = visible_referral(referral_id)
    if found is None:
        return not_found()
    _audited_view("referral.view", found, [request.endpoint or ""])
    return referral_response(found)


@blueprint.get("/referrals/<int:referral_id>/attachments/<int:attachment_id>")
@require_scope(READ)
def attachment(referral_id: int, attachment_id: int) -> Response:
    found = visible_referral(referral_id)
    item = (
        db.session.scalar(select(Attachment).where(Attachment.id == attachment_id, Attachment.referral_id == found.id))
        if found is not None
        else None
    )
    if found is None or item is None:
        return not_found()
    try:
        content = storage.open_content(item)
    except storage.ContentMissing as missing:
        current_app.logger.error("Attachment %s not served over the API: %s", item.id, missing)
        return problem(
            503,
            "Anhang nicht lesbar",
            "Der Inhalt dieses Anhangs ist gerade nicht lesbar gespeichert. Der Fehler ist protokolliert.",
            "attachment-unreadable",
            headers={"Retry-After": "3600"},
        )
    _audited_view("attachment.download", found, [f"attachment {item.id}"])
    response = Response(stream_with_context(iter(content)), mimetype=item.content_type)
    response.content_length = item.size
    response.headers.set("Content-Disposition", "attachment", **_download_name(item.filename))
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/referrals/<int:referral_id>/pdf")
@require_scope(READ)
def pdf(referral_id: int) -> Response:
    """The PDF of record, as the ASD downloads it (with assessment, feedback and the ASD's history)."""
    from ..cases.pdf import NotMade, render

    found = visible_referral(referral_id)
    if found is None or found.state is State.DRAFT:
        return not_found()
    try:
        data = render(found, asd_side=True, may_read_feedback=True, history=history_for(found, asd_side=True))
    except NotMade as not_made:
        current_app.logger.error("PDF of referral %s not made: %s", found.id, not_made.for_the_log)
        return problem(503, "PDF nicht erstellt", not_made.for_the_user, "pdf-not-made")
    _audited_view("referral.export_pdf", found)
    response = send_file(
        BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=f"Mitteilung-{found.number}.pdf"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- The description ---------------------------------------------------------------------------


@blueprint.get("/openapi.json")
def openapi() -> Response:
    from .openapi import document

    response = _json(document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blueprint.get("/docs")
def docs() -> Response | str:
    from .openapi import document, for_page

    return render_template("api/docs.html", **for_page(document()))


# --- Every call an audit entry; HTTPS only in production ---------------------------------------


def _scope_label(client_id: str | None) -> str:
    return f"API: {client_id or 'unbekannt'}"[:60]


@blueprint.before_request
def https_only() -> Response | None:
    return None if request.endpoint in PUBLIC_ENDPOINTS else tokens.transport_refused()


@blueprint.after_request
def audit_call(response: Response) -> Response:
    """One entry per call: the client, the endpoint, the referral, the result (status)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return response
    refused = tokens.transport_refused()
    if refused is not None:
        response = refused  # Talisman's redirect to https came after the credentials had crossed in clear
    client = g.get("api_client")
    # Before authentication (a 429 of the rate limit): the client whose token it was, if it was one.
    client_id = client.client_id if client is not None else g.get("api_token_client_id")
    if response.status_code >= 400:
        # Nothing of a refused call stays but the record of it (lifecycle.py).
        db.session.rollback()
        lifecycle.keep()
    args = request.view_args or {}
    # Which referral only for an authenticated client: anyone else could write any id into the log.
    referral_id = args.get("referral_id") if client is not None else None
    record(
        "api.call",
        object_type="referral" if referral_id is not None else "api",
        object_id=referral_id if referral_id is not None else (request.endpoint or request.path)[:40],
        role="api",
        scope=_scope_label(client_id),
        actor=None,
        fields=[request.endpoint or request.path, str(response.status_code)],
    )
    return response


def register(app: Flask) -> None:
    tokens.register(app, blueprint)
    app.register_blueprint(blueprint)
