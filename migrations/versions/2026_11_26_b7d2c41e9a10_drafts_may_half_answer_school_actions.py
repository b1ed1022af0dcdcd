"""Drafts may half-answer a school action ("ja" before its date is typed)

The completeness of the six answers is checked at submission (process.submission_problems);
the CHECK refused to save such a draft and answered with a server error.

Revision ID: b7d2c41e9a10
Revises: ea0f1a4f59ad
Create Date: 2026-11-26 23:58:00

"""

from alembic import op

revision = "b7d2c41e9a10"
down_revision = "ea0f1a4f59ad"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("school_action", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_school_action_yes_has_date_no_has_reason"), type_="check")


def downgrade():
    with op.batch_alter_table("school_action", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "yes_has_date_no_has_reason",
            "done IS NULL OR (done AND done_on IS NOT NULL) OR (NOT done AND reason <> '')",
        )
