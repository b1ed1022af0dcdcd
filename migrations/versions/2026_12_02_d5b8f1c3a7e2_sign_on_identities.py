"""Sign-on identities: a person's identity at an OpenID Connect provider (issuer + subject), linked to an account

Revision ID: d5b8f1c3a7e2
Revises: c4a1e7d2b9f3
Create Date: 2026-12-02 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d5b8f1c3a7e2"
down_revision = "c4a1e7d2b9f3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_on_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("linked_by", sa.String(length=10), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_sign_on_identity_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_on_identity")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_sign_on_identity_issuer_subject")),
        sa.UniqueConstraint("user_id", "issuer", name=op.f("uq_sign_on_identity_user_id_issuer")),
    )
    with op.batch_alter_table("sign_on_identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_on_identity_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("sign_on_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_on_identity_user_id"))

    op.drop_table("sign_on_identity")
