"""Data migrations move data as they did when they were written (SecureDrop's migration tests are
the model): migrate to the revision before, insert rows of the old shape with plain SQL, migrate up,
check the rows; then down again where the migration supports it. On the test database of the run
(SQLite, or PostgreSQL with TEST_DATABASE_URL), through the app's own Alembic set-up.

Migrations carry frozen copies of the code they need; they never import the app (checked below).
"""

from __future__ import annotations

import ast
from datetime import date, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, inspect, text

from referral.crypto import child_key, vault
from referral.extensions import db

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"

BEFORE_ENCRYPTION, ENCRYPTION = "6bf770646a58", "7068a0d13c8a"
BEFORE_DURATIONS, DURATIONS = "d60e0959e2bc", "5383638ca325"


@pytest.fixture
def migrations(app):
    """The test database at an older revision for the test, and back at the newest afterwards
    (rebuilt from nothing should the test have left it half-migrated)."""
    yield
    db.session.remove()
    try:
        upgrade()
    except Exception:
        downgrade(revision="base")
        upgrade()


def _insert(connection, table: str, **values) -> int:
    """One row of the table as it is at the current revision: the given values, and a plain value
    for every other required column (the old schema is read from the database, not the models)."""
    columns = Table(table, MetaData(), autoload_with=connection).columns
    row = dict(values)
    for column in columns:
        if column.name in row or column.nullable or column.server_default is not None or column.primary_key:
            continue
        kind = column.type.python_type
        row[column.name] = {
            bool: False,
            int: 0,
            datetime: datetime(2026, 1, 5, 9, 0),
            date: date(2026, 1, 5),
        }.get(kind, f"{table}-{column.name}"[: getattr(column.type, "length", None) or 200])
    names = ", ".join(f'"{name}"' for name in row)
    params = ", ".join(f":{name}" for name in row)
    result = connection.execute(text(f'INSERT INTO "{table}" ({names}) VALUES ({params}) RETURNING id'), row)
    return result.scalar_one()


def _value(table: str, column: str, row_id: int):
    with db.engine.connect() as connection:
        return connection.execute(text(f'SELECT "{column}" FROM "{table}" WHERE id = :id'), {"id": row_id}).scalar_one()


def _organisation(connection) -> tuple[int, int, int]:
    district = _insert(connection, "district", code="MIG", name="Migrationsbezirk")
    school = _insert(connection, "school", name="Grundschule Alt", district_id=district)
    user = _insert(connection, "user_account", email="alt@example.org", fs_uniquifier="alt-user", active=True)
    return district, school, user


# --- Encryption at rest (7068a0d13c8a) ---------------------------------------------------------------

# The columns that revision encrypts, as it was written (independent of what the models say today).
CLEAR_TEXT = {
    "referral": {
        "child_first_name": "Jürgen",
        "child_last_name": "Müller",
        "child_address": "Altweg 1, 44135 Dortmund",
        "observed_by": "Frau Lehrerin",
        "observation_source": "Unterricht",
        "observation": "Blaue Flecken am Arm.",
        "child_words": "Papa war wütend.",
        "affected_informed_reason": "Gefährdet das Kind.",
        "phone_call_with": "Herr Dienst",
        "reporter_phone": "0231 12345",
        "reporter_reachable": "vormittags",
    },
    "person": {"first_name": "Erika", "last_name": "Müller", "address": "Altweg 1", "phone": "0231 55555"},
    "school_action": {"reason": "Eltern nicht erreichbar.", "detail": "Dreimal angerufen."},
    "message": {"body": "Gibt es Geschwister?"},
    "state_change": {"reason": "Zuständigkeit geklärt."},
    "attachment": {"filename": "zeichnung-mueller.pdf"},
    "assessment": {"other_specialists": "Frau Beraterin"},
    "feedback": {"affected_informed_reason": "Noch nicht möglich."},
}
BIRTH_DATE = date(2017, 5, 14)
FILE_BYTES = b"%PDF-1.4 Zeichnung"


