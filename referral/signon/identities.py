"""Which account a provider identity belongs to, and linking it: the rules of single sign-on.

- A later login finds the account by issuer + subject only.
- The first login links the identity to the account that the admin invited under the same e-mail
  address, but only if the provider says that address is verified. There is no self-registration:
  without such an account nobody is let in.
- The admin may link an identity by its subject on the account page, or unlink it.
Every link and unlink is an audit entry; like all operations these only flush (the request commits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..accounts.models import User
from ..accounts.operations import Actor, Refused, by_email
from ..audit.log import login_refused, record
from ..extensions import db
from .models import SignOnIdentity
from .settings import Provider

__all__ = ["Refused", "Verdict", "identify", "link_by_admin", "unlink"]


@dataclass(frozen=True)
class Verdict:
    """The account to log in, or why nobody is logged in (`refusal` names the page to show)."""

    user: User | None
    refusal: str = ""


def _roles(user: User) -> set[str]:
    return {membership.role.value for membership in user.memberships}


def linked_account(provider: Provider, subject: str) -> User | None:
    return db.session.scalar(
        select(User)
        .join(SignOnIdentity, SignOnIdentity.user_id == User.id)
        .where(SignOnIdentity.issuer == provider.issuer, SignOnIdentity.subject == subject)
    )


def _link(provider: Provider, user: User, subject: str, linked_by: str) -> SignOnIdentity:
    identity = SignOnIdentity(user=user, issuer=provider.issuer, subject=subject, linked_by=linked_by)
    db.session.add(identity)
    db.session.flush()
    return identity


def identify(provider: Provider, claims: Mapping[str, Any]) -> Verdict:
    """The account for the validated ID token's claims, linking it at the first login by a verified
    e-mail address. A refusal is recorded (and kept although the response is an error)."""
    subject = claims["sub"]
    user = linked_account(provider, subject)
    if user is None:
        email = claims.get("email")
        # Only a boolean true counts: some providers send the string "false", which would be truthy.
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            login_refused(None, ["sso", provider.name, "unverified" if email else "unknown"])
            return Verdict(None, "unknown")
        user = by_email(email)
        if user is None:
            login_refused(None, ["sso", provider.name, "unknown"])
            return Verdict(None, "unknown")
        if db.session.scalar(
            select(SignOnIdentity.id).where(SignOnIdentity.user_id == user.id, SignOnIdentity.issuer == provider.issuer)
        ):
            # The account is linked to another identity of this provider: an e-mail address that moved
            # to another person must not take the account over.
            login_refused(user, ["sso", provider.name, "linked_to_other"])
            return Verdict(None, "other_identity")
        verdict = _allowed(provider, user)
        if verdict.refusal:
            return verdict
        _link(provider, user, subject, "email")
        record("user.link_sign_on", user, actor=user, object_type="user_account", fields=[provider.name, "email"])
        return verdict
    return _allowed(provider, user)


def _allowed(provider: Provider, user: User) -> Verdict:
    if not user.active:
        login_refused(user, ["sso", provider.name, "active"])
        return Verdict(None, "inactive")
    if not provider.allows(_roles(user)):
        login_refused(user, ["sso", provider.name, "role"])
        return Verdict(None, "role")
    return Verdict(user)


def link_by_admin(actor: Actor, provider: Provider, user: User, subject: str) -> SignOnIdentity:
    subject = subject.strip()
    if not subject or len(subject) > 255:
        raise Refused("Bitte die Kennung (sub) der Person beim Anmeldedienst angeben (höchstens 255 Zeichen).")
    if linked_account(provider, subject) is not None:
        raise Refused("Diese Kennung ist schon mit einem Konto verbunden.")
    if db.session.scalar(
        select(SignOnIdentity.id).where(SignOnIdentity.user_id == user.id, SignOnIdentity.issuer == provider.issuer)
    ):
        raise Refused("Dieses Konto ist mit diesem Anmeldedienst schon verbunden. Bitte die Verbindung zuerst lösen.")
    identity = _link(provider, user, subject, "admin")
    record(
        "user.link_sign_on", user, role=actor.role, scope=actor.scope, actor=actor.user, fields=[provider.name, "admin"]
    )
    return identity


def unlink(actor: Actor, identity: SignOnIdentity, provider_name: str) -> None:
    user = identity.user
    db.session.delete(identity)
    db.session.flush()
    record("user.unlink_sign_on", user, role=actor.role, scope=actor.scope, actor=actor.user, fields=[provider_name])


def of_user(user: User) -> list[SignOnIdentity]:
    return list(
        db.session.scalars(
            select(SignOnIdentity).where(SignOnIdentity.user_id == user.id).order_by(SignOnIdentity.linked_at)
        )
    )
