"""Evaluation aggregates: monthly and daily counts and duration histograms, the dirty months, and
partial indexes for the clock-dependent key figures, the district overview and the overdue list

Revision ID: a7e3c1d9b5f2
Revises: a7d3e9b1c5f0
Create Date: 2026-12-02 14:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7e3c1d9b5f2"
down_revision = "a7d3e9b1c5f0"
branch_labels = None
depends_on = None

# The open states as of this revision (frozen: migrations do not import the app).
OPEN = "state IN ('acknowledged', 'in_assessment', 'info_requested', 'submitted')"
WAITING_ACK = "acknowledged_at IS NULL AND acknowledge_due_at IS NOT NULL"
TRANSFER = "action = 'transfer'"
WAITING_FEEDBACK = "feedback_at IS NULL AND feedback_due_at IS NOT NULL"


def upgrade():
    op.create_table(
        "evaluation_count",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("district_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("school_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "district_id", "school_id", "month", "key", "bucket", name=op.f("pk_evaluation_count")
        ),
    )
    op.create_table(
        "evaluation_day_count",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("district_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("school_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "district_id", "school_id", "day", "key", "bucket", name=op.f("pk_evaluation_day_count")
        ),
    )
    op.create_index("ix_evaluation_day_count_day", "evaluation_day_count", ["day"], unique=False)
    dirty = op.create_table(
        "evaluation_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_dirty")),
    )
    # Existing data: everything is computed at the first refresh (or `flask evaluation refresh`).
    op.bulk_insert(dirty, [{"month": "*"}])
    with op.batch_alter_table("referral", schema=None) as batch_op:
        for name, columns, where in (
            ("ix_referral_waiting_ack", ["acknowledge_due_at"], WAITING_ACK),
            ("ix_referral_waiting_feedback", ["feedback_due_at"], WAITING_FEEDBACK),
            (
                "ix_referral_district_open",
                ["district_id", "state", "assignee_id", "acknowledge_due_at", "feedback_due_at", "received_at"],
                OPEN,
            ),
        ):
            batch_op.create_index(
                name, columns, unique=False, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
            )

    # On the generated running deadline (list sort keys migration): created directly (SQLite's batch
    # mode would copy the table for nothing).
    op.create_index(
        "ix_referral_open_due",
        "referral",
        ["inbox_due", "id"],
        unique=False,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.create_index("ix_consultation_requested_at", ["requested_at"], unique=False)
    with op.batch_alter_table("state_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_state_change_transfer_at",
            ["at"],
            unique=False,
            postgresql_where=sa.text(TRANSFER),
            sqlite_where=sa.text(TRANSFER),
        )


def downgrade():
    with op.batch_alter_table("state_change", schema=None) as batch_op:
        batch_op.drop_index("ix_state_change_transfer_at")
    with op.batch_alter_table("consultation", schema=None) as batch_op:
        batch_op.drop_index("ix_consultation_requested_at")
    op.drop_index("ix_referral_open_due", table_name="referral")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_district_open")
        batch_op.drop_index("ix_referral_waiting_feedback")
        batch_op.drop_index("ix_referral_waiting_ack")
    op.drop_table("evaluation_dirty")
    op.drop_index("ix_evaluation_day_count_day", table_name="evaluation_day_count")
    op.drop_table("evaluation_day_count")
    op.drop_table("evaluation_count")