def _rows_before_encryption(upload_folder: Path) -> dict[str, int]:
    ids = {}
    with db.engine.begin() as connection:
        district, school, user = _organisation(connection)
        ids["referral"] = referral = _insert(
            connection,
            "referral",
            state="draft",
            school_id=school,
            district_id=district,
            author_id=user,
            child_birth_date=BIRTH_DATE,
            **CLEAR_TEXT["referral"],
        )
        ids["person"] = _insert(connection, "person", referral_id=referral, kind="mother", **CLEAR_TEXT["person"])
        ids["school_action"] = _insert(
            connection, "school_action", referral_id=referral, kind="parents_talk", **CLEAR_TEXT["school_action"]
        )
        ids["message"] = _insert(
            connection, "message", referral_id=referral, kind="question", author_id=user, **CLEAR_TEXT["message"]
        )
        ids["state_change"] = _insert(
            connection,
            "state_change",
            referral_id=referral,
            action="edit",
            to_state="draft",
            actor_id=user,
            **CLEAR_TEXT["state_change"],
        )
        ids["attachment"] = _insert(
            connection,
            "attachment",
            referral_id=referral,
            content_type="application/pdf",
            size=len(FILE_BYTES),
            storage_key="old-file",
            uploaded_by_id=user,
            **CLEAR_TEXT["attachment"],
        )
        ids["assessment"] = _insert(
            connection,
            "assessment",
            referral_id=referral,
            result="latent",
            recorded_by_id=user,
            **CLEAR_TEXT["assessment"],
        )
        ids["feedback"] = _insert(
            connection,
            "feedback",
            referral_id=referral,
            affected_informed="no_other",
            given_by_id=user,
            **CLEAR_TEXT["feedback"],
        )
    upload_folder.mkdir(parents=True, exist_ok=True)
    (upload_folder / "old-file").write_bytes(FILE_BYTES)
    return ids


def test_the_encryption_migration_encrypts_existing_data_and_decrypts_it_on_the_way_down(app, migrations):
    folder = Path(app.config["UPLOAD_FOLDER"])
    downgrade(revision=BEFORE_ENCRYPTION)
    ids = _rows_before_encryption(folder)

    upgrade(revision=ENCRYPTION)
    readable = vault()  # the app's keys: what the migration wrote, the app must read
    for table, values in CLEAR_TEXT.items():
        for column, clear in values.items():
            stored = _value(table, column, ids[table])
            assert stored != clear and clear not in stored, (table, column)
            assert readable.decrypt(stored.encode()).decode() == clear, (table, column)
    born = _value("referral", "child_birth_date", ids["referral"])
    assert readable.decrypt(born.encode()).decode() == "2017-05-14"
    assert _value("referral", "child_key", ids["referral"]) == child_key("Mueller", "jürgen", BIRTH_DATE), (
        "the app finds the child under the keyed hash the migration stored"
    )
    stored_file = (folder / "old-file").read_bytes()
    assert FILE_BYTES not in stored_file and readable.decrypt(stored_file) == FILE_BYTES

    downgrade(revision=BEFORE_ENCRYPTION)
    for table, values in CLEAR_TEXT.items():
        for column, clear in values.items():
            assert _value(table, column, ids[table]) == clear, (table, column)
    assert str(_value("referral", "child_birth_date", ids["referral"])) == "2017-05-14"
    assert "child_key" not in {c["name"] for c in inspect(db.engine).get_columns("referral")}
    assert (folder / "old-file").read_bytes() == FILE_BYTES


def test_the_encryption_migration_uses_the_newest_key_of_several(app, migrations):
    """With a rotated key list, the migration encrypts under the first (newest) key, as the app does."""
    newest = Fernet.generate_key().decode()
    older = app.config["REFERRAL_DATA_KEYS"]
    downgrade(revision=BEFORE_ENCRYPTION)
    ids = _rows_before_encryption(Path(app.config["UPLOAD_FOLDER"]))
    app.config["REFERRAL_DATA_KEYS"] = f"{newest},{older}"
    upgrade(revision=ENCRYPTION)
    stored = _value("person", "last_name", ids["person"])
    assert Fernet(newest.encode()).decrypt(stored.encode()) == "Müller".encode()
    with pytest.raises(InvalidToken):
        Fernet(older.split(",")[0].encode()).decrypt(stored.encode())


# --- Durations for the evaluation (5383638ca325) -----------------------------------------------------


def _referral_with_times(connection, district, school, user, number, **times) -> int:
    return _insert(
        connection,
        "referral",
        state="feedback_given",
        number=number,
        urgency="urgent",
        school_id=school,
        district_id=district,
        author_id=user,
        assignee_id=user,
        acknowledge_due_at=datetime(2027, 1, 1),
        **times,
    )


