"""`flask keys rotate`: re-encrypt everything under the newest data key.

Works in batches, each committed on its own; values and attachment chunks already under the newest key are
skipped, so an interrupted run is simply started again. Afterwards the older keys can be removed
from REFERRAL_DATA_KEYS.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import and_, bindparam, or_, select, text, update

from .crypto import EncryptedDate, EncryptedText, child_key, chunk_is_current, rotate_chunk, vault
from .extensions import db


def encrypted_columns() -> list[tuple[str, str]]:
    """Every (table, column) stored encrypted, read from the models, so none is forgotten."""
    return sorted(
        (table.name, column.name)
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, (EncryptedText, EncryptedDate))
    )


def rotate(batch: int = 500, report: Callable[[str], None] = print) -> dict[str, int]:
    keys = vault()
    counts = {"values": 0, "files": 0, "match_keys": 0}
    for table, column in encrypted_columns():
        last_id = 0
        while True:
            rows = db.session.execute(
                text(
                    f"SELECT id, {column} FROM {table} WHERE id > :last AND {column} IS NOT NULL AND {column} <> '' "
                    f"ORDER BY id LIMIT :batch"
                ),
                {"last": last_id, "batch": batch},
            ).all()
            if not rows:
                break
            for row_id, token in rows:
                if not keys.is_current(token.encode()):
                    db.session.execute(
                        text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                        {"value": keys.rotate(token.encode()).decode(), "id": row_id},
                    )
                    counts["values"] += 1
            db.session.commit()
            last_id = rows[-1][0]
        report(f"{table}.{column}: done")
    counts["files"] = _rotate_attachments(keys)
    counts["match_keys"] = _recompute_match_keys(batch)
    report(
        f"Re-encrypted {counts['values']} values and {counts['files']} attachment chunks; "
        f"{counts['match_keys']} repeat-detection keys recomputed."
    )
    return counts


def _rotate_attachments(keys) -> int:
    from .cases.file_import import upload_folder

    # Files still in the upload folder (not yet moved by `flask attachments import-files`) are
    # re-encrypted there; the move later reads them with the newest key.
    changed = _rotate_folder_files(keys, upload_folder())
    return changed + _rotate_chunks(keys)


def _rotate_chunks(keys, batch: int = 16) -> int:
    """Re-encrypts the attachment chunks not yet under the newest key: `batch` chunks (at most a few
    MB, whatever the --batch of the values) read, written with one executemany and committed."""
    from .cases.models import AttachmentChunk

    changed, after = 0, (0, -1)
    while True:
        rows = db.session.execute(
            select(AttachmentChunk.attachment_id, AttachmentChunk.seq, AttachmentChunk.data)
            .where(
                or_(
                    AttachmentChunk.attachment_id > after[0],
                    and_(AttachmentChunk.attachment_id == after[0], AttachmentChunk.seq > after[1]),
                )
            )
            .order_by(AttachmentChunk.attachment_id, AttachmentChunk.seq)
            .limit(batch)
        ).all()
        if not rows:
            db.session.rollback()
            return changed
        stale = [
            {"a": attachment_id, "s": seq, "sealed": rotate_chunk(keys, data)}
            for attachment_id, seq, data in rows
            if not chunk_is_current(keys, data)
        ]
        if stale:
            table = AttachmentChunk.__table__
            db.session.execute(
                update(table)
                .where(table.c.attachment_id == bindparam("a"), table.c.seq == bindparam("s"))
                .values(data=bindparam("sealed")),
                stale,
            )
        db.session.commit()
        changed += len(stale)
        after = (rows[-1][0], rows[-1][1])


def _rotate_folder_files(keys, folder) -> int:
    from .cases.models import Attachment

    if not folder.is_dir():
        return 0
    changed = 0
    for storage_key in db.session.scalars(select(Attachment.storage_key)).all():
        path = folder / storage_key
        if not path.is_file():
            continue
        token = path.read_bytes()
        if keys.is_current(token):
            continue
        temporary = path.with_suffix(".rotating")
        temporary.write_bytes(keys.rotate(token))
        os.replace(temporary, path)  # atomic: a file is always whole, under the old key or the new
        changed += 1
    db.session.rollback()
    return changed


def _recompute_match_keys(batch: int) -> int:
    from .cases.models import Referral

    changed, last_id = 0, 0
    while True:
        referrals = db.session.scalars(
            select(Referral).where(Referral.id > last_id).order_by(Referral.id).limit(batch)
        ).all()
        if not referrals:
            return changed
        for referral in referrals:
            key = child_key(referral.child_last_name, referral.child_first_name, referral.child_birth_date)
            if key != referral.child_key:
                # Not a change of the case: no new version, no history entry.
                db.session.execute(
                    text("UPDATE referral SET child_key = :key WHERE id = :id"), {"key": key, "id": referral.id}
                )
                changed += 1
        last_id = referrals[-1].id
        db.session.commit()
        db.session.expunge_all()
