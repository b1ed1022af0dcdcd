"""Encryption at rest, key rotation, and finding earlier referrals about the same child."""

from __future__ import annotations

import contextvars
from datetime import date

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from referral import create_app
from referral.cases.models import Referral
from referral.cases.process import State
from referral.crypto import child_key, normalise_name
from referral.extensions import db
from referral.keys import encrypted_columns
from referral.surveys.models import SurveyComment

from . import factories
from .conftest import FreshContextClient

OBSERVATION = "Zeigt blaue Flecken am Oberarm und möchte nicht nach Hause"
MESSAGE = "Bitte rufen Sie die Klassenlehrerin Frau Quendel zurück"
PHOTO_BYTES = b"%PDF-1.4 Geheime Anlage Quastenflosser"


def raw_database() -> str:
    """Every row of every table as the database holds it, without the app's decryption."""
    parts = []
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table.name}"))]
    return "\n".join(parts)


def invoke(app, *args):
    """The command as an operator runs it: in its own process context, not inside the test's app."""
    return contextvars.Context().run(app.test_cli_runner().invoke, args=list(args))


def make_case(world, **draft):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd, **draft)
    referral.observation = OBSERVATION
    factories.services.ask(referral, world.asd, MESSAGE)
    factories.services.add_attachment(referral, world.teacher, "Quastenflosser_Befund.pdf", PHOTO_BYTES)
    db.session.commit()
    return referral


def test_no_name_text_or_attachment_in_clear(app, world, as_user):
    referral = make_case(world)
    raw = raw_database()
    for secret in (
        factories.CHILD_FIRST,
        factories.CHILD_LAST,
        "Quastenflosser",
        OBSERVATION[:30],
        MESSAGE[:30],
        referral.child_birth_date.isoformat(),
    ):
        assert secret not in raw, secret
    chunks = [bytes(c) for c in db.session.execute(text("SELECT data FROM attachment_chunk")).scalars()]
    assert chunks and all(b"Quastenflosser" not in c and b"%PDF" not in c for c in chunks)
    # … and the people who may read it see it all.
    page = as_user(world.asd).get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert factories.CHILD_LAST in page and OBSERVATION in page and MESSAGE in page
    download = as_user(world.asd).get(f"/referrals/{referral.id}/attachments/{referral.attachments[0].id}")
    assert download.data == PHOTO_BYTES


def test_every_identity_and_free_text_column_is_encrypted():
    expected = {
        ("referral", c)
        for c in (
            "child_first_name",
            "child_last_name",
            "child_birth_date",
            "child_address",
            "observation",
            "child_words",
            "observed_by",
            "observation_source",
            "affected_informed_reason",
            "phone_call_with",
        )
    }
    expected |= {("person", c) for c in ("first_name", "last_name", "address", "phone")}
    expected |= {
        ("message", "body"),
        ("attachment", "filename"),
        ("school_action", "reason"),
        ("school_action", "detail"),
        ("assessment", "other_specialists"),
        ("feedback", "affected_informed_reason"),
        ("state_change", "reason"),
    }
    assert expected <= set(encrypted_columns())


@pytest.mark.parametrize("spelling", ["Müller", "Mueller", "MÜLLER", "  müller ", "MUELLER"])
def test_names_are_normalised_for_the_keyed_hash(app, spelling):
    assert normalise_name(spelling) == "mueller"
    born = date(2017, 5, 14)
    assert child_key(spelling, "Jürgen", born) == child_key("Müller", "JUERGEN", born)
    assert child_key(spelling, "Jürgen", born) != child_key("Müller", "Jürgen", date(2017, 5, 15))


def test_the_asd_sees_earlier_referrals_about_the_same_child_in_its_district(world, as_user):
    first = factories.referral_in(State.CLOSED, world.teacher, world.asd)
    again = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    again.child_last_name = factories.CHILD_LAST.upper()  # another spelling, same child
    again.child_key = child_key(again.child_last_name, again.child_first_name, again.child_birth_date)
    other_child = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    other_child.child_first_name = "Anderes"
    other_child.child_key = child_key(other_child.child_last_name, "Anderes", other_child.child_birth_date)
    elsewhere = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm)
    db.session.commit()
    assert first.child_key and first.child_key == elsewhere.child_key == again.child_key

    page = as_user(world.asd).get(f"/referrals/{again.id}").get_data(as_text=True)
    section = page.split('id="fruehere"')[1].split("</section>")[0]
    assert first.number in section and other_child.number not in section
    assert elsewhere.number not in section, "only the own district"
    school_page = as_user(world.teacher).get(f"/referrals/{again.id}").get_data(as_text=True)
    assert 'id="fruehere"' not in school_page, "the school does not see the ASD's earlier cases"
    assert factories.CHILD_LAST not in str(db.session.execute(text("SELECT child_key FROM referral")).all())


