"""The audit log without a global lock: entries take their place from the id sequence, the worker
seals them into a chain of blocks (audit_block); seq and prev_hash stay only for the legacy chain

Revision ID: a7c3e91f0b5d
Revises: f2b6d0c8e4a1
Create Date: 2026-12-10 12:00:00.000000

"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c3e91f0b5d"
down_revision = "f2b6d0c8e4a1"
branch_labels = None
depends_on = None

# Copied here so that this migration never changes with the app code (referral/audit/chain.py).
GENESIS = "0" * 64
OLD_GUARD = {
    ("postgresql", False): [
        "DROP TRIGGER IF EXISTS audit_entry_no_change ON audit_entry",
        "DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry",
        "DROP FUNCTION IF EXISTS audit_entry_append_only()",
    ],
    ("postgresql", True): [
        "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$",
        "CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON audit_entry FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
        "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
    ],
    ("sqlite", False): ["DROP TRIGGER IF EXISTS audit_entry_no_update", "DROP TRIGGER IF EXISTS audit_entry_no_delete"],
    ("sqlite", True): [
        "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
        "CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END",
    ],
}
GUARDED = ("audit_entry", "audit_block", "audit_head")


def new_guard(dialect, on):
    if dialect == "postgresql":
        if not on:
            return [
                *(f"DROP TRIGGER IF EXISTS {t}_no_change ON {t}" for t in GUARDED),
                *(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in GUARDED),
                "DROP FUNCTION IF EXISTS audit_entry_append_only()",
            ]
        return [
            "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
            *(
                f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
                for t in GUARDED
            ),
            *(
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
                for t in GUARDED
            ),
        ]
    if not on:
        return [f"DROP TRIGGER IF EXISTS {t}_no_{w}" for t in GUARDED for w in ("update", "delete")]
    return [
        f"CREATE TRIGGER {t}_no_{w} BEFORE {w.upper()} ON {t} BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
        for t in GUARDED
        for w in ("update", "delete")
    ]


def _dialect():
    name = op.get_bind().dialect.name
    return name if name == "postgresql" else "sqlite"


def upgrade():
    dialect = _dialect()
    for statement in OLD_GUARD[(dialect, False)]:
        op.execute(statement)
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        # A unique hash would make a writer wait for another one's commit (and content may repeat).
        batch_op.drop_constraint(batch_op.f("uq_audit_entry_hash"), type_="unique")
    op.create_table(
        "audit_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_entry_id", sa.Integer(), nullable=False),
        sa.Column("last_entry_id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_block")),
        sa.UniqueConstraint("first_entry_id", name=op.f("uq_audit_block_first_entry_id")),
        sa.UniqueConstraint("last_entry_id", name=op.f("uq_audit_block_last_entry_id")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_block_prev_hash")),
    )
    if dialect == "postgresql":
        # The sealer's rule (chain._settled_up_to) needs ids handed out one at a time, not cached per session.
        op.execute("ALTER SEQUENCE audit_entry_id_seq CACHE 1")
    for statement in new_guard(dialect, True):
        op.execute(statement)


def _legacy_hash(row, seq, prev_hash):
    content = {
        "seq": seq,
        "at": row.at.replace(tzinfo=None).isoformat(timespec="microseconds") if not isinstance(row.at, str) else row.at,
        "actor_id": row.actor_id,
        "actor_role": row.actor_role,
        "actor_scope": row.actor_scope,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "school_id": row.school_id,
        "district_id": row.district_id,
        "fields": list(row.fields or []),
        "request_id": row.request_id,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def downgrade():
    """Entries written since are appended to the legacy chain (numbered, hashed by its rule), so the
    old code verifies the whole log; the blocks go."""
    dialect = _dialect()
    bind = op.get_bind()
    for statement in new_guard(dialect, False):
        op.execute(statement)
    entry = sa.table(
        "audit_entry",
        sa.column("id", sa.Integer()),
        sa.column("seq", sa.Integer()),
        sa.column("at", sa.DateTime()),
        sa.column("actor_id", sa.Integer()),
        sa.column("actor_role", sa.String()),
        sa.column("actor_scope", sa.String()),
        sa.column("action", sa.String()),
        sa.column("object_type", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("school_id", sa.Integer()),
        sa.column("district_id", sa.Integer()),
        sa.column("fields", sa.JSON()),
        sa.column("request_id", sa.String()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    seq, prev_hash = bind.execute(sa.text("SELECT seq, last_hash FROM audit_head WHERE id = 1")).one()
    change = (
        entry.update()
        .where(entry.c.id == sa.bindparam("entry_id"))
        .values(seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    after = None
    while True:  # in batches, one executemany each: a million entries take minutes, not an hour
        query = sa.select(entry).where(entry.c.seq.is_(None)).order_by(entry.c.id).limit(10000)
        if after is not None:
            query = query.where(entry.c.id > after)
        rows = bind.execute(query).all()
        if not rows:
            break
        changes = []
        for row in rows:
            seq += 1
            new_hash = _legacy_hash(row, seq, prev_hash)
            changes.append({"entry_id": row.id, "new_seq": seq, "new_prev": prev_hash, "new_hash": new_hash})
            prev_hash = new_hash
        bind.execute(change, changes)
        after = rows[-1].id
    bind.execute(
        sa.text("UPDATE audit_head SET seq = :seq, last_hash = :hash WHERE id = 1"), {"seq": seq, "hash": prev_hash}
    )
    op.drop_table("audit_block")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_entry_hash"), ["hash"])
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
    for statement in OLD_GUARD[(dialect, True)]:
        op.execute(statement)
