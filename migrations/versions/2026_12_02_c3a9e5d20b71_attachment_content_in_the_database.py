"""Attachment content in the database, encrypted in chunks

Revision ID: c3a9e5d20b71
Revises: 5383638ca325
Create Date: 2026-12-02 07:30:00.000000

After upgrading, move the files of UPLOAD_FOLDER into the new table with
`flask attachments import-files` (resumable, with a progress bar): a migration does not depend on
the app's code, and the move of many large files is better run, watched and resumed on its own.
The downgrade writes the content back into the upload folder as whole encrypted files.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3a9e5d20b71"
down_revision = "5383638ca325"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "attachment_chunk",
        sa.Column("attachment_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachment.id"],
            name=op.f("fk_attachment_chunk_attachment_id_attachment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attachment_id", "seq", name=op.f("pk_attachment_chunk")),
    )
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM attachment")).scalar_one()
    if waiting:
        print(
            f"{waiting} attachment(s) are still files in UPLOAD_FOLDER: "
            "run `flask attachments import-files` to move them into the database."
        )


# Frozen copy of the chunk format of referral/crypto.py as of this revision: a Fernet token per
# chunk, stored unencoded, whose plaintext starts with magic (4), binding (32), seq (4), last (1).
HEADER_SIZE = 4 + 32 + 4 + 1


def _fernet():
    from cryptography.fernet import Fernet, MultiFernet
    from flask import current_app

    keys = [k.strip().encode() for k in current_app.config["REFERRAL_DATA_KEYS"].split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def downgrade():
    import base64
    from pathlib import Path

    from flask import current_app

    connection = op.get_bind()
    fernet = _fernet()
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    stored = connection.execute(
        sa.text(
            "SELECT id, storage_key FROM attachment WHERE EXISTS "
            "(SELECT 1 FROM attachment_chunk WHERE attachment_id = attachment.id)"
        )
    ).all()
    if stored:
        folder.mkdir(parents=True, exist_ok=True)
    for attachment_id, storage_key in stored:
        chunks = connection.execute(
            sa.text("SELECT data FROM attachment_chunk WHERE attachment_id = :id ORDER BY seq"),
            {"id": attachment_id},
        ).scalars()
        content = b"".join(fernet.decrypt(base64.urlsafe_b64encode(bytes(c)))[HEADER_SIZE:] for c in chunks)
        (folder / storage_key).write_bytes(fernet.encrypt(content))
    op.drop_table("attachment_chunk")
