"""How long `flask keys rotate` takes for a number of referrals.

    .venv/bin/python benchmarks/key_rotation.py [REFERRALS]
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/keybench .venv/bin/python benchmarks/key_rotation.py 50000

Creates REFERRALS (default 10,000) referrals with encrypted identity, text, a parent and a message
under key A, then re-encrypts everything under a new key B, and reports the time, the number of
values re-encrypted and values per second. The database is a fresh SQLite file in a temporary
directory, or the EMPTY database DATABASE_URL names (create it first, e.g. `createdb keybench`;
the benchmark migrates it and leaves its rows behind: drop it afterwards).
"""

from __future__ import annotations

import contextvars
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from referral import create_app  # noqa: E402
from referral.accounts.models import Membership, Role, User  # noqa: E402
from referral.cases.models import Message, Person, Referral  # noqa: E402
from referral.cases.process import State  # noqa: E402
from referral.cases.vocabulary import MessageKind, PersonKind  # noqa: E402
from referral.extensions import db  # noqa: E402
from referral.keys import rotate  # noqa: E402
from referral.organisation.models import District, School  # noqa: E402


def app_for(tmp: str, keys: str):
    return create_app(
        overrides={"TESTING": True, "SESSION_FILE_DIR": f"{tmp}/s", "UPLOAD_FOLDER": f"{tmp}/u"},
        env={
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.db",
            "SECRET_KEY": "bench-" + "x" * 40,
            "REFERRAL_DATA_KEYS": keys,
        },
    )


def fill(count: int) -> None:
    district = District(code="BM", name="Benchmark", duty_phone="0123 456789")
    school = School(name="Benchmark-Schule", district=district)
    author = User(email="b@bench.example", name="Bench", password=None)
    author.memberships.append(Membership(role=Role.TEACHER, school=school))
    db.session.add_all([district, school, author])
    db.session.flush()
    for i in range(count):
        referral = Referral(
            state=State.DRAFT,
            school=school,
            district=district,
            author=author,
            child_first_name=f"Kind{i}",
            child_last_name="Beispiel",
            child_birth_date=date(2017, 1, 1 + i % 28),
            child_address="Musterweg 1",
            observation="Beobachtung " * 20,
            child_words="Satz des Kindes",
        )
        referral.persons.append(Person(kind=PersonKind.MOTHER, position=0, first_name="Mutter", last_name="Beispiel"))
        db.session.add(referral)
        db.session.add(Message(referral=referral, kind=MessageKind.ADDENDUM, body="Nachtrag " * 10, author=author))
        if i % 1000 == 999:
            db.session.commit()
            db.session.expunge_all()
            school, author = db.session.merge(school), db.session.merge(author)
            district = school.district
    db.session.commit()


def main(count: int) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp:
        first = app_for(tmp, old)
        with first.app_context():
            upgrade()
            fill(count)
            db.session.remove()
        second = app_for(tmp, f"{new},{old}")

        def run():
            with second.app_context():
                start = time.perf_counter()
                counts = rotate(report=lambda line: None)
                return time.perf_counter() - start, counts

        seconds, counts = contextvars.Context().run(run)
        database = second.config["SQLALCHEMY_DATABASE_URI"].split("://")[0]
        print(
            f"keys rotate ({database}): {count} referrals, {counts['values']} values re-encrypted in {seconds:.1f} s "
            f"({counts['values'] / seconds:,.0f} values/s; {counts['match_keys']} repeat-detection keys)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
