"""Evaluation aggregates: indexes by kind and month / kind and day, for the figures read per school
(no district or school fixed, so the primary key's order helps only with the kind)

Revision ID: b3f8d2a6c4e1
Revises: a7e3c1d9b5f2
Create Date: 2026-12-02 18:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b3f8d2a6c4e1"
down_revision = "a7e3c1d9b5f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_evaluation_count_kind_month", "evaluation_count", ["kind", "month"], unique=False)
    op.create_index("ix_evaluation_day_count_kind_day", "evaluation_day_count", ["kind", "day"], unique=False)


def downgrade():
    op.drop_index("ix_evaluation_day_count_kind_day", table_name="evaluation_day_count")
    op.drop_index("ix_evaluation_count_kind_month", table_name="evaluation_count")
