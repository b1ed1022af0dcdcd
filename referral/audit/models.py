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

    Append-only (the database refuses UPDATE and DELETE, see the migrations). `id` is the entry's
    place in the log, given by the database at the insert (a sequence on PostgreSQL), so writers never
    wait for each other; `hash` covers the entry's content (audit/chain.py `entry_hash`). The worker
    links committed entries in id order into `AuditBlock`s, which chain to each other.

    Legacy entries (written before blocks existed) also carry `seq` and `prev_hash`: each one's hash
    covers its content and the previous entry's hash, as they were written; they stay verifiable by
    that rule and the first block follows the last of them.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int | None] = mapped_column(unique=True)  # legacy chain only
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
    prev_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # legacy chain only
    # Not unique: two entries of the same content are possible, and a unique index would make the
    # second writer wait for the first one's commit.
    hash: Mapped[str] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship(lazy="joined")


class AuditBlock(db.Model):
    """The entries with ids first_entry_id..last_entry_id (all of them that exist), linked: `hash` is
    SHA-256 over `prev_hash` (the block before, or the legacy chain's end) and the entries' (id, hash)
    pairs in id order (chain.block_hash). Written by the sealer only; append-only like the entries.
    The unique prev_hash and first_entry_id keep two concurrent sealers from forking the chain."""

    __tablename__ = "audit_block"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_entry_id: Mapped[int] = mapped_column(unique=True)
    last_entry_id: Mapped[int] = mapped_column(unique=True)
    entries: Mapped[int]
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditHead(db.Model):
    """The end of the legacy chain (entries with `seq`), one row, frozen since blocks exist: it still
    tells whether the newest legacy entries were cut off while no block follows them yet."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
