"""`flask keys rotate`: re-encrypt everything under the newest data key.

Works in batches (ids walked in order, a batch re-encrypted in Python and written back with one
statement), each committed on its own; values and attachment chunks already under the newest key are
skipped, so an interrupted run is simply started again. Afterwards the older keys can be removed
from REFERRAL_DATA_KEYS.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import String, and_, bindparam, or_, select, text, update

from .crypto import EncryptedDate, EncryptedText, Vault, child_key, chunk_is_current, rotate_chunk, vault
from .extensions import db


def encrypted_columns() -> list[tuple[str, str]]:
    """Every (table, column) stored encrypted, read from the models, so none is forgotten."""
    return sorted(
        (table.name, column.name)
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, (EncryptedText, EncryptedDate))
    )


BATCH = 5000  # values per statement and transaction: about 2 MB of tokens held at a time


class Rotator:
    """Re-encrypts a token under the newest key, or says it already is: one failed check against the
    newest key (the HMAC fails before any decryption) and one decryption with the key that made it,
    instead of MultiFernet's check, decryption attempts and rotation (half the time per value)."""

    def __init__(self, keys: Vault):
        self.newest = keys.newest
        self.older = [Fernet(key) for key in keys.keys[1:]]

    def stale(self, token: bytes) -> bytes | None:
        """The token under the newest key; None if it is under the newest key already."""
        try:
            self.newest.decrypt(token)
        except InvalidToken:
            pass
        else:
            return None
        for key in self.older:
            try:
                return self.newest.encrypt(key.decrypt(token))
            except InvalidToken:
                continue
        raise InvalidToken  # under no configured key: the same error MultiFernet gives


# Fernet in Python is the rotation's bound (about 21,000 values per CPU second): on PostgreSQL the
# batches are re-encrypted in worker processes while the main process reads the next batches and
# writes back the finished ones, in order. At most WORKERS + 1 batches are in flight (bounded memory).
WORKERS = max(1, min(4, os.cpu_count() or 1))
_rotator: Rotator | None = None


def _start_worker(keys: list[bytes]) -> None:
    global _rotator
    _rotator = Rotator(Vault(keys))


def _fresh(rows: list[list[str | None]], rotator: Rotator | None = None) -> list[list[str | None]]:
    """Each row's tokens under the newest key, None where a token is empty or current already."""
    use = rotator or _rotator
    assert use is not None
    out = []
    for tokens in rows:
        fresh = [use.stale(token.encode()) if token else None for token in tokens]
        out.append([value.decode() if value is not None else None for value in fresh])
    return out


def rotate(batch: int = BATCH, report: Callable[[str], None] = print) -> dict[str, int]:
    keys = vault()
    rotator = Rotator(keys)
    counts = {"values": 0, "files": 0, "match_keys": 0}
    tables: dict[str, list[str]] = {}
    for table, column in encrypted_columns():
        tables.setdefault(table, []).append(column)
    pool = None
    if WORKERS > 1 and db.session.get_bind().dialect.name == "postgresql":
        pool = ProcessPoolExecutor(
            WORKERS, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(keys.keys,)
        )
    try:
        for table, columns in tables.items():
            # All of a row's encrypted columns in one UPDATE: PostgreSQL writes a new version of the row,
            # with an entry in each of its indexes, per UPDATE; column by column that was one version per
            # column (a referral has 14), most of the time the rotation took.
            done = dict.fromkeys(columns, 0)

            def write(ids: list[Any], fresh: list[list[str | None]], columns=columns, table=table, done=done) -> None:
                changed = [(row_id, values) for row_id, values in zip(ids, fresh, strict=True) if any(values)]
                for _, values in changed:
                    for column, value in zip(columns, values, strict=True):
                        done[column] += value is not None
                _write_back(table, columns, changed)
                db.session.commit()  # each batch on its own: a re-run continues where this one stopped

            pending: deque[tuple[list[Any], Future[list[list[str | None]]]]] = deque()
            for rows in _walk(table, columns, batch):
                ids, tokens = [row[0] for row in rows], [list(row[1:]) for row in rows]
                if pool is None:
                    write(ids, _fresh(tokens, rotator))
                    continue
                pending.append((ids, pool.submit(_fresh, tokens)))
                if len(pending) > WORKERS:
                    ids, future = pending.popleft()
                    write(ids, future.result())
            while pending:
                ids, future = pending.popleft()
                write(ids, future.result())
            for column in columns:
                counts["values"] += done[column]
                report(f"{table}.{column}: {done[column]} re-encrypted")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    counts["files"] = _rotate_attachments(keys)
    counts["match_keys"] = _recompute_match_keys(batch)
    report(
        f"Re-encrypted {counts['values']} values and {counts['files']} attachment chunks; "
        f"{counts['match_keys']} repeat-detection keys recomputed."
    )
    return counts


