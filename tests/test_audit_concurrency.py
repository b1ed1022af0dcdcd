"""Appending to the audit log waits for no other transaction, and sealing never passes an entry
that may still commit.

PostgreSQL: transaction A holds an inserted, uncommitted entry; B records, inserts and commits at
once (a lock wait would hit B's short lock_timeout and fail the test instead of hanging it), and
the sealer does not seal B's entry past A's until A has ended.

SQLite allows one writer at a time for the whole database (any table, not the log specifically):
while A has inserted anything, B waits for A's commit. What the design gives there is that
recording takes no lock — entries wait in the session until the commit — so a request that has
recorded a view holds nothing while it renders; that is what is tested on SQLite.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select, text

from referral.audit import chain
from referral.audit.log import record
from referral.audit.models import AuditBlock, AuditEntry
from referral.extensions import db


def _record(object_id: str) -> None:
    record("settings.update", object_type="setting", object_id=object_id, role="admin", scope="Stadt")


def _b_commits(app, postgres: bool) -> tuple[float, list[str]]:
    """Transaction B on its own connection: record, commit; how long it took and any error."""
    errors: list[str] = []
    took = [0.0]

    def b():
        try:
            with app.app_context():
                started = time.perf_counter()
                if postgres:
                    db.session.execute(text("SET LOCAL lock_timeout = '500ms'"))
                    db.session.execute(text("SET LOCAL statement_timeout = '2s'"))
                _record("B")
                db.session.commit()
                took[0] = time.perf_counter() - started
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(repr(error))

    thread = threading.Thread(target=b)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "B hangs"
    return took[0], errors


def _entries() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry.object_id).order_by(AuditEntry.id)))


def _sealed() -> int:
    return int(db.session.scalar(select(db.func.coalesce(db.func.sum(AuditBlock.entries), 0))))


def test_appending_never_waits_for_another_transaction(app):
    postgres = db.engine.dialect.name == "postgresql"
    _record("A")
    db.session.execute(select(AuditEntry.id)).all()  # A reads, as a rendering page would
    if postgres:
        # What the commit does first: A's entry is inserted and has its id; A stays open.
        chain.write_pending(db.session)
        db.session.flush()
        a_id = db.session.scalar(select(AuditEntry.id).where(AuditEntry.object_id == "A"))
    took, errors = _b_commits(app, postgres)
    assert not errors, errors
    assert took < 1.5, f"B waited {took:.2f} s"
    if postgres:
        b_id = db.session.execute(text("SELECT id FROM audit_entry WHERE object_id = 'B'")).scalar_one()
        assert a_id < b_id, "A drew its id first"
    db.session.commit()
    assert sorted(_entries()) == ["A", "B"]
    assert chain.seal_pending() == 2 and chain.verify().ok


def test_an_entry_committed_late_is_never_left_outside_the_chain(app):
    """A draws the lower id but commits after B: the sealer waits for A (here: gives up after a
    short wait and seals nothing), then seals both in id order."""
    postgres = db.engine.dialect.name == "postgresql"
    if not postgres:
        # One writer at a time: an uncommitted insert holds the write lock, so B commits only after A
        # and gets the higher id; sealing what is committed is always safe.
        _record("A")
        db.session.commit()
        _, errors = _b_commits(app, postgres)
        assert not errors
        assert chain.seal_pending() == 2 and chain.verify().ok
        return
    _record("A")
    chain.write_pending(db.session)
    db.session.flush()
    _, errors = _b_commits(app, postgres)
    assert not errors
    assert chain.seal_pending(wait=0.3) == 0, "B's entry must not be sealed past A's open one"
    db.session.commit()
    assert chain.seal_pending() == 2 and _sealed() == 2 and chain.verify().ok


def test_an_id_given_up_by_a_rollback_leaves_a_gap_the_chain_accepts(app):
    postgres = db.engine.dialect.name == "postgresql"
    _record("A")
    if postgres:
        chain.write_pending(db.session)
        db.session.flush()
        _, errors = _b_commits(app, postgres)
        assert not errors
    db.session.rollback()
    if not postgres:
        _, errors = _b_commits(app, postgres)
        assert not errors
    assert _entries() == ["B"]
    assert chain.seal_pending() == 1 and chain.verify().ok