def test_key_rotation_re_encrypts_everything_and_can_be_rerun(app, world, database_url, tmp_path):
    referral = make_case(world)
    referral_id = referral.id
    # The survey's free text has random text keys, not numbers: walked in batches of 2 as well.
    comments = [f"Anmerkung {i}" for i in range(3)]
    db.session.add_all(SurveyComment(quarter="2026-Q4", district_id=world.districts["we"].id, body=c) for c in comments)
    db.session.commit()
    old_key = app.config["REFERRAL_DATA_KEYS"]
    new_key = Fernet.generate_key().decode()
    before = db.session.execute(text("SELECT observation FROM referral WHERE id = :id"), {"id": referral_id}).scalar()

    def instance(keys: str):
        other = create_app(
            overrides={
                "TESTING": True,
                "UPLOAD_FOLDER": app.config["UPLOAD_FOLDER"],
                "SESSION_FILE_DIR": str(tmp_path / "s"),
                "MAIL_BACKEND": "locmem",
            },
            env={"DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"], "REFERRAL_DATA_KEYS": keys},
        )
        other.test_client_class = FreshContextClient
        return other

    both = instance(f"{new_key},{old_key}")
    first = invoke(both, "keys", "rotate", "--batch", "2")
    assert first.exit_code == 0 and "Re-encrypted" in first.output, first.output
    second = invoke(both, "keys", "rotate")
    assert "Re-encrypted 0 values and 0 attachment chunks; 0 repeat-detection keys" in second.output, (
        "a re-run finds nothing to do"
    )

    db.session.expire_all()
    after = db.session.execute(
        text("SELECT observation, child_key FROM referral WHERE id = :id"), {"id": referral_id}
    ).one()
    assert after[0] != before and Fernet(new_key.encode()).decrypt(after[0].encode()).decode() == OBSERVATION
    only_new = instance(new_key)
    with only_new.app_context():
        stored = db.session.get(Referral, referral_id)
        assert stored.observation == OBSERVATION and stored.messages[0].body == MESSAGE
        assert stored.child_key == child_key(factories.CHILD_LAST, factories.CHILD_FIRST, stored.child_birth_date)
        from referral.cases.services import attachment_bytes

        assert attachment_bytes(stored.attachments[0]) == PHOTO_BYTES
        assert sorted(db.session.scalars(select(SurveyComment.body))) == comments
        db.session.remove()


def test_an_interrupted_rotation_is_finished_by_running_it_again(app, world, database_url, tmp_path, monkeypatch):
    for _ in range(3):
        make_case(world)
    old_key = app.config["REFERRAL_DATA_KEYS"]
    new_key = Fernet.generate_key().decode()
    other = create_app(
        overrides={
            "TESTING": True,
            "UPLOAD_FOLDER": app.config["UPLOAD_FOLDER"],
            "SESSION_FILE_DIR": str(tmp_path / "s"),
            "MAIL_BACKEND": "locmem",
        },
        env={
            "DATABASE_URL": database_url,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "REFERRAL_DATA_KEYS": f"{new_key},{old_key}",
        },
    )
    import referral.keys as keys

    calls = {"n": 0}
    real = keys._rotate_attachments

    def crash(vault):
        calls["n"] += 1
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(keys, "_rotate_attachments", crash)
    interrupted = invoke(other, "keys", "rotate", "--batch", "1")
    assert interrupted.exit_code != 0 and calls["n"] == 1
    monkeypatch.setattr(keys, "_rotate_attachments", real)
    resumed = invoke(other, "keys", "rotate")
    assert resumed.exit_code == 0 and "Re-encrypted 0 values and 3 attachment chunks" in resumed.output, resumed.output
    with other.app_context():
        tokens = db.session.execute(text("SELECT body FROM message")).scalars().all()
        assert all(Fernet(new_key.encode()).decrypt(t.encode()) for t in tokens)
        db.session.remove()


def test_production_refuses_to_start_without_a_data_key():
    from referral.config import ConfigError

    with pytest.raises(ConfigError, match="REFERRAL_DATA_KEYS"):
        create_app(
            env={
                "REFERRAL_ENV": "production",
                "SECRET_KEY": "k" * 48,
                "DATABASE_URL": "postgresql://db/x",
                "SERVER_NAME": "referral.example",
            }
        )
    with pytest.raises(ConfigError, match="not a Fernet key"):
        create_app(
            env={
                "REFERRAL_ENV": "production",
                "SECRET_KEY": "k" * 48,
                "DATABASE_URL": "postgresql://db/x",
                "SERVER_NAME": "referral.example",
                "REFERRAL_DATA_KEYS": "geheim",
            }
        )
