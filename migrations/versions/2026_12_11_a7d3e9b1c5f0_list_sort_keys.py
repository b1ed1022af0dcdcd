"""Lists in index order: generated sort-key columns on referral and one index per list

The inbox sorted by CASE expressions (open first, urgency, next deadline) that no index can serve, so
every page read and sorted a district's whole history. The keys are now generated columns, computed
by the database from the row (nothing that writes a referral needs to know of them), and each list
has an index that matches its WHERE and ORDER BY, read page by page with a keyset cursor.

The expressions are frozen copies of referral/cases/models.py (INBOX_RANK, INBOX_DUE, DRAFT_FIRST).

Revision ID: a7d3e9b1c5f0
Revises: a7c3e91f0b5d
Create Date: 2026-12-02 14:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7d3e9b1c5f0"
down_revision = "a7c3e91f0b5d"
branch_labels = None
depends_on = None

OPEN = "('acknowledged', 'in_assessment', 'info_requested', 'submitted')"
INBOX_RANK = (
    f"CASE WHEN state IN {OPEN} THEN 0 ELSE 10 END"
    " + CASE urgency WHEN 'acute' THEN 0 WHEN 'urgent' THEN 1 WHEN 'clarify' THEN 2 ELSE 9 END"
)
INBOX_DUE = (
    "CASE WHEN state = 'submitted' THEN acknowledge_due_at ELSE COALESCE(feedback_due_at, acknowledge_due_at) END"
)
DRAFT_FIRST = "CASE WHEN state = 'draft' THEN 1 ELSE 0 END"

INDEXES = {
    "ix_referral_inbox": ["district_id", "inbox_rank", "inbox_due", "id"],
    "ix_referral_inbox_state": ["district_id", "state", "inbox_rank", "inbox_due", "id"],
    "ix_referral_inbox_assignee": ["assignee_id", "inbox_rank", "inbox_due", "id"],
    "ix_referral_school_list": ["school_id", "draft_first", "updated_at", "id"],
    "ix_referral_author_list": ["author_id", "draft_first", "updated_at", "id"],
    "ix_referral_submitted": ["submitted_at", "id"],
}
# Superseded: each is the first column of one of the lists' indexes.
SINGLE = {"ix_referral_author_id": "author_id", "ix_referral_assignee_id": "assignee_id"}


def _recreate() -> str:
    # SQLite cannot ADD a stored generated column: the table is rebuilt (batch mode). PostgreSQL adds
    # it in place (one rewrite of the table, computing the values).
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade():
    with op.batch_alter_table("referral", schema=None, recreate=_recreate()) as batch_op:
        batch_op.add_column(
            sa.Column("inbox_rank", sa.SmallInteger(), sa.Computed(INBOX_RANK, persisted=True), nullable=False)
        )
        batch_op.add_column(
            sa.Column("inbox_due", sa.DateTime(), sa.Computed(INBOX_DUE, persisted=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("draft_first", sa.SmallInteger(), sa.Computed(DRAFT_FIRST, persisted=True), nullable=False)
        )
        for name in SINGLE:
            batch_op.drop_index(name)
        for name, columns in INDEXES.items():
            # PostgreSQL only (SQLite ignores it): counting a district's open ones reads only the index.
            include = {"postgresql_include": ["state"]} if name == "ix_referral_inbox" else {}
            batch_op.create_index(name, columns, unique=False, **include)
    if op.get_bind().dialect.name == "postgresql":
        # The open states are exactly the ranks below 10; without statistics on the pair, PostgreSQL
        # multiplies the two selectivities, expects a handful of open ones instead of a thousand, and
        # chooses to read and sort all of them instead of reading the first page from the index.
        op.execute("CREATE STATISTICS referral_state_rank (mcv) ON state, inbox_rank FROM referral")
        op.execute("ANALYZE referral")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS referral_state_rank")
    with op.batch_alter_table("referral", schema=None, recreate=_recreate()) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        for name, column in SINGLE.items():
            batch_op.create_index(name, [column], unique=False)
        batch_op.drop_column("draft_first")
        batch_op.drop_column("inbox_due")
        batch_op.drop_column("inbox_rank")
