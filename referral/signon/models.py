from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..timeutil import utcnow


class SignOnIdentity(db.Model):
    """A person's identity at a provider (issuer + subject), linked to one account.

    Only what finds the account again is kept: no e-mail, name or token of the provider. A later
    login uses issuer + subject alone, so a changed e-mail address at the provider moves nothing."""

    __tablename__ = "sign_on_identity"
    __table_args__ = (
        UniqueConstraint("issuer", "subject"),
        # One identity per provider and account: a second one would be a second person's.
        UniqueConstraint("user_id", "issuer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    # How it was linked: "email" (first login, verified address) or "admin" (on the account page).
    linked_by: Mapped[str] = mapped_column(String(10))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
