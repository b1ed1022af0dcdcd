"""Indexes for the survey invitations: the author's, the school's and the assignee's referrals in time order

The start pages ask for the newest five referrals a person is invited to answer about; without these
partial indexes PostgreSQL read every referral of the assignee (5,700 rows at 200,000 referrals) to
sort them. The conditions are frozen copies of referral/surveys/models.py.

Revision ID: c2e5a8d1f4b7
Revises: b3f8d2a6c4e1
Create Date: 2026-12-02 18:45:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c2e5a8d1f4b7"
down_revision = "b3f8d2a6c4e1"
branch_labels = None
depends_on = None

ANSWERED = "state IN ('feedback_given', 'closed')"
CLOSED = "state = 'closed'"
INDEXES = {
    "ix_referral_survey_author": (["author_id", "feedback_at"], ANSWERED),
    "ix_referral_survey_school": (["school_id", "feedback_at"], ANSWERED),
    "ix_referral_survey_assignee": (["assignee_id", "closed_at"], CLOSED),
}


def upgrade():
    for name, (columns, where) in INDEXES.items():
        op.create_index(
            name, "referral", columns, unique=False, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="referral")
