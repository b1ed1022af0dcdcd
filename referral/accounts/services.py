"""Creating users and memberships; used by the CLI and the demo data (later also by the admin pages)."""

from __future__ import annotations

import uuid

from flask import current_app, render_template, url_for
from flask_security import hash_password
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, or_, select

from ..extensions import db
from ..organisation.models import District, School
from .models import ASD_ROLES, SCHOOL_ROLES, Membership, Role, User


class AccountError(ValueError):
    pass


def security_state():
    return current_app.extensions["security"]


def find_scope(role: Role, scope: str | None) -> tuple[School | None, District | None]:
    """Resolve a school (name or id) or district (code or name) for the role's kind of scope."""
    if role in SCHOOL_ROLES:
        school = db.session.scalar(
            select(School).where(or_(School.name == scope, func.cast(School.id, db.String) == scope))
        )
        if school is None:
            raise AccountError(f"Unknown school: {scope!r}")
        return school, None
    if role in ASD_ROLES:
        district = db.session.scalar(select(District).where(or_(District.code == scope, District.name == scope)))
        if district is None:
            raise AccountError(f"Unknown district: {scope!r}")
        return None, district
    if scope:
        raise AccountError(f"The role {role.value} has the whole city as its scope; give no scope.")
    return None, None


def create_user(email: str, name: str, password: str, phone: str = "") -> User:
    email = email.strip().lower()
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise AccountError(f"A user with the address {email} exists already.")
    problems, password = security_state().password_util.validate(password, True, email=email, name=name)
    if problems:
        raise AccountError(" ".join(str(p) for p in problems))
    user = User(email=email, name=name.strip(), phone=phone, password=hash_password(password), active=True)
    db.session.add(user)
    return user


def add_membership(user: User, role: Role, scope: str | None = None) -> Membership:
    school, district = find_scope(role, scope)
    membership = Membership(role=role, school=school, district=district)
    user.memberships.append(membership)
    return membership


def invite(email: str, name: str, phone: str = "") -> User:
    """An account without a password: the invitee sets one through the link in the invitation."""
    email = email.strip().lower()
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise AccountError("Für diese E-Mail-Adresse gibt es bereits ein Konto.")
    user = User(email=email, name=name.strip(), phone=phone.strip(), password=None, active=True)
    db.session.add(user)
    return user


def _invitations() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="invitation")


def invitation_token(user: User) -> str:
    # Bound to fs_uniquifier: a new invitation (or ended sessions) invalidates older links.
    return _invitations().dumps(user.fs_uniquifier)


def send_invitation(user: User) -> None:
    """Queue the invitation in the outbox, in the transaction that creates or renews the invitation."""
    from ..notifications.delivery import enqueue

    link = url_for("accounts.accept_invitation", token=invitation_token(user), _external=True)
    body = render_template(
        "email/invitation.txt", user=user, link=link, hours=current_app.config["INVITATION_VALID_HOURS"]
    )
    enqueue(user.email, "Einladung: Mitteilungen Schule-ASD", body)


def invited_user(token: str) -> User | None:
    """The user a valid, unused invitation link belongs to; None for expired, used or forged links."""
    try:
        uniquifier = _invitations().loads(token, max_age=current_app.config["INVITATION_VALID_HOURS"] * 3600)
    except (SignatureExpired, BadSignature):
        return None
    user = db.session.scalar(select(User).where(User.fs_uniquifier == uniquifier))
    if user is None or user.password is not None or not user.active:
        return None  # used once already (a password is set), or deactivated since
    return user


def set_first_password(user: User, password: str) -> None:
    user.password = hash_password(password)
    end_sessions(user)  # the link is spent: it named the old uniquifier


def reset_two_factor(user: User) -> None:
    """A lost phone: the user sets up the authenticator again at the next login."""
    user.tf_primary_method = None
    user.tf_totp_secret = None
    user.mf_recovery_codes = None
    end_sessions(user)


def reactivate(user: User) -> None:
    user.active = True


def end_sessions(user: User) -> None:
    """Every session cookie names the user by fs_uniquifier; a new one invalidates them all."""
    user.fs_uniquifier = uuid.uuid4().hex


def deactivate(user: User) -> None:
    user.active = False
    end_sessions(user)
