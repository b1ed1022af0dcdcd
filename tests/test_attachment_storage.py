"""Attachments live in the database, encrypted in chunks: written in the transaction of their
referral change, streamed on download, served by any app instance, re-encrypted by `keys rotate`,
purged with their rows, and moved there from the old upload folder by `attachments import-files`.
On SQLite, or PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import contextvars
import errno
import secrets
import sqlite3
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import has_request_context
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from werkzeug.datastructures import FileStorage

from referral import create_app
from referral.cases import file_import, storage
from referral.cases.models import Attachment, AttachmentChunk, Referral
from referral.cases.process import State
from referral.crypto import chunk_binding, open_chunk, vault
from referral.extensions import db

from . import factories
from .conftest import FreshContextClient
from .test_referral_form import complete_form, draft_id, teacher  # noqa: F401 - fixtures

# Three chunks: two whole ones and a short last one.
BIG_PDF = b"%PDF-1.4\n" + secrets.token_bytes(2 * storage.CHUNK_SIZE + 1234)


def counts() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Attachment)),
        db.session.scalar(select(func.count()).select_from(AttachmentChunk)),
    )


def invoke(app, *args):
    return contextvars.Context().run(app.test_cli_runner().invoke, args=list(args))


def upload_with_draft(client, referral_id, name, content, **typed):
    data = complete_form(upload="1", attachment=(BytesIO(content), name), **typed)
    return client.post(f"/referrals/{referral_id}/edit", data=data, content_type="multipart/form-data")


def test_upload_and_streamed_download_round_trip(teacher, draft_id, app):  # noqa: F811
    response = upload_with_draft(teacher, draft_id, "grosser befund ä.pdf", BIG_PDF)
    assert response.status_code == 302
    attachment = db.session.scalars(select(Attachment)).one()
    assert counts() == (1, 3) and attachment.size == len(BIG_PDF)
    assert not Path(app.config["UPLOAD_FOLDER"]).exists(), "nothing on disk"

    download, pieces = streamed_get(teacher, f"/referrals/{draft_id}/attachments/{attachment.id}")
    assert download.status_code == 200 and download.is_streamed, "sent chunk by chunk"
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Length"] == str(len(BIG_PDF))
    assert "filename*=UTF-8''grosser%20befund%20%C3%A4.pdf" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    assert len(pieces) == 3 and b"".join(pieces) == BIG_PDF, "one chunk at a time"


def streamed_get(client, url):
    """The response unbuffered, read piece by piece in the request's own context (as a server does)."""

    def run():
        response = FlaskClient.open(client, url, buffered=False)
        pieces = list(response.response)
        response.close()
        return response, pieces

    return contextvars.Context().run(run)


def test_chunks_are_bound_to_their_place_and_attachment(teacher, draft_id, app):  # noqa: F811
    upload_with_draft(teacher, draft_id, "befund.pdf", BIG_PDF)
    attachment = db.session.scalars(select(Attachment)).one()
    chunks = dict(db.session.execute(select(AttachmentChunk.seq, AttachmentChunk.data)).all())
    binding = chunk_binding(attachment.storage_key)
    assert open_chunk(vault(), binding, 2, chunks[2])[1] is True, "the last one says so"
    with pytest.raises(ValueError):
        open_chunk(vault(), binding, 0, chunks[1])
    with pytest.raises(ValueError):
        open_chunk(vault(), chunk_binding("another attachment"), 0, chunks[0])
    # Swapped in the database: the download refuses in German instead of serving a scrambled file.
    swap = text("UPDATE attachment_chunk SET data = :data WHERE attachment_id = :a AND seq = :s")
    db.session.execute(swap, {"data": chunks[1], "a": attachment.id, "s": 0})
    db.session.commit()
    refused = teacher.get(f"/referrals/{draft_id}/attachments/{attachment.id}", follow_redirects=True)
    assert "kann gerade nicht geöffnet werden" in refused.get_data(as_text=True)


@contextmanager
def failing_chunk_insert(kind: str):
    """The database driver refuses to write a chunk, as a full disk (or another error) makes it do."""
    dialect = db.engine.dialect
    real = dialect.do_execute

    def refuse(cursor, statement, parameters, context=None):
        if statement.lstrip().upper().startswith("INSERT INTO ATTACHMENT_CHUNK"):
            if kind == "data":
                raise dialect.loaded_dbapi.DataError("value rejected")
            if dialect.name == "postgresql":
                import psycopg.errors

                raise psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device')
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise error
        return real(cursor, statement, parameters, context)

    dialect.do_execute = refuse
    try:
        yield
    finally:
        del dialect.do_execute


