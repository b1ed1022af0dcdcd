"""The request commits (issue 12): views and operations never do. A request that succeeded commits once,
at its end; a failed one stores nothing but the record of a refusal; the "viewed" entry is written before
the page is rendered, and no lock is held while it renders."""

from __future__ import annotations

import ast
from pathlib import Path

from flask import before_render_template
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from referral.audit import chain
from referral.audit.models import AuditEntry
from referral.cases.models import Referral
from referral.cases.process import RULES, Action, State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories
from .conftest import csrf_token

PACKAGE = Path(__file__).resolve().parent.parent / "referral"
# Where a unit of work ends outside a request: the request lifecycle itself, CLI commands, workers.
MAY_COMMIT = {
    "lifecycle.py",  # the request's one commit
    "cli.py",  # CLI commands, per unit of work
    "keys.py",  # `flask keys rotate`, per batch
    "generator.py",  # `flask demo generate`, per batch
    "retention.py",  # the retention job (CLI and worker), per referral
    "cases/file_import.py",  # `flask attachments import-files`, per attachment
    "notifications/delivery.py",  # the delivery worker, per mail
    "notifications/reminders.py",  # the reminder job, per run
    "jobs/schedule.py",  # `flask worker`: the claim of a daily job, then its record
    "api/cli.py",  # `flask api-clients`, per command
    "evaluation/routes.py",  # `flask evaluation refresh`, once
    "api/webhooks.py",  # the webhook delivery worker, per delivery; "feedback due soon" (daily job), per referral
}


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]


def test_only_the_lifecycle_the_cli_and_the_workers_commit():
    found = {
        str(path.relative_to(PACKAGE)): lines for path in sorted(PACKAGE.rglob("*.py")) if (lines := _commits(path))
    }
    assert found, "the scan finds the lifecycle's own commit"
    assert "lifecycle.py" in found
    assert set(found) <= MAY_COMMIT, {name: lines for name, lines in found.items() if name not in MAY_COMMIT}


def test_a_view_that_fails_after_changing_stores_nothing(world, as_user, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def changed_then_broken(referral, actor, **kwargs):
        referral.acknowledged_at = utcnow()
        referral.state = State.ACKNOWLEDGED
        db.session.flush()
        raise RuntimeError("broken after the change")

    monkeypatch.setattr(factories.services, "acknowledge", changed_then_broken)
    asd = as_user(world.asd)
    response = asd.post(f"/referrals/{referral.id}/acknowledge", data={"csrf_token": csrf_token(asd, "/inbox")})
    assert response.status_code == 500
    assert "Ihre Eingaben wurden nicht gespeichert" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED


def test_a_form_that_comes_back_stores_only_that_it_was_seen(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    teacher = as_user(world.teacher)
    token = csrf_token(teacher, f"/referrals/{referral.id}")
    seen_before = _count("referral.view", referral.id)
    response = teacher.post(f"/referrals/{referral.id}/addendum", data={"csrf_token": token, "addendum-body": ""})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED
    assert _count("referral.view", referral.id) == seen_before + 1
    assert _count("referral.addendum", referral.id) == 0


def test_an_action_lost_at_the_commit_is_a_german_409_and_not_reported_as_done(world, as_user, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    acknowledge = factories.services.acknowledge

    def acknowledged_but_to_be_lost(referral, actor, **kwargs):
        acknowledge(referral, actor, **kwargs)
        db.session.info["lose_at_commit"] = True

    monkeypatch.setattr(factories.services, "acknowledge", acknowledged_but_to_be_lost)
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    asd = as_user(world.asd)
    token = csrf_token(asd, "/inbox")

    def lose(session):
        if session.info.pop("lose_at_commit", False):
            raise StaleDataError("another request changed the referral first")

    event.listen(Session, "before_commit", lose)
    try:
        response = asd.post(f"/referrals/{referral.id}/acknowledge", data={"csrf_token": token})
    finally:
        event.remove(Session, "before_commit", lose)
    text_ = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Gleichzeitig wurde dieselbe Sache an anderer Stelle bearbeitet" in text_
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED
    page = asd.get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert RULES[Action.ACKNOWLEDGE].done not in page  # the success message of the lost action was dropped


def test_the_view_is_recorded_before_rendering_and_no_lock_is_held_while_rendering(world, as_user, app):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    seen: list[tuple[list[str], bool]] = []
    other = create_engine(db.engine.url, poolclass=None) if db.engine.dialect.name == "postgresql" else None

    def while_rendering(sender, template, context, **extra):
        pending = [entry.action for entry, _ in db.session.info.get(chain.PENDING, [])]
        head_free = True
        if other is not None:  # another app server may append to the chain meanwhile
            with other.connect() as connection:
                try:
                    connection.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT"))
                except Exception:  # noqa: BLE001 - LockNotAvailable: the head row is locked
                    head_free = False
                connection.rollback()
        seen.append((pending, head_free))

    before_render_template.connect(while_rendering, app)
    try:
        response = as_user(world.asd).get(f"/referrals/{referral.id}")
    finally:
        before_render_template.disconnect(while_rendering, app)
        if other is not None:
            other.dispose()
    assert response.status_code == 200
    assert seen and seen[0] == (["referral.view"], True)
    assert _count("referral.view", referral.id) == 1  # and it reached the chain at the commit
    assert chain.verify().ok


def _count(action: str, referral_id: int) -> int:
    return len(
        db.session.scalars(
            select(AuditEntry.id).where(AuditEntry.action == action, AuditEntry.object_id == str(referral_id))
        ).all()
    )
