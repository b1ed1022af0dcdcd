"""Drop ix_referral_district_state: ix_referral_inbox_state begins with the same two columns

(district_id, state) is the prefix of the inbox's index (district_id, state, inbox_rank, inbox_due, id),
which serves every query the narrower one served; the narrower one only cost a write per change.

Revision ID: b1d4f7a2c9e3
Revises: b8f4d2e6a1c3
Create Date: 2026-12-02 17:20:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b1d4f7a2c9e3"
down_revision = "b8f4d2e6a1c3"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_referral_district_state", table_name="referral")


def downgrade():
    op.create_index("ix_referral_district_state", "referral", ["district_id", "state"], unique=False)
