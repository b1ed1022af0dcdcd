"""Attachment content in the database, encrypted in chunks.

The content is written in the transaction of the referral change it belongs to: a failed upload
leaves nothing behind, one backup of the database holds everything, the retention purge removes
it with its row, and every app server can serve every file. Each chunk is encrypted on its own
(crypto.seal_chunk), so that a download streams chunk by chunk: one chunk in memory, not the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import exists, insert, select

from ..crypto import (
    ChunkError,
    chunk_binding,
    open_chunk,
    seal_chunk,
    vault,
)
from ..extensions import db
from ..outages import is_disk_full
from .models import Attachment, AttachmentChunk

# Large enough that a 10 MB file is 20 rows, small enough that a download holds little memory.
CHUNK_SIZE = 512 * 1024


class ContentMissing(Exception):
    """The attachment's content is not (or not wholly) in the database, or does not decrypt."""


def store(attachment: Attachment, data: bytes) -> None:
    """Writes the content in the caller's transaction, one chunk per statement (no copy of the
    whole encrypted file in memory). The attachment row is flushed first: the chunks refer to it."""
    db.session.flush([attachment])
    keys, binding = vault(), chunk_binding(attachment.storage_key)
    view = memoryview(data)
    count = max(1, -(-len(data) // CHUNK_SIZE))
    for seq in range(count):
        piece = bytes(view[seq * CHUNK_SIZE : (seq + 1) * CHUNK_SIZE])
        db.session.execute(
            insert(AttachmentChunk).values(
                attachment_id=attachment.id,
                seq=seq,
                data=seal_chunk(keys, binding, seq, seq == count - 1, piece),
            )
        )


def is_stored(attachment_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(AttachmentChunk.attachment_id == attachment_id))))


def _chunk(attachment_id: int, seq: int) -> bytes | None:
    return db.session.scalar(
        select(AttachmentChunk.data).where(AttachmentChunk.attachment_id == attachment_id, AttachmentChunk.seq == seq)
    )


@dataclass
class Content:
    """An attachment's content, opened: the first chunk is read and checked already (a missing or
    undecryptable content shows before the response starts), the rest is read while sending."""

    attachment_id: int
    size: int
    first: bytes
    last: bool
    binding: bytes

    def __iter__(self) -> Iterator[bytes]:
        keys, seq, last, sent = vault(), 0, self.last, len(self.first)
        yield self.first
        while not last:
            seq += 1
            sealed = _chunk(self.attachment_id, seq)
            if sealed is None:
                raise ContentMissing(f"attachment {self.attachment_id}: chunk {seq} missing")
            data, last = open_chunk(keys, self.binding, seq, sealed)
            sent += len(data)
            yield data
        if sent != self.size:
            raise ContentMissing(f"attachment {self.attachment_id}: {sent} bytes instead of {self.size}")


def open_content(attachment: Attachment) -> Content:
    binding = chunk_binding(attachment.storage_key)
    sealed = _chunk(attachment.id, 0)
    if sealed is None:
        raise ContentMissing(f"attachment {attachment.id} has no content in the database")
    try:
        first, last = open_chunk(vault(), binding, 0, sealed)
    except ChunkError as error:
        raise ContentMissing(f"attachment {attachment.id}: {error}") from error
    return Content(attachment.id, attachment.size, first, last, binding)


def read(attachment: Attachment) -> bytes:
    """The whole content at once: for the tests and small tools, never for a download."""
    return b"".join(open_content(attachment))


# --- Failures while storing ------------------------------------------------------------------------

DISK_FULL = (
    "Der Anhang wurde nicht gespeichert, weil der Speicherplatz des Servers voll ist. Bitte informieren "
    "Sie die Administration und versuchen Sie es später erneut."
)
NOT_STORED = (
    "Der Anhang wurde nicht gespeichert, weil die Datenbank beim Speichern einen Fehler meldete. Bitte "
    "versuchen Sie es in einigen Minuten erneut."
)
NOT_READ = "Die Datei konnte nicht gelesen werden. Bitte wählen Sie sie erneut aus."
TYPED_KEPT = " Ihre übrigen Eingaben wurden noch nicht gespeichert; sie stehen weiter im Formular."


def failure_message(error: BaseException) -> str:
    """What the user is told when storing an upload failed (not an outage, not a race: those have
    their own pages)."""
    if is_disk_full(error):
        return DISK_FULL
    if isinstance(error, OSError):
        return NOT_READ
    return NOT_STORED
