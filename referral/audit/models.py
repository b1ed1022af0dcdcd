from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..timeutil import utcnow


class AuditEntry(db.Model):
    """One recorded event: time (UTC), actor, role and scope used, action, object, names of changed
    fields (never their values), request id. Written in the transaction of the event it records.

    Append-only and hash-chained (audit/chain.py): `seq` numbers the entries without gaps, `prev_hash`
    is the hash of entry seq-1, `hash` covers this entry's content and `prev_hash`. The database
    refuses UPDATE and DELETE on this table (triggers, see the migration).
    """

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    actor_role: Mapped[str] = mapped_column(String(20), default="")
    actor_scope: Mapped[str] = mapped_column(String(60), default="")
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(40), default="")
    # Where the object belongs, for the coordinator's search (plain ids: the log outlives purges).
    school_id: Mapped[int | None] = mapped_column(index=True)
    district_id: Mapped[int | None] = mapped_column(index=True)
    fields: Mapped[list] = mapped_column(JSON, default=list)
    request_id: Mapped[str] = mapped_column(String(36), default="")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    actor: Mapped[User | None] = relationship(lazy="joined")


class AuditHead(db.Model):
    """The end of the chain, one row. Every writer updates it first, which serialises writers: two
    concurrent transactions cannot both append after the same entry."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
