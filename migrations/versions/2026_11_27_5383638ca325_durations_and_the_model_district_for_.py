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
            values["awm"] = _working_minutes_between(received, acknowledged)
        if feedback is not None and submitted is not None:
            submitted, feedback = _dt(submitted), _dt(feedback)
            values["fm"] = max(0, int((feedback - submitted).total_seconds() // 60))
            values["fwm"] = _working_minutes_between(submitted, feedback)
        bind.execute(
            sa.text(
                "UPDATE referral SET ack_minutes = :am, ack_working_minutes = :awm, feedback_minutes = :fm, "
                "feedback_working_minutes = :fwm WHERE id = :id"
            ),
            values,
        )


# Frozen copies of referral/cases/deadlines.py and referral/timeutil.py as of this revision: the
# durations stored here are what the rule said then, whatever the app says later.


def _working_minutes_between(start_utc, end_utc) -> int:
    """Minutes from `start_utc` to `end_utc` (naive UTC) that fall on working days in local time;
    weekends and NRW public holidays do not count, every hour of a working day does."""
    from datetime import UTC, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    import holidays

    berlin = ZoneInfo("Europe/Berlin")
    nrw = holidays.country_holidays("DE", subdiv="NW")  # fills in the years as they are asked for

    def to_local(value):
        return value.replace(tzinfo=UTC).astimezone(berlin)

    def local_to_utc(value):
        return value.replace(tzinfo=berlin).astimezone(UTC).replace(tzinfo=None)

    if end_utc <= start_utc:
        return 0
    total = 0
    day, last = to_local(start_utc).date(), to_local(end_utc).date()
    while day <= last:
        if day.weekday() < 5 and day not in nrw:
            # Aware datetimes in UTC for the subtraction: DST days have 23 or 25 hours.
            day_start = local_to_utc(datetime.combine(day, time.min))
            day_end = local_to_utc(datetime.combine(day + timedelta(days=1), time.min))
            lo, hi = max(start_utc, day_start), min(end_utc, day_end)
            if hi > lo:
                total += int((hi - lo).total_seconds() // 60)
        day += timedelta(days=1)
    return total


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
