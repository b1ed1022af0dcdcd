"""Changes to the directory of contact people: who maintains what is checked here, not in the page.

Like every operation: check, change, record, flush; the caller (request or CLI) commits.
"""

from __future__ import annotations

from typing import Any

from ..accounts.models import User
from ..audit.log import changed_fields, record
from ..extensions import db
from ..organisation.models import School
from ..policy import directory as policy
from .models import Contact, ContactKind


class NotYours(PermissionError):
    """The person may not maintain this entry (the page answers 403)."""


def _check(user: User, kind: ContactKind, school: School | None) -> None:
    if not policy.may_maintain(user, kind, school):
        raise NotYours(f"{user.id} may not maintain {kind.value} contacts of this school")


def add_contact(user: User, kind: ContactKind, school: School | None, values: dict[str, Any]) -> Contact:
    _check(user, kind, school)
    contact = Contact(kind=kind, school=school, **values)
    db.session.add(contact)
    record("contact.create", contact, fields=changed_fields(contact), school_id=school.id if school else None)
    db.session.flush()
    return contact


def change_contact(user: User, contact: Contact, values: dict[str, Any]) -> bool:
    """True when something changed (only then is it recorded)."""
    _check(user, contact.kind, contact.school)
    for name, value in values.items():
        setattr(contact, name, value)
    fields = changed_fields(contact)
    if fields:
        record("contact.update", contact, fields=fields)
        db.session.flush()
    return bool(fields)


def remove_contact(user: User, contact: Contact) -> None:
    _check(user, contact.kind, contact.school)
    record("contact.delete", contact, fields=["name"])
    db.session.delete(contact)
    db.session.flush()
