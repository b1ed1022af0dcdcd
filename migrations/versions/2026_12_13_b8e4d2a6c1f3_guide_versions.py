"""The guide ("Leitfaden"): immutable versions with their texts per fixed section, and the newest
version each user has seen

Revision ID: b8e4d2a6c1f3
Revises: a7e3c1d9b5f2
Create Date: 2026-12-02 17:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b8e4d2a6c1f3"
down_revision = "a7e3c1d9b5f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "guide_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("number >= 1", name=op.f("ck_guide_version_positive_number")),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_guide_version_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_version")),
        sa.UniqueConstraint("number", name=op.f("uq_guide_version_number")),
    )
    op.create_table(
        "guide_section",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["guide_version.id"],
            name=op.f("fk_guide_section_version_id_guide_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_guide_section")),
    )
    op.create_table(
        "guide_seen",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_guide_seen_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_guide_seen")),
    )


def downgrade():
    op.drop_table("guide_seen")
    op.drop_table("guide_section")
    op.drop_table("guide_version")
