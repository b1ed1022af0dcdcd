"""Backup and restore of the whole database (`flask backup create|restore`).

A backup is a directory: the database archive (PostgreSQL: `pg_dump` custom format; SQLite: a copy
made with SQLite's online backup API), the attachment files, and `manifest.json` with the schema
revision, the row count of every table, the audit chain's head and the archive's checksum, taken
from the same snapshot as the archive. The data keys (REFERRAL_DATA_KEYS) are never part of it: the
case data in the archive is encrypted and stays unreadable without them.

A restore goes only into an empty database, checks the archive against the manifest first, and
afterwards compares the restored counts and audit head with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

FORMAT = "referral-backup/1"
MANIFEST = "manifest.json"
PG_ARCHIVE = "database.dump"
SQLITE_ARCHIVE = "database.sqlite3"
# Attachments still live as files in UPLOAD_FOLDER; they are copied next to the archive. Once they
# are stored in the database (issue 13), the archive holds them and this folder goes away.
UPLOADS = "uploads"

Report = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message tells the operator what to do."""


# --- Checksums and the manifest ---------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: Path) -> tuple[int, str]:
    """Number of files and one checksum over their names and contents."""
    digest, count = hashlib.sha256(), 0
    if folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            digest.update(f"{path.name} {sha256_of(path)}\n".encode())
            count += 1
    return count, digest.hexdigest()


def table_counts(connection: Connection) -> dict[str, int]:
    names = sorted(inspect(connection).get_table_names())
    return {name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()) for name in names}


def database_state(connection: Connection) -> dict[str, Any]:
    """What the manifest records and a restore checks: revision, counts, audit head."""
    counts = table_counts(connection)
    revision = None
    if "alembic_version" in counts:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = None
    if "audit_block" in counts:
        # The log's head: its newest entry ("seq", as before blocks) and newest block.
        newest = connection.execute(text("SELECT max(id) FROM audit_entry")).scalar()
        block = connection.execute(text("SELECT id, last_entry_id, hash FROM audit_block ORDER BY id DESC LIMIT 1"))
        last = block.first()
        head = {
            "seq": int(newest or 0),
            "block": int(last[0]) if last else None,
            "block_last_entry_id": int(last[1]) if last else None,
            "block_hash": str(last[2]) if last else None,
        }
    elif "audit_head" in counts:
        row = connection.execute(text("SELECT seq, last_hash FROM audit_head")).first()
        if row is not None:
            head = {"seq": int(row[0]), "last_hash": str(row[1])}
    return {"schema_revision": revision, "tables": counts, "audit_head": head}


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} is not a backup: {MANIFEST} is missing.")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise BackupError(f"{path} is not readable JSON: {error}.") from error
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a backup of this application (format {manifest.get('format')!r}).")
    return manifest


# --- PostgreSQL tools ----------------------------------------------------------------------------------


def _tool_major(tool: Path) -> int | None:
    try:
        found = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\b(\d+)(?:\.\d+)?", found.stdout)
    return int(match.group(1)) if match else None


