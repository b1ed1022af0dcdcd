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

from sqlalchemy import func, select

from ..accounts.models import User
from ..accounts.operations import Actor, Refused
from ..audit.log import login_refused, record
from ..extensions import db
from .models import SignOnIdentity
from .settings import Provider

__all__ = ["Refused", "Verdict", "identify", "link_by_admin", "unlink"]


@dataclass(frozen=True)
class Verdict:
    """The account to log in, or why nobody is logged in (`refusal` names the page to show).

    `link`: the identity is to be linked to the account by its verified address, once the login is
    complete (after the tool's own second factor, where that is asked): `complete_link`."""

    user: User | None
    refusal: str = ""
    link: bool = False


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


def _same_address(claimed: str) -> User | None:
    """The account with this address. Only plain ASCII addresses are compared: Python lowers some other
    characters to ASCII letters (the Kelvin sign to "k"), which would match another person's address."""
    if not claimed.isascii() or claimed != claimed.strip() or "@" not in claimed:
        return None
    return db.session.scalar(select(User).where(func.lower(User.email) == claimed.lower()))


def identify(provider: Provider, claims: Mapping[str, Any]) -> Verdict:
    """The account for the validated ID token's claims. A refusal is recorded (and kept although the
    response is an error); a link by address is only proposed, and made at the end of the login."""
    subject = claims["sub"]
    user = linked_account(provider, subject)
    if user is not None:
        return _allowed(provider, user)
    email = claims.get("email")
    # Only a boolean true counts: some providers send the string "false", which would be truthy.
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        login_refused(None, ["sso", provider.name, "unverified" if email else "unknown"])
        return Verdict(None, "unknown")
    user = _same_address(email)
    if user is None:
        login_refused(None, ["sso", provider.name, "unknown"])
        return Verdict(None, "unknown")
    if _linked_to(provider, user):
        # The account is linked to another identity of this provider: an e-mail address that moved
        # to another person must not take the account over.
        login_refused(user, ["sso", provider.name, "linked_to_other"])
        return Verdict(None, "other_identity")
    verdict = _allowed(provider, user)
    return Verdict(user, link=True) if verdict.user else verdict


def _linked_to(provider: Provider, user: User) -> bool:
    return bool(
        db.session.scalar(
            select(SignOnIdentity.id).where(SignOnIdentity.user_id == user.id, SignOnIdentity.issuer == provider.issuer)
        )
    )


def complete_link(provider: Provider, user: User, subject: str) -> None:
    """The link proposed by `identify`, made when the login is complete (the person passed every factor)."""
    if linked_account(provider, subject) is not None or _linked_to(provider, user):
        return  # linked meanwhile (another login of the same person at the same moment)
    _link(provider, user, subject, "email")
    record("user.link_sign_on", user, actor=user, object_type="user_account", fields=[provider.name, "email"])
    _tell_owner(user, provider, linked=True)


def _tell_owner(user: User, provider: Provider, linked: bool) -> None:
    """A notice to the account's address, as after a password change: whoever did it, the owner knows."""
    from flask import render_template

    from ..notifications.delivery import enqueue

    body = render_template("email/sign_on_notice.txt", user=user, provider=provider, linked=linked)
    subject = "Anmeldedienst verbunden" if linked else "Verbindung zum Anmeldedienst gelöst"
    enqueue(user.email, f"{subject} – Mitteilungen Schule-ASD", body)


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
    _tell_owner(user, provider, linked=True)
    return identity


def unlink(actor: Actor, identity: SignOnIdentity, provider: Provider | None) -> None:
    """Ends the link and every session of the person: one may have come through this identity."""
    from ..accounts.services import end_sessions

    user = identity.user
    db.session.delete(identity)
    end_sessions(user)
    db.session.flush()
    name = provider.name if provider else identity.issuer[:40]
    record("user.unlink_sign_on", user, role=actor.role, scope=actor.scope, actor=actor.user, fields=[name])
    if provider is not None:
        _tell_owner(user, provider, linked=False)


def of_user(user: User) -> list[SignOnIdentity]:
    return list(
        db.session.scalars(
            select(SignOnIdentity).where(SignOnIdentity.user_id == user.id).order_by(SignOnIdentity.linked_at)
        )
    )
