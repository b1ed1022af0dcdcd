"""Durations and the model district for the evaluation

Revision ID: 5383638ca325
Revises: d60e0959e2bc
Create Date: 2026-11-27 03:51:45.973513

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5383638ca325"
down_revision = "d60e0959e2bc"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("district", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_project", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ack_working_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("feedback_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("feedback_working_minutes", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_referral_evaluation",
            [
                "submitted_at",
                "state",
                "district_id",
                "school_id",
                "urgency",
                "acknowledged_at",
                "acknowledge_due_at",
                "feedback_at",
                "feedback_due_at",
                "consultation_id",
                "affected_informed",
                "ack_minutes",
                "ack_working_minutes",
                "feedback_minutes",
                "feedback_working_minutes",
                "id",
            ],
            unique=False,
        )

    # Existing referrals get their durations computed once, as new ones get them at the step itself.
    from referral.kernel.deadlines import working_minutes_between

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, received_at, acknowledged_at, submitted_at, feedback_at FROM referral "
            "WHERE acknowledged_at IS NOT NULL OR feedback_at IS NOT NULL"
        )
    ).all()
    for row_id, received, acknowledged, submitted, feedback in rows:
        values = {"id": row_id, "am": None, "awm": None, "fm": None, "fwm": None}
        if acknowledged is not None and received is not None:
            received, acknowledged = _dt(received), _dt(acknowledged)
            values["am"] = max(0, int((acknowledged - received).total_seconds() // 60))
            values["awm"] = working_minutes_between(received, acknowledged)
        if feedback is not None and submitted is not None:
            submitted, feedback = _dt(submitted), _dt(feedback)
            values["fm"] = max(0, int((feedback - submitted).total_seconds() // 60))
            values["fwm"] = working_minutes_between(submitted, feedback)
        bind.execute(
            sa.text(
                "UPDATE referral SET ack_minutes = :am, ack_working_minutes = :awm, feedback_minutes = :fm, "
                "feedback_working_minutes = :fwm WHERE id = :id"
            ),
            values,
        )


def _dt(value):
    from datetime import datetime

    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def downgrade():
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_evaluation")
        batch_op.drop_column("feedback_working_minutes")
        batch_op.drop_column("feedback_minutes")
        batch_op.drop_column("ack_working_minutes")
        batch_op.drop_column("ack_minutes")

    with op.batch_alter_table("district", schema=None) as batch_op:
        batch_op.drop_column("model_project")
