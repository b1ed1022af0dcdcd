"""The hash chain of the audit log: appending under the head row's lock, and verifying.

Each entry's hash is SHA-256 over its content and the previous entry's hash. Changing an entry's
content breaks its own hash; deleting or reordering entries breaks the link to the previous hash or
the gapless numbering; cutting off the newest entries no longer matches the head row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select, text, update

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
    """Give `entry` its place at the end of the chain and add it to the session.

    The UPDATE of the head row comes first: on PostgreSQL it locks the row until this transaction
    ends, on SQLite it takes the database's write lock, so a concurrent writer waits and then
    continues after this entry, never beside it.
    """
    seq, prev_hash = db.session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    entry.seq, entry.prev_hash = seq, prev_hash
    entry.hash = content_hash(entry)
    db.session.add(entry)
    db.session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=entry.hash))
    return entry


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


def set_guard(connection, on: bool) -> None:
    """Used by the migration, and by tests that play the attacker (who would need the owner's rights)."""
    for statement in guard_statements(connection.dialect.name, on):
        connection.execute(text(statement))