def test_the_durations_migration_computes_the_durations_of_existing_referrals(app, migrations):
    downgrade(revision=BEFORE_DURATIONS)
    with db.engine.begin() as connection:
        district, school, user = _organisation(connection)
        # Thursday 24 December 10:00 (local) to Monday 28 December 10:00: Christmas Day (a Friday) and
        # the weekend are not working time, Christmas Eve is. The feedback runs over the night in March
        # when the clocks go forward: Friday 13:00 CET to Monday 14:00 CEST.
        christmas = _referral_with_times(
            connection,
            district,
            school,
            user,
            "MIG-2026-0001",
            received_at=datetime(2026, 12, 24, 9, 0),
            acknowledged_at=datetime(2026, 12, 28, 9, 0),
            submitted_at=datetime(2026, 3, 27, 12, 0),
            feedback_at=datetime(2026, 3, 30, 12, 0),
        )
        backwards = _referral_with_times(
            connection,
            district,
            school,
            user,
            "MIG-2026-0002",
            received_at=datetime(2026, 6, 2, 9, 0),
            acknowledged_at=datetime(2026, 6, 2, 8, 0),  # clocks of two machines: never a negative duration
            submitted_at=datetime(2026, 6, 1, 9, 0),
            feedback_at=datetime(2026, 6, 1, 9, 0),
        )
        untouched = _insert(
            connection, "referral", state="draft", school_id=school, district_id=district, author_id=user
        )

    upgrade(revision=DURATIONS)
    durations = ("ack_minutes", "ack_working_minutes", "feedback_minutes", "feedback_working_minutes")

    def stored(row_id):
        return tuple(_value("referral", column, row_id) for column in durations)

    assert stored(christmas) == (4 * 24 * 60, (14 + 10) * 60, 3 * 24 * 60, (11 + 14) * 60)
    assert stored(backwards) == (0, 0, 0, 0)
    assert stored(untouched) == (None, None, None, None)

    downgrade(revision=BEFORE_DURATIONS)
    assert not set(durations) & {c["name"] for c in inspect(db.engine).get_columns("referral")}
    assert _value("referral", "number", christmas) == "MIG-2026-0001", "the referrals themselves stay"


# --- Frozen: no migration imports the app --------------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
            "__import__",
            "import_module",
        }:
            found |= {arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)}
    return found


def test_no_migration_imports_the_app():
    """A migration carries frozen copies of what it needs: a later change to the app must not change
    what an old migration does."""
    files = sorted(VERSIONS.glob("*.py")) + [VERSIONS.parent / "env.py"]
    assert len(files) > 5
    offending = {
        path.name: sorted(m for m in _imported_modules(path) if m.split(".")[0] in {"referral", ""}) for path in files
    }
    assert {name: modules for name, modules in offending.items() if modules} == {}


def test_the_import_check_would_notice_an_import_of_the_app(tmp_path):
    """Control: the check above sees every way of writing the import."""
    migration = tmp_path / "m.py"
    migration.write_text(
        "def upgrade():\n"
        "    from referral.crypto import child_key\n"
        "    import referral.cases.deadlines\n"
        "    __import__('referral.timeutil')\n"
    )
    assert {"referral.crypto", "referral.cases.deadlines", "referral.timeutil"} <= _imported_modules(migration)


# --- Attachment content in the database (c3a9e5d20b71) ---------------------------------------------

BEFORE_CHUNKS = "5383638ca325"


def test_the_chunk_migration_goes_down_to_files_and_import_files_brings_them_back(app, world, runner, migrations):
    from referral.cases import services, storage
    from referral.cases.models import Attachment
    from referral.cases.process import State

    from . import factories

    content = b"%PDF-1.4 " + bytes(range(256)) * (storage.CHUNK_SIZE // 128)  # three chunks
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    attachment = services.add_attachment(referral, world.teacher, "befund.pdf", content)
    db.session.commit()
    attachment_id, key = attachment.id, attachment.storage_key
    db.session.remove()

    downgrade(revision=BEFORE_CHUNKS)
    file = Path(app.config["UPLOAD_FOLDER"]) / key
    assert vault().decrypt(file.read_bytes()) == content, "the content back in the folder, encrypted as before"
    assert "attachment_chunk" not in inspect(db.engine).get_table_names()

    upgrade()
    moved = runner.invoke(args=["attachments", "import-files"])
    assert moved.exit_code == 0 and "1 attachment(s) moved" in moved.output, moved.output
    assert not file.exists()
    assert storage.read(db.session.get(Attachment, attachment_id)) == content
