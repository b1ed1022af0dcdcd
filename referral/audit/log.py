"""Writing audit entries. `record()` adds the entry to the current transaction: if the change is
rolled back, so is its entry, and if the entry cannot be written, the change fails."""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import inspect

from ..extensions import db
from .models import AuditEntry

# Human-readable names of the recorded actions (for the admin's list of changes).
ACTION_LABELS = {
    "user.invite": "Benutzer eingeladen",
    "user.invite_again": "Einladung erneut gesendet",
    "user.accept_invitation": "Einladung angenommen (Passwort gesetzt)",
    "user.update": "Benutzer geändert",
    "user.deactivate": "Benutzer deaktiviert",
    "user.reactivate": "Benutzer reaktiviert",
    "user.reset_two_factor": "Zwei-Faktor-Anmeldung zurückgesetzt",
    "user.end_sessions": "Sitzungen beendet",
    "membership.add": "Rolle hinzugefügt",
    "membership.remove": "Rolle entfernt",
    "district.create": "Bezirk angelegt",
    "district.update": "Bezirk geändert",
    "school.create": "Schule angelegt",
    "school.update": "Schule geändert",
    "settings.update": "Fristen geändert",
    "export.users": "Benutzerliste exportiert",
}


def request_id() -> str:
    if not has_request_context():
        return ""
    if "request_id" not in g:
        g.request_id = str(uuid.uuid4())
    return g.request_id


def changed_fields(obj) -> list[str]:
    """Names of the attributes of `obj` changed in this transaction (names only, never values)."""
    state = inspect(obj)
    return sorted(attr.key for attr in state.attrs if attr.history.has_changes())


def record(action: str, obj=None, *, object_type: str = "", object_id=None, fields: Iterable[str] = (),
           role: str = "", scope: str = "", actor=None) -> AuditEntry:
    if obj is not None:
        object_type = object_type or obj.__tablename__
        if object_id is None:
            if inspect(obj).pending:
                db.session.flush([obj])  # a new object needs its id for the entry
            object_id = inspect(obj).identity[0]
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None, actor_role=role, actor_scope=scope,
        action=action, object_type=object_type, object_id="" if object_id is None else str(object_id),
        fields=sorted(set(fields)), request_id=request_id(),
    )
    db.session.add(entry)
    return entry


def register(app) -> None:
    @app.after_request
    def tell_request_id(response):
        # The id lets support find a request's audit entries without any case data in a ticket.
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response