def _text_ids(table: str) -> bool:
    """Does the table have a text key (the survey's answers: random keys, no sequence) rather than a number?"""
    return isinstance(db.metadata.tables[table].c.id.type, String)


def _walk(table: str, columns: list[str], batch: int) -> Iterator[list[Any]]:
    """The rows of one table that hold an encrypted value, `batch` at a time, walking the ids (an index
    range per batch, no OFFSET); only (id, tokens…) is held, never an object."""
    last_id: Any = "" if _text_ids(table) else 0
    filled = " OR ".join(f"({column} IS NOT NULL AND {column} <> '')" for column in columns)
    while True:
        rows = db.session.execute(
            text(
                f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > :last AND ({filled}) ORDER BY id LIMIT :batch"
            ),
            {"last": last_id, "batch": batch},
        ).all()
        if not rows:
            db.session.rollback()
            return
        yield list(rows)
        last_id = rows[-1][0]


def _write_back(
    table: str, columns: list[str], changed: list[tuple[Any, list[str | None]]], keep_unset: bool = True
) -> None:
    """One statement for the whole batch. `keep_unset`: a None leaves the column as it is (its value
    was current already); otherwise None is written (a match key without a name to compute it from).
    PostgreSQL: an UPDATE joined to the arrays unnested (one round trip, one plan); SQLite, in process:
    executemany of the single-row UPDATE."""
    if not changed:
        return

    def value(i: int, column: str, new: str) -> str:
        return f"COALESCE({new}, {column})" if keep_unset else new

    assignments = ", ".join(
        f"{column} = {value(i, f'{table}.{column}', f'v.c{i}')}" for i, column in enumerate(columns)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        id_type = "text" if _text_ids(table) else "bigint"
        arrays = ", ".join(f"CAST(:c{i} AS text[])" for i in range(len(columns)))
        names = ", ".join(f"c{i}" for i in range(len(columns)))
        params: dict[str, Any] = {"ids": [row_id for row_id, _ in changed]}
        for i in range(len(columns)):
            params[f"c{i}"] = [values[i] for _, values in changed]
        db.session.execute(
            text(
                f"UPDATE {table} SET {assignments} "
                f"FROM unnest(CAST(:ids AS {id_type}[]), {arrays}) AS v(id, {names}) WHERE {table}.id = v.id"
            ),
            params,
        )
    else:
        single = ", ".join(f"{column} = {value(i, column, f':c{i}')}" for i, column in enumerate(columns))
        db.session.execute(
            text(f"UPDATE {table} SET {single} WHERE id = :id"),
            [{"id": row_id, **{f"c{i}": new for i, new in enumerate(values)}} for row_id, values in changed],
        )


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
    """The repeat-detection key is a keyed hash under the newest key: recomputed from the decrypted
    name and date of birth, only those columns read, changed ones written back in one statement."""
    from .cases.models import Referral

    changed = 0
    last_id = 0
    while True:
        rows = db.session.execute(
            select(
                Referral.id,
                Referral.child_last_name,
                Referral.child_first_name,
                Referral.child_birth_date,
                Referral.child_key,
            )
            .where(Referral.id > last_id)
            .order_by(Referral.id)
            .limit(batch)
        ).all()
        if not rows:
            db.session.rollback()
            return changed
        # Not a change of the case: no new version, no history entry.
        stale = [
            (row_id, key) for row_id, last, first, born, old in rows if (key := child_key(last, first, born)) != old
        ]
        _write_back("referral", ["child_key"], [(row_id, [key]) for row_id, key in stale], keep_unset=False)
        db.session.commit()
        changed += len(stale)
        last_id = rows[-1][0]