@pytest.mark.parametrize(
    ("kind", "message"), [("full", storage.DISK_FULL), ("data", storage.NOT_STORED)], ids=["disk-full", "db-error"]
)
def test_a_failed_upload_keeps_what_was_typed_and_leaves_nothing(teacher, draft_id, app, kind, message):  # noqa: F811
    before = db.session.get(Referral, draft_id).observation
    with failing_chunk_insert(kind):
        response = upload_with_draft(teacher, draft_id, "befund.pdf", BIG_PDF, observation="Neu getippter Text.")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page and "stehen weiter im Formular" in page
    assert "Neu getippter Text." in page, "what was typed is shown again"
    assert counts() == (0, 0), "no half row"
    db.session.expire_all()
    assert db.session.get(Referral, draft_id).observation == before, "the whole request was rolled back"
    assert not Path(app.config["UPLOAD_FOLDER"]).exists(), "no file"


def test_a_disk_full_at_the_commit_gets_a_german_page_and_leaves_nothing(teacher, draft_id, app):  # noqa: F811
    """SQLite writes the pages at the commit: the request's commit is where a full disk shows there."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: errors become pages
    dialect = db.engine.dialect

    def full(connection):
        if dialect.name == "postgresql":
            import psycopg.errors

            raise psycopg.errors.DiskFull("could not write to file: No space left on device")
        raise sqlite3.OperationalError("database or disk is full")

    dialect.do_commit = full
    try:
        response = upload_with_draft(teacher, draft_id, "befund.pdf", b"%PDF-1.4 klein")
    finally:
        del dialect.do_commit
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and "Speicherplatz der Datenbank voll ist" in page, page
    assert "Ihre Eingaben wurden nicht gespeichert" in page
    assert counts() == (0, 0)


def test_an_unreadable_upload_on_a_full_disk_says_so(teacher, draft_id, app, monkeypatch):  # noqa: F811
    real = FileStorage.__getattr__

    def full(self, *args):
        if has_request_context():  # the app reading the upload, not the test client sending it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, "read")(*args)

    monkeypatch.setattr(FileStorage, "read", full, raising=False)
    response = upload_with_draft(teacher, draft_id, "befund.pdf", BIG_PDF, observation="Getippt.")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and storage.DISK_FULL in page and "Getippt." in page
    assert counts() == (0, 0)


def test_a_later_upload_that_fails_in_the_database_leaves_nothing(world, app, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    client = as_user(world.teacher)
    app.config["WTF_CSRF_ENABLED"] = False
    with failing_chunk_insert("full"):
        response = client.post(
            f"/referrals/{referral.id}/attachments",
            data={"file": (BytesIO(BIG_PDF), "nachtrag.pdf")},
            content_type="multipart/form-data",
        )
    assert storage.DISK_FULL in response.get_data(as_text=True)
    assert counts() == (0, 0)


def test_a_purge_removes_the_chunks_with_their_rows(world, app, runner):
    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    factories.services.add_attachment(referral, world.teacher, "befund.pdf", BIG_PDF)
    db.session.commit()
    assert counts() == (1, 3)
    db.session.execute(
        text("UPDATE referral SET updated_at = '2000-01-01 00:00:00' WHERE id = :id"), {"id": referral.id}
    )
    db.session.commit()
    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0 and "1 drafts deleted" in result.output, result.output
    assert counts() == (0, 0)


def other_app(app, database_url, tmp_path, keys: str | None = None, upload_folder: str | None = None):
    env = {"DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"]}
    env["REFERRAL_DATA_KEYS"] = keys or app.config["REFERRAL_DATA_KEYS"]
    other = create_app(
        overrides={
            "TESTING": True,
            "UPLOAD_FOLDER": upload_folder or str(tmp_path / "elsewhere"),
            "SESSION_FILE_DIR": str(tmp_path / f"sessions-{secrets.token_hex(4)}"),
            "MAIL_BACKEND": "locmem",
            "SERVER_NAME": "localhost",
        },
        env=env,
    )
    other.test_client_class = FreshContextClient
    return other


def signed_in(app, uniquifier: str):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = uniquifier
        session["_fresh"] = True
    return client


def test_two_app_instances_serve_the_same_attachment(world, app, database_url, tmp_path):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    client, asd = signed_in(app, world.teacher.fs_uniquifier), world.asd.fs_uniquifier
    app.config["WTF_CSRF_ENABLED"] = False
    client.post(
        f"/referrals/{referral.id}/attachments",
        data={"file": (BytesIO(BIG_PDF), "nachtrag.pdf")},
        content_type="multipart/form-data",
    )
    attachment_id = db.session.scalars(select(Attachment.id)).one()
    db.session.remove()
    second = other_app(app, database_url, tmp_path)  # another upload folder, empty: as another server
    try:
        with second.app_context():
            download = signed_in(second, asd).get(f"/referrals/{referral.id}/attachments/{attachment_id}")
            assert download.status_code == 200 and download.data == BIG_PDF
            db.session.remove()
    finally:
        with second.app_context():
            db.engine.dispose()


def test_key_rotation_re_encrypts_every_chunk(world, app, database_url, tmp_path):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    factories.services.add_attachment(referral, world.teacher, "befund.pdf", BIG_PDF)
    db.session.commit()
    old_key, new_key = app.config["REFERRAL_DATA_KEYS"], Fernet.generate_key().decode()
    db.session.remove()
    both = other_app(app, database_url, tmp_path, keys=f"{new_key},{old_key}")
    result = invoke(both, "keys", "rotate")
    assert result.exit_code == 0 and "3 attachment chunks" in result.output, result.output
    again = invoke(both, "keys", "rotate")
    assert "0 attachment chunks" in again.output
    only_new = other_app(app, database_url, tmp_path, keys=new_key)
    with only_new.app_context():
        for (sealed,) in db.session.execute(select(AttachmentChunk.data)):
            Fernet(new_key.encode()).decrypt(_b64(sealed))  # under the new key alone
        assert storage.read(db.session.scalars(select(Attachment)).one()) == BIG_PDF, "the old key is not needed"
        db.session.remove()
        db.engine.dispose()
    with both.app_context():
        db.engine.dispose()


def _b64(sealed: bytes) -> bytes:
    import base64

    return base64.urlsafe_b64encode(sealed)


def old_style_file(app, referral, world, content: bytes) -> tuple[int, Path]:
    """An attachment as the app stored it before: a row here, the encrypted file in the upload folder."""
    attachment = Attachment(
        referral=referral,
        filename="alt.pdf",
        content_type="application/pdf",
        size=len(content),
        storage_key=secrets.token_hex(32),
        uploaded_by_id=world.teacher.id,
    )
    db.session.add(attachment)
    db.session.commit()
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / attachment.storage_key
    path.write_bytes(vault().encrypt(content))
    return attachment.id, path


def test_import_files_moves_the_upload_folder_into_the_database_resumably(world, app, runner, monkeypatch):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    asd, referral_id = signed_in(app, world.asd.fs_uniquifier), referral.id
    small = b"%PDF-1.4 klein"
    first, first_path = old_style_file(app, referral, world, BIG_PDF)
    second, second_path = old_style_file(app, referral, world, small)
    assert counts() == (2, 0)

    # A power cut during the second file: the first is moved (committed, file removed), the second not.
    real, calls = file_import.store, {"n": 0}

    def cut(attachment, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")
        real(attachment, data)

    monkeypatch.setattr(file_import, "store", cut)
    interrupted = runner.invoke(args=["attachments", "import-files"])
    assert interrupted.exit_code != 0
    db.session.rollback()
    assert not first_path.exists() and second_path.exists()
    assert counts() == (2, 3)
    monkeypatch.setattr(file_import, "store", real)

    resumed = runner.invoke(args=["attachments", "import-files"])
    assert resumed.exit_code == 0 and "1 attachment(s) moved" in resumed.output, resumed.output
    assert not second_path.exists() and counts() == (2, 4)
    again = runner.invoke(args=["attachments", "import-files"])
    assert again.exit_code == 0 and "0 attachment(s) moved" in again.output, "a second run moves nothing"
    # A file left behind by a run cut off between its commit and the removal: removed, not moved again.
    first_path.write_bytes(b"left over")
    leftover = runner.invoke(args=["attachments", "import-files"])
    assert "0 attachment(s) moved" in leftover.output and "1 leftover file(s)" in leftover.output
    assert not first_path.exists() and counts() == (2, 4)

    assert asd.get(f"/referrals/{referral_id}/attachments/{first}").data == BIG_PDF
    assert asd.get(f"/referrals/{referral_id}/attachments/{second}").data == small


def test_an_attachment_not_yet_imported_gets_a_german_message(world, app):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    attachment_id, _ = old_style_file(app, referral, world, b"%PDF-1.4 alt")
    page = signed_in(app, world.asd.fs_uniquifier).get(
        f"/referrals/{referral.id}/attachments/{attachment_id}", follow_redirects=True
    )
    assert page.status_code == 200 and "kann gerade nicht geöffnet werden" in page.get_data(as_text=True)


def test_removing_an_attachment_from_a_draft_removes_its_content(teacher, draft_id, app):  # noqa: F811
    upload_with_draft(teacher, draft_id, "befund.pdf", BIG_PDF)
    attachment_id = db.session.scalars(select(Attachment.id)).one()
    assert counts() == (1, 3)
    response = teacher.post(f"/referrals/{draft_id}/attachments/{attachment_id}/delete", data={"confirmed": "yes"})
    assert response.status_code == 302
    assert counts() == (0, 0)
