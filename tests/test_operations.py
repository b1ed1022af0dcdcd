"""Operations check, change, record and flush; they never commit or roll back (the caller decides)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from referral.accounts import operations as accounts
from referral.audit import chain
from referral.audit.models import AuditEntry
from referral.extensions import db
from referral.organisation import operations as organisation
from referral.organisation.models import District


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_an_operation_leaves_the_commit_to_its_caller(world):
    operator = accounts.Actor.operator()
    accounts.deactivate(operator, world.teacher)
    organisation.save_district(
        operator,
        None,
        name="Sodingen",
        code="SO",
        duty_phone="02323 333",
        duty_hours="",
        inbox_email="",
        model_project=False,
    )
    organisation.set_deadlines(
        operator,
        {
            "ack_acute_hours": 4,
            "ack_working_days": 1,
            "feedback_working_days": 15,
            "consultation_accept_working_days": 2,
            "retention_days": 180,
            "draft_retention_days": 90,
        },
    )
    pending = [entry.action for entry, _ in db.session.info[chain.PENDING]]
    assert pending == ["user.deactivate", "district.create", "settings.update"], "recorded in the caller's transaction"
    assert count(AuditEntry) == 0, "the entries join the chain only when the caller commits"
    db.session.rollback()
    db.session.expire_all()
    assert world.teacher.active and count(AuditEntry) == 0 and chain.PENDING not in db.session.info
    assert db.session.scalar(select(District).where(District.name == "Sodingen")) is None


def test_only_an_admin_acts_through_the_pages(world):
    with pytest.raises(PermissionError):
        accounts.Actor.admin(world.teacher)
    assert accounts.Actor.admin(world.admin).role == "admin"


def test_the_rules_are_in_the_operation_not_in_the_view(world):
    admin = accounts.Actor.admin(world.admin)
    with pytest.raises(accounts.Refused):
        accounts.deactivate(admin, world.admin)
    with pytest.raises(accounts.Refused):
        accounts.end_sessions(admin, world.admin)
    with pytest.raises(accounts.Refused):
        accounts.remove_membership(admin, world.admin, world.admin.memberships[0])
    with pytest.raises(accounts.AccountError):
        accounts.add_membership(admin, world.teacher, accounts.Role.ASD_WORKER, school=world.schools["a"])
    assert count(AuditEntry) == 0


def test_a_taken_name_is_refused_with_the_field_it_belongs_to(world):
    operator = accounts.Actor.operator()
    with pytest.raises(organisation.Taken) as taken:
        organisation.save_district(
            operator,
            None,
            name="Wanne-Eickel",
            code="WE",
            duty_phone="02325 111",
            duty_hours="",
            inbox_email="",
            model_project=False,
        )
    assert set(taken.value.errors) == {"name", "code"}
    assert count(AuditEntry) == 0


def test_the_chain_takes_the_entries_at_commit_in_the_order_recorded(world):
    operator = accounts.Actor.operator()
    before = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
    accounts.deactivate(operator, world.teacher)
    accounts.reactivate(operator, world.teacher)
    db.session.commit()
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["user.deactivate", "user.reactivate"]
    assert chain.seal_pending() >= 2 and chain.verify().ok


def test_entries_of_a_rolled_back_savepoint_are_dropped(world):
    operator = accounts.Actor.operator()
    before = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
    accounts.deactivate(operator, world.teacher)
    savepoint = db.session.begin_nested()
    accounts.reactivate(operator, world.teacher)
    savepoint.rollback()
    db.session.commit()
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.id > before)).all()
    assert actions == ["user.deactivate"]
