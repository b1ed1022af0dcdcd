"""The hash chain of the audit log: appending at commit, under the head row's lock, and verifying.

Each entry's hash is SHA-256 over its content and the previous entry's hash. Changing an entry's
content breaks its own hash; deleting or reordering entries breaks the link to the previous hash or
the gapless numbering; cutting off the newest entries no longer matches the head row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Connection, event, select, text, update
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db
from .models import AuditEntry, AuditHead

GENESIS = "0" * 64


def content_hash(entry: AuditEntry) -> str:
    content = {
        "seq": entry.seq,
        "at": entry.at.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "actor_scope": entry.actor_scope,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "school_id": entry.school_id,
        "district_id": entry.district_id,
        "fields": list(entry.fields or []),
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(entry: AuditEntry) -> AuditEntry:
    """Queue `entry` for the chain of the current transaction; `seal` gives it its place at commit.

    Entries wait outside the session until the commit, so that recording (e.g. "viewed", before a page
    is rendered) takes no lock: the head row is locked only between sealing and the commit's end.
    """
    session = db.session()
    session.info.setdefault(PENDING, []).append((entry, session.get_nested_transaction()))
    return entry


PENDING = "audit_pending"


def seal(session: Session) -> None:
    """Before a commit: append the transaction's queued entries to the chain, in the order recorded.

    The UPDATE of the head row comes first: on PostgreSQL it locks the row until this transaction
    ends, on SQLite it takes the database's write lock, so a concurrent writer waits and then
    continues after these entries, never beside them.
    """
    pending = session.info.pop(PENDING, [])
    if not pending:
        return
    entries = [entry for entry, _ in pending]
    last_seq, prev_hash = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + len(entries))
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    for seq, entry in enumerate(entries, start=last_seq - len(entries) + 1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = content_hash(entry)
        session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev_hash))


def _discard(session: Session, previous_transaction: SessionTransaction) -> None:
    """After a rollback: entries recorded inside the rolled-back (nested) transaction go with it."""
    pending = session.info.get(PENDING)
    if not pending:
        return
    if not previous_transaction.nested:
        session.info.pop(PENDING, None)
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[PENDING] = [(entry, tx) for entry, tx in pending if not inside(tx)]


def register() -> None:
    if not event.contains(Session, "before_commit", seal):
        event.listen(Session, "before_commit", seal)
        event.listen(Session, "after_soft_rollback", _discard)


@dataclass
class Verdict:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"Audit log intact: {self.checked} entries, chain and head agree."
        return f"Audit log BROKEN at entry {self.seq}: {self.problem} ({self.checked} entries checked before it)."


def verify(batch: int = 2000) -> Verdict:
    """Walk the whole chain in order; report the first broken entry."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    statement = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    for entry in db.session.scalars(statement):
        if entry.seq != expected_seq:
            return Verdict(False, checked, f"entry {expected_seq} is missing (next is {entry.seq})", expected_seq)
        if entry.prev_hash != prev_hash:
            return Verdict(
                False, checked, "does not follow the entry before it (deleted, inserted or reordered)", entry.seq
            )
        if content_hash(entry) != entry.hash:
            return Verdict(False, checked, "content changed after it was written", entry.seq)
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
        db.session.expunge(entry)
    head = db.session.get(AuditHead, 1)
    if head is None or head.seq != checked or head.last_hash != prev_hash:
        return Verdict(False, checked, "the newest entries are missing (the head names a later end)", checked + 1)
    return Verdict(True, checked)


# --- The append-only guard ---------------------------------------------------------------------

SQLITE_GUARD = [
    "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
    "CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
]
SQLITE_UNGUARD = ["DROP TRIGGER IF EXISTS audit_entry_no_update", "DROP TRIGGER IF EXISTS audit_entry_no_delete"]
POSTGRES_GUARD = [
    "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$",
    "CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON audit_entry "
    "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
]
POSTGRES_UNGUARD = [
    "DROP TRIGGER IF EXISTS audit_entry_no_change ON audit_entry",
    "DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry",
    "DROP FUNCTION IF EXISTS audit_entry_append_only()",
]


def guard_statements(dialect: str, on: bool) -> list[str]:
    if dialect == "postgresql":
        return POSTGRES_GUARD if on else POSTGRES_UNGUARD
    return SQLITE_GUARD if on else SQLITE_UNGUARD


def set_guard(connection: Connection, on: bool) -> None:
    """Used by the migration, and by tests that play the attacker (who would need the owner's rights)."""
    for statement in guard_statements(connection.dialect.name, on):
        connection.execute(text(statement))
