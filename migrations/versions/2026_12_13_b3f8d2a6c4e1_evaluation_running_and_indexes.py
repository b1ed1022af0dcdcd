"""Evaluation aggregates: running totals (a figure over a period reads two months, not all of them),
and indexes by kind and month / kind and day for the figures read per school (no district
or school fixed, so the primary key's order helps only with the kind)

Revision ID: b3f8d2a6c4e1
Revises: b1d4f7a2c9e3
Create Date: 2026-12-02 18:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b3f8d2a6c4e1"
down_revision = "b1d4f7a2c9e3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "evaluation_running",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("district_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("school_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "kind", "district_id", "school_id", "key", "bucket", name=op.f("pk_evaluation_running")
        ),
    )
    # Filled by the next refresh: every month is marked dirty ('*'), as after a bulk load.
    op.execute("INSERT INTO evaluation_dirty (month) VALUES ('*')")
    op.create_index("ix_evaluation_count_kind_month", "evaluation_count", ["kind", "month"], unique=False)
    op.create_index("ix_evaluation_day_count_kind_day", "evaluation_day_count", ["kind", "day"], unique=False)


def downgrade():
    op.drop_index("ix_evaluation_day_count_kind_day", table_name="evaluation_day_count")
    op.drop_index("ix_evaluation_count_kind_month", table_name="evaluation_count")
    op.drop_table("evaluation_running")
