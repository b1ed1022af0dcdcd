"""The restore drill: data in every state with attachments, `flask backup create`, `flask backup
restore` into a new database, and the restored database is whole (audit chain, counts, decryption
with the same keys, the app serving it). On SQLite, and on PostgreSQL when TEST_DATABASE_URL names one
(the restore target is a second database, created and dropped here)."""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from referral import backup, create_app
from referral.accounts.models import User
from referral.cases import models as case_models
from referral.cases import services
from referral.cases.models import Attachment, Referral
from referral.cases.process import State
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState
from referral.extensions import db
from referral.workflow.errors import ProcessError

from . import factories
from .conftest import FreshContextClient, _admin, _quoted
from .servers import SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent


def invoke(app, *args: str):
    """A `flask` command of `app`, outside the test's app context (as its own process would run it)."""
    result = contextvars.Context().run(app.test_cli_runner().invoke, args=list(args))
    return result


@pytest.fixture
def target_url(database_url, tmp_path):
    """A new, empty database for the restore: an SQLite file, or a second PostgreSQL database."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    url = make_url(database_url)
    name = _quoted(f"{url.database}_restored")
    _admin(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    yield url.set(database=f"{url.database}_restored").render_as_string(hide_password=False)
    _admin(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def app_on(url: str, uploads: Path, keys: str, root: Path):
    """A new app object on the restored database, with the same data keys and nothing else shared."""
    app = create_app(
        overrides={
            "TESTING": True,
            "UPLOAD_FOLDER": str(uploads),
            "SERVER_NAME": "localhost",
            "SESSION_FILE_DIR": str(root / "restored-sessions"),
            "MAIL_BACKEND": "locmem",
        },
        env={"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "REFERRAL_DATA_KEYS": keys},
    )
    app.test_client_class = FreshContextClient
    return app


def cases_in_every_state(world) -> dict:
    """Referrals in every state (attachments where the school may still add them) and consultations in
    every state; returns what the restored database must give back in clear."""
    for state in State:
        referral = factories.referral_in(state, world.teacher, world.asd, last=f"Sicherung-{state.value}")
        try:
            services.add_attachment(referral, world.teacher, f"{state.value}.pdf", f"%PDF-1.4 {state.value}".encode())
            db.session.commit()
        except ProcessError:
            db.session.rollback()
    for state in ConsultationState:
        factories.consultation_in(state, world.teacher, world.insofa, observations=f"Beratung {state.value}")
    referrals = {r.id: (r.state, r.child_last_name, r.observation) for r in db.session.scalars(select(Referral))}
    attachments = {a.id: (a.filename, services.attachment_bytes(a)) for a in db.session.scalars(select(Attachment))}
    consultations = {c.id: (c.state, c.observations) for c in db.session.scalars(select(Consultation))}
    assert {state for state, *_ in referrals.values()} == set(State)
    assert {state for state, _ in consultations.values()} == set(ConsultationState)
    assert len(attachments) >= 3
    return {"referrals": referrals, "attachments": attachments, "consultations": consultations}


def test_restore_drill(app, world, target_url, tmp_path):
    expected = cases_in_every_state(world)
    keys = app.config["REFERRAL_DATA_KEYS"]
    db.session.remove()

    made = invoke(app, "backup", "create", str(tmp_path / "backup"))
    assert made.exit_code == 0, made.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["tables"]["referral"] == len(State)
    assert manifest["tables"]["attachment"] == len(expected["attachments"])
    assert manifest["audit_head"]["seq"] > 0 and manifest["schema_revision"]
    assert keys not in (tmp_path / "backup" / "manifest.json").read_text()  # the keys are never in a backup

    restored = app_on(target_url, tmp_path / "restored-uploads", keys, tmp_path)
    try:
        result = invoke(restored, "backup", "restore", str(tmp_path / "backup"))
        assert result.exit_code == 0, result.output
        assert "matches the manifest" in result.output
        verified = invoke(restored, "audit", "verify")
        assert verified.exit_code == 0 and "intact" in verified.output, verified.output

        with restored.app_context():
            assert backup.table_counts(db.session.connection()) == manifest["tables"]
            assert {
                r.id: (r.state, r.child_last_name, r.observation) for r in db.session.scalars(select(Referral))
            } == expected["referrals"]
            assert {
                a.id: (a.filename, services.attachment_bytes(a)) for a in db.session.scalars(select(Attachment))
            } == expected["attachments"]
            assert {c.id: (c.state, c.observations) for c in db.session.scalars(select(Consultation))} == expected[
                "consultations"
            ]
            asd = db.session.scalar(select(User).filter_by(email=factories.email_of("asd")))
            submitted = next(i for i, (state, *_) in expected["referrals"].items() if state is State.SUBMITTED)
            with_file = db.session.scalar(select(Attachment).filter_by(referral_id=submitted))
            uniquifier, file_id = asd.fs_uniquifier, with_file.id
            db.session.remove()

        client = restored.test_client()
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = uniquifier, True
        page = client.get(f"/referrals/{submitted}")
        assert page.status_code == 200
        assert "Sicherung-submitted" in page.get_data(as_text=True)
        download = client.get(f"/referrals/{submitted}/attachments/{file_id}")
        assert download.status_code == 200 and download.data == b"%PDF-1.4 submitted"
    finally:
        with restored.app_context():
            db.session.remove()
            db.engine.dispose()


def flask(app, *args: str) -> subprocess.CompletedProcess:
    """`flask …` as the operator runs it: its own process, configured by the environment."""
    env = {k: v for k, v in os.environ.items() if k not in {"REFERRAL_ENV", "FLASK_DEBUG"}}
    env.update(
        FLASK_APP="wsgi",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=SECRET_KEY,
        REFERRAL_DATA_KEYS=app.config["REFERRAL_DATA_KEYS"],
        UPLOAD_FOLDER=app.config["UPLOAD_FOLDER"],
    )
    return subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_restore_refuses_a_database_that_is_not_empty(app, world, tmp_path):
    factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    db.session.remove()
    made = flask(app, "backup", "create", str(tmp_path / "backup"))
    assert made.returncode == 0 and "Backup written to" in made.stdout, made.stderr

    # The test database itself: migrated and holding the world.
    result = flask(app, "backup", "restore", str(tmp_path / "backup"))
    assert result.returncode == 1
    assert "not empty" in result.stderr and "never over existing data" in result.stderr
    assert db.session.scalar(select(db.func.count(Referral.id))) == 1


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# While attachments are files in UPLOAD_FOLDER, the backup holds them next to the archive; once they
# live in the database (`attachment_chunk`), the archive's checksum covers them.
CHANGED = ["archive"] if hasattr(case_models, "AttachmentChunk") else ["archive", "attachment file"]


@pytest.mark.parametrize("changed", CHANGED)
def test_a_changed_backup_is_refused(app, world, target_url, tmp_path, changed):
    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    services.add_attachment(referral, world.teacher, "a.pdf", b"%PDF-1.4 a")
    db.session.commit()
    db.session.remove()
    assert invoke(app, "backup", "create", str(tmp_path / "backup")).exit_code == 0
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    if changed == "archive":
        _damage(tmp_path / "backup" / manifest["archive"]["file"])
    else:
        (stored,) = (tmp_path / "backup" / "uploads").iterdir()
        _damage(stored)

    restored = app_on(target_url, tmp_path / "restored-uploads", app.config["REFERRAL_DATA_KEYS"], tmp_path)
    try:
        result = invoke(restored, "backup", "restore", str(tmp_path / "backup"))
        assert result.exit_code == 1
        assert "changed or damaged" in result.output and "Nothing was restored" in result.output
        with restored.app_context():
            assert backup.table_counts(db.session.connection()) == {}  # the target stays empty
            db.session.remove()
        assert not (tmp_path / "restored-uploads").exists()
    finally:
        with restored.app_context():
            db.engine.dispose()


def test_a_backup_is_written_into_a_new_directory_only(app, world, tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "older").write_text("x")
    result = invoke(app, "backup", "create", str(tmp_path / "backup"))
    assert result.exit_code == 1 and "not empty" in result.output
    assert not (tmp_path / "backup.incomplete").exists()


def test_a_missing_pg_dump_of_the_servers_version_is_named():
    with pytest.raises(backup.BackupError, match=r"postgresql-client-99"):
        backup.pg_tool("pg_dump", 99)