def pg_tool(name: str, server_major: int) -> Path:
    """Debian's `pg_dump`/`pg_restore` of the server's major version (postgresql-client-N), or one on
    the PATH at least as new: an older one refuses to dump a newer server."""
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]) / name)
    candidates.append(Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    seen = []
    for candidate in candidates:
        if not candidate.is_file():
            continue
        major = _tool_major(candidate)
        seen.append(f"{candidate} (version {major})")
        if major is not None and major >= server_major:
            return candidate
    found = "; found: " + ", ".join(seen) if seen else ""
    raise BackupError(
        f"No {name} for PostgreSQL {server_major}{found}. Install the client of the server's version "
        f"(Debian: apt-get install postgresql-client-{server_major}) or set PG_BINDIR to its bin directory."
    )


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The connection URI for the client tools and their environment; the password goes into the
    environment, never onto the command line (where `ps` shows it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit status {done.returncode}): {done.stderr.strip()}")


def _server_major(connection: Connection) -> int:
    return int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000


# --- Backup --------------------------------------------------------------------------------------------


@dataclass
class Backup:
    directory: Path
    manifest: dict[str, Any]


@contextmanager
def _new_directory(target: Path) -> Iterator[Path]:
    """Written into a sibling directory first and renamed at the end: a directory named like the
    backup is always a complete one."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not empty; a backup is written into a new directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".incomplete")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    try:
        yield partial
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _dump_postgresql(url: URL, archive: Path) -> dict[str, Any]:
    """pg_dump inside the snapshot of a REPEATABLE READ transaction that also counts the rows: the
    manifest describes exactly what the archive holds, while the app keeps running."""
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection, connection.begin():
            major = _server_major(connection)
            pg_dump = pg_tool("pg_dump", major)
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            state = database_state(connection)
            # The snapshot's files (one committed later is not in the archive either). A file is only
            # removed after its row's deletion was committed: one missing now was purged since.
            state["storage_keys"] = _storage_keys(connection)
            uri, env = _libpq(url)
            _run(
                [str(pg_dump), "--format=custom", f"--snapshot={snapshot}", f"--file={archive}", f"--dbname={uri}"],
                env,
                "pg_dump",
            )
            state["server_version"] = connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return state


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("The database is in memory; there is nothing to back up or restore into.")
    return Path(url.database)


def _dump_sqlite(url: URL, archive: Path) -> dict[str, Any]:
    source_path = _sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"The SQLite database {source_path} does not exist.")
    # The online backup API copies a consistent state while the app may keep writing.
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(archive)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    engine = create_engine(f"sqlite:///{archive}")
    try:
        with engine.connect() as connection:
            state = database_state(connection)
            state["storage_keys"] = _storage_keys(connection)
            state["server_version"] = sqlite3.sqlite_version
    finally:
        engine.dispose()
    return state


def _copy_uploads(upload_folder: Path, target: Path, keys: set[str], report: Report) -> dict[str, Any]:
    """The attachment files the archive's rows name (a file of an upload not committed, or of a row
    deleted since, is left out)."""
    target.mkdir(mode=0o700)
    missing = 0
    for key in sorted(keys):
        source = upload_folder / key
        if source.is_file():
            shutil.copy2(source, target / key)
        else:
            missing += 1
    if missing:
        report(f"Warning: {missing} attachment file(s) named in the database are missing in {upload_folder}.")
    count, digest = folder_digest(target)
    return {"folder": UPLOADS, "files": count, "sha256": digest, "missing": missing}


def _storage_keys(connection: Connection) -> set[str]:
    """The files of the attachments whose content is not in the database (yet): all of them while
    attachments live in UPLOAD_FOLDER, none once they have moved into `attachment_chunk` rows."""
    tables = inspect(connection).get_table_names()
    if "attachment" not in tables:
        return set()
    if "storage_key" not in {c["name"] for c in inspect(connection).get_columns("attachment")}:
        return set()
    query = "SELECT storage_key FROM attachment"
    if "attachment_chunk" in tables:
        query += (
            " WHERE NOT EXISTS (SELECT 1 FROM attachment_chunk WHERE attachment_chunk.attachment_id = attachment.id)"
        )
    return {str(k) for k in connection.execute(text(query)).scalars() if k}


def create(database_uri: str, upload_folder: Path, target: Path, report: Report) -> Backup:
    url = make_url(database_uri)
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise BackupError(f"Backups of {backend} databases are not supported (PostgreSQL or SQLite).")
    started = datetime.now(UTC)
    with _new_directory(target) as directory:
        archive = directory / (PG_ARCHIVE if backend == "postgresql" else SQLITE_ARCHIVE)
        state = _dump_postgresql(url, archive) if backend == "postgresql" else _dump_sqlite(url, archive)
        keys = state.pop("storage_keys")
        archive.chmod(0o600)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": backend,
            "server_version": state.pop("server_version"),
            "archive": {"file": archive.name, "bytes": archive.stat().st_size, "sha256": sha256_of(archive)},
            **state,
            "keys": "not included: restore with the same REFERRAL_DATA_KEYS, kept apart from the backups",
        }
        manifest["uploads"] = _copy_uploads(upload_folder, directory / UPLOADS, keys, report)
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (directory / MANIFEST).chmod(0o600)
    return Backup(target, manifest)


# --- Restore -------------------------------------------------------------------------------------------


def verify_archive(directory: Path, manifest: dict[str, Any]) -> Path:
    # Names from the manifest stay inside the backup directory.
    archive = directory / Path(str(manifest["archive"]["file"])).name
    if not archive.is_file():
        raise BackupError(f"The archive {archive} is missing.")
    if sha256_of(archive) != manifest["archive"]["sha256"]:
        raise BackupError(
            f"The archive {archive} does not match the checksum in the manifest: it was changed or damaged. "
            "Nothing was restored; use another backup."
        )
    uploads = manifest.get("uploads")
    if uploads:
        folder = directory / Path(str(uploads["folder"])).name
        count, digest = folder_digest(folder)
        if (count, digest) != (uploads["files"], uploads["sha256"]):
            raise BackupError(
                f"The attachment files in {folder} do not match the manifest: they were "
                "changed or damaged. Nothing was restored; use another backup."
            )
    return archive


def _refuse_non_empty(connection: Connection) -> None:
    tables = inspect(connection).get_table_names()
    if tables:
        filled = [
            name for name in sorted(tables) if connection.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first()
        ]
        detail = f"{len(filled)} of them with rows" if filled else "all of them empty"
        raise BackupError(
            f"The target database is not empty ({len(tables)} table(s), {detail}). A backup is only restored "
            "into a new, empty database (createdb …), never over existing data."
        )


@dataclass
class Restored:
    manifest: dict[str, Any]
    differences: list[str]


def restore(database_uri: str, upload_folder: Path, source: Path, report: Report) -> Restored:
    url = make_url(database_uri)
    backend = url.get_backend_name()
    manifest = read_manifest(source)
    if manifest["database"] != backend:
        raise BackupError(
            f"The backup is of a {manifest['database']} database; DATABASE_URL names a {backend} database."
        )
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _refuse_non_empty(connection)
            major = _server_major(connection) if backend == "postgresql" else 0
    except BackupError:
        raise
    except Exception as error:  # the database is missing or unreachable
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise BackupError(f"The target database cannot be opened ({reason}). Create it first (createdb …).") from error
    finally:
        engine.dispose()
    archive = verify_archive(source, manifest)
    report(f"Archive checksum verified ({manifest['archive']['bytes']} bytes).")

    if backend == "postgresql":
        pg_restore = pg_tool("pg_restore", major)
        uri, env = _libpq(url)
        # One transaction: a failing restore leaves the target empty, ready for the next attempt.
        _run(
            [
                str(pg_restore),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={uri}",
                str(archive),
            ],
            env,
            "pg_restore",
        )
    else:
        target = sqlite3.connect(_sqlite_path(url))
        copy = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
        try:
            copy.backup(target)
        finally:
            copy.close()
            target.close()
    report("Database restored.")

    uploads = manifest.get("uploads")
    if uploads and uploads["files"]:
        upload_folder.mkdir(parents=True, exist_ok=True)
        for path in sorted((source / Path(str(uploads["folder"])).name).iterdir()):
            shutil.copy2(path, upload_folder / path.name)
        report(f"{uploads['files']} attachment file(s) copied into {upload_folder}.")
    if uploads and uploads.get("missing"):
        report(f"Warning: {uploads['missing']} attachment file(s) were already missing when the backup was made.")

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            state = database_state(connection)
    finally:
        engine.dispose()
    return Restored(manifest, compare(manifest, state))


def compare(manifest: dict[str, Any], state: dict[str, Any]) -> list[str]:
    differences = []
    if state["schema_revision"] != manifest["schema_revision"]:
        differences.append(f"schema revision {state['schema_revision']} (manifest: {manifest['schema_revision']})")
    for name in sorted(set(manifest["tables"]) | set(state["tables"])):
        expected, found = manifest["tables"].get(name), state["tables"].get(name)
        if expected != found:
            differences.append(f"table {name}: {found} rows (manifest: {expected})")
    if state["audit_head"] != manifest["audit_head"]:
        differences.append(f"audit head {state['audit_head']} (manifest: {manifest['audit_head']})")
    return differences
