"""Operations on accounts and memberships: the only door through which pages and `flask users`
commands change them (issue 12, "Operations are the only door").

Each operation checks what is allowed, changes, writes its audit entry and flushes. It never commits
or rolls back: the caller does (the admin view after the operation succeeded, a CLI command once per
command). So the same change leaves the same audit entry, whether it came from a page or the console.

`services.py` holds the building blocks (tokens, scope lookup, password check) that these
operations, the demo data and the tests' factories share; they write no audit entries.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from sqlalchemy import func, select

from ..audit.log import changed_fields, record
from ..extensions import db
from ..organisation.models import District, School
from . import services
from .models import ASD_ROLES, CITY_ROLES, SCHOOL_ROLES, Membership, Role, User
from .services import AccountError

__all__ = ["AccountError", "Actor", "Refused"]


class Refused(AccountError):
    """The change is not allowed (e.g. an admin deactivating their own account); nothing was changed."""


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit log records it: an admin signed in to the pages, or the operator at
    the console. The console has no account, so `user` is None, the role is "cli" and the scope
    names the operating-system user who ran the command (the real one behind sudo)."""

    user: User | None
    role: str
    scope: str

    @classmethod
    def admin(cls, user: User) -> Actor:
        if not user.has_role_in({Role.ADMIN}):
            raise PermissionError("Only an administrator changes accounts and the organisation.")
        return cls(user, Role.ADMIN.value, "Stadt")

    @classmethod
    def operator(cls) -> Actor:
        return cls(None, "cli", f"Konsole: {console_user()}"[:60])

    def is_(self, account: User) -> bool:
        return self.user is not None and self.user.id == account.id


def console_user() -> str:
    name = os.environ.get("SUDO_USER")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no name for the uid (e.g. a container's numeric user)
            name = f"uid {os.getuid()}"
    return name


def _audit(actor: Actor, action: str, obj=None, **kwargs) -> None:
    record(action, obj, role=actor.role, scope=actor.scope, actor=actor.user, **kwargs)


def membership_label(membership: Membership) -> str:
    return f"{membership.role.label} – {membership.scope_label}"[:120]


def _check_scope(role: Role, school: School | None, district: District | None) -> None:
    fits = (
        (role in SCHOOL_ROLES and school is not None and district is None)
        or (role in ASD_ROLES and district is not None and school is None)
        or (role in CITY_ROLES and school is None and district is None)
    )
    if not fits:
        raise AccountError(f"Die Rolle „{role.label}“ passt nicht zu diesem Bereich.")


# --- Creating accounts --------------------------------------------------------------------------


def invite(
    actor: Actor,
    email: str,
    name: str,
    phone: str,
    role: Role,
    school: School | None = None,
    district: District | None = None,
) -> User:
    """An account without a password and its first role; the invitation mail waits in the outbox of
    this transaction, so no link goes out for an account that was not stored."""
    _check_scope(role, school, district)
    user = services.invite(email, name, phone)
    _audit(actor, "user.invite", user, fields=["email", "name", "phone"])
    _add(actor, user, role, school, district)
    services.send_invitation(user)
    return user


def create_with_password(
    actor: Actor,
    email: str,
    name: str,
    password: str,
    phone: str,
    role: Role,
    school: School | None = None,
    district: District | None = None,
) -> User:
    """The console's way (the first admin of an installation): an account with a password at once."""
    _check_scope(role, school, district)
    user = services.create_user(email, name, password, phone)
    _audit(actor, "user.create", user, fields=["email", "name", "password", "phone"])
    _add(actor, user, role, school, district)
    return user


def invite_again(actor: Actor, user: User) -> None:
    if user.password is not None or not user.active:
        raise Refused("Dieses Konto hat schon ein Passwort oder ist deaktiviert; eine Einladung ist nicht nötig.")
    services.end_sessions(user)  # earlier links die: the token names the uniquifier
    _audit(actor, "user.invite_again", user, fields=[])
    services.send_invitation(user)


def accept_invitation(user: User, password: str) -> None:
    """The invitee sets the first password; they are the actor (the link proved their mailbox)."""
    services.set_first_password(user, password)
    record("user.accept_invitation", user, fields=["password"], actor=user)


def update(actor: Actor, user: User, name: str, phone: str) -> list[str]:
    """Name and phone; returns the names of what changed (nothing is recorded if nothing did)."""
    user.name, user.phone = name.strip(), (phone or "").strip()
    fields = changed_fields(user)
    if fields:
        _audit(actor, "user.update", user, fields=fields)
    return fields


# --- Memberships ------------------------------------------------------------------------------


def _add(actor: Actor, user: User, role: Role, school: School | None, district: District | None) -> Membership:
    membership = Membership(role=role, school=school, district=district)
    user.memberships.append(membership)
    db.session.flush()
    _audit(actor, "membership.add", user, fields=[membership_label(membership)])
    return membership


def add_membership(
    actor: Actor, user: User, role: Role, school: School | None = None, district: District | None = None
) -> Membership:
    _check_scope(role, school, district)
    if any(
        m.role == role
        and m.school_id == (school.id if school else None)
        and m.district_id == (district.id if district else None)
        for m in user.memberships
    ):
        raise Refused("Diese Rolle hat das Konto bereits.")
    return _add(actor, user, role, school, district)


def may_remove_membership(user: User | None, account: User, membership: Membership) -> bool:
    """An admin does not remove their own administration role: otherwise nobody might be left to
    manage the accounts. (The admin page offers no button for it either.)"""
    return not (user is not None and user.id == account.id and membership.role is Role.ADMIN)


def remove_membership(actor: Actor, user: User, membership: Membership) -> None:
    if not may_remove_membership(actor.user, user, membership):
        raise Refused(
            "Die eigene Administrationsrolle kann nicht entfernt werden (sonst verwaltet niemand mehr die Konten)."
        )
    label = membership_label(membership)
    user.memberships.remove(membership)
    _audit(actor, "membership.remove", user, fields=[label])
    db.session.flush()


# --- Access ----------------------------------------------------------------------------------


def _change(actor: Actor, action: str, user: User, change) -> None:
    change(user)
    _audit(actor, action, user, fields=changed_fields(user))
    db.session.flush()


def deactivate(actor: Actor, user: User) -> None:
    """Access ends at once (all sessions); the referrals stay with the school."""
    if actor.is_(user):
        raise Refused("Das eigene Konto kann nicht deaktiviert werden.")
    _change(actor, "user.deactivate", user, services.deactivate)


def reactivate(actor: Actor, user: User) -> None:
    _change(actor, "user.reactivate", user, services.reactivate)


def reset_two_factor(actor: Actor, user: User) -> None:
    """A lost phone: the authenticator is set up again at the next login."""
    _change(actor, "user.reset_two_factor", user, services.reset_two_factor)


def end_sessions(actor: Actor, user: User) -> None:
    if actor.is_(user):
        raise Refused("Die eigenen Sitzungen beenden Sie mit „Abmelden“.")
    _change(actor, "user.end_sessions", user, services.end_sessions)


def by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
