"""Anonymous short surveys: quarterly rounds, the markers of done invitations, and the answers and
free texts kept apart from them (no foreign key, random keys, no rowid on SQLite)

Revision ID: b8f4d2e6a1c3
Revises: b8e4d2a6c1f3
Create Date: 2026-12-02 17:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b8f4d2e6a1c3"
down_revision = "b8e4d2a6c1f3"  # after the guide's versions (branch guide)
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "survey_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("opened_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["opened_by_id"],
            ["user_account.id"],
            name=op.f("fk_survey_round_opened_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_round")),
        sa.UniqueConstraint("quarter", name=op.f("uq_survey_round_quarter")),
    )
    op.create_table(
        "survey_round_district",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["district.id"], name=op.f("fk_survey_round_district_district_id_district")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_round.id"],
            name=op.f("fk_survey_round_district_round_id_survey_round"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("round_id", "district_id", name=op.f("pk_survey_round_district")),
    )
    op.create_index(
        op.f("ix_survey_round_district_district_id"), "survey_round_district", ["district_id"], unique=False
    )
    op.create_table(
        "survey_done",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=True),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("(referral_id IS NULL) <> (round_id IS NULL)", name=op.f("ck_survey_done_one_invitation")),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_survey_done_referral_id_referral"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["survey_round.id"], name=op.f("fk_survey_done_round_id_survey_round"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_survey_done_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_done")),
        sa.UniqueConstraint("user_id", "referral_id", name=op.f("uq_survey_done_user_id_referral_id")),
        sa.UniqueConstraint("user_id", "round_id", name=op.f("uq_survey_done_user_id_round_id")),
    )
    op.create_index(op.f("ix_survey_done_referral_id"), "survey_done", ["referral_id"], unique=False)
    op.create_index(op.f("ix_survey_done_round_id"), "survey_done", ["round_id"], unique=False)
    op.create_table(
        "survey_answer",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("question_set", sa.String(length=20), nullable=False),
        sa.Column("set_version", sa.SmallInteger(), nullable=False),
        sa.Column("role_kind", sa.String(length=6), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("guide_version", sa.Integer(), nullable=True),
        *(sa.Column(f"a{i}", sa.SmallInteger(), nullable=True) for i in range(1, 6)),
        sa.CheckConstraint("role_kind IN ('school', 'asd')", name=op.f("ck_survey_answer_role_kind")),
        *(sa.CheckConstraint(f"a{i} BETWEEN 1 AND 5", name=op.f(f"ck_survey_answer_a{i}_scale")) for i in range(1, 6)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answer")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_survey_answer_quarter_district", "survey_answer", ["quarter", "district_id"], unique=False)
    op.create_table(
        "survey_comment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_comment")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_survey_comment_quarter_district", "survey_comment", ["quarter", "district_id"], unique=False)


def downgrade():
    op.drop_index("ix_survey_comment_quarter_district", table_name="survey_comment")
    op.drop_table("survey_comment")
    op.drop_index("ix_survey_answer_quarter_district", table_name="survey_answer")
    op.drop_table("survey_answer")
    op.drop_index(op.f("ix_survey_done_round_id"), table_name="survey_done")
    op.drop_index(op.f("ix_survey_done_referral_id"), table_name="survey_done")
    op.drop_table("survey_done")
    op.drop_index(op.f("ix_survey_round_district_district_id"), table_name="survey_round_district")
    op.drop_table("survey_round_district")
    op.drop_table("survey_round")
