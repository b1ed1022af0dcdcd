from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..timeutil import utcnow


class AuditEntry(db.Model):
    """One recorded event: time (UTC), actor, role and scope used, action, object, names of changed
    fields (never their values), request id. Written in the transaction of the change it describes."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    actor_role: Mapped[str] = mapped_column(String(20), default="")
    actor_scope: Mapped[str] = mapped_column(String(60), default="")
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(40), default="")
    fields: Mapped[list] = mapped_column(JSON, default=list)
    request_id: Mapped[str] = mapped_column(String(36), default="")

    actor: Mapped[User | None] = relationship(lazy="joined")
