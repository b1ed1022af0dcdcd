"""`flask attachments import-files`: the files of the upload folder of earlier versions moved into
the database, one committed attachment at a time; each file is removed only after its commit."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy import exists, select

from ..crypto import vault
from ..extensions import db
from .models import Attachment, AttachmentChunk
from .storage import is_stored, store


def upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


@dataclass
class ImportResult:
    moved: int = 0
    already: int = 0
    missing: int = 0
    unreadable: int = 0


def import_files(report: Callable[[str], None] = click.echo, progress: bool = True) -> ImportResult:
    """Moves the files of the upload folder into the database, one committed attachment at a time,
    and removes each file only after its commit. Attachments already in the database are skipped
    (their leftover file is removed): an interrupted run is simply started again."""
    folder = upload_folder()
    result = ImportResult()
    pending = list(
        db.session.execute(
            select(Attachment.id, Attachment.storage_key)
            .where(~exists().where(AttachmentChunk.attachment_id == Attachment.id))
            .order_by(Attachment.id)
        ).all()
    )
    done = db.session.scalars(
        select(Attachment.storage_key).where(exists().where(AttachmentChunk.attachment_id == Attachment.id))
    ).all()
    db.session.rollback()
    for key in done:
        if (folder / key).is_file():
            (folder / key).unlink()
            result.already += 1
    keys = vault()
    with click.progressbar(
        pending, label="Moving attachments into the database", file=None if progress else io.StringIO()
    ) as bar:
        for attachment_id, storage_key in bar:
            path = folder / storage_key
            if not path.is_file():
                result.missing += 1
                report(f"attachment {attachment_id}: no file {storage_key} in {folder}")
                continue
            # Locked (PostgreSQL): two runs at once do not both move the same file.
            attachment = db.session.get(Attachment, attachment_id, with_for_update=True)
            if attachment is None or is_stored(attachment_id):  # deleted or moved meanwhile
                db.session.rollback()
                continue
            try:
                content = keys.decrypt(path.read_bytes())
            except InvalidToken:
                db.session.rollback()
                result.unreadable += 1
                report(f"attachment {attachment_id}: {path} does not decrypt with REFERRAL_DATA_KEYS; left as it is")
                continue
            store(attachment, content)
            db.session.commit()
            path.unlink()  # after the commit: until then the file is the only copy
            db.session.expunge_all()
            result.moved += 1
    report(
        f"{result.moved} attachment(s) moved into the database, {result.already} leftover file(s) of "
        f"attachments already moved removed, {result.missing} without a file, {result.unreadable} unreadable."
    )
    return result
