"""`flask demo generate` writes the audit log the app would have written: each referral's changes by
the person who made them (role and scope of the membership used), views, the consultations' steps,
in time order, hashed and sealed so that `flask audit verify` passes."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from referral.accounts.models import Membership
from referral.audit.models import AuditEntry
from referral.cases.models import Message, Referral, StateChange
from referral.cases.process import Action
from referral.cases.vocabulary import MessageKind
from referral.extensions import db


def test_generated_referrals_come_with_their_audit_entries_in_time_order_and_sealed(app, runner, world):
    before = db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))
    result = runner.invoke(args=["demo", "generate", "--referrals", "300", "--districts", "2", "--schools", "2"])
    assert result.exit_code == 0, result.output
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id)).all()
    actions = Counter(entry.action for entry in entries)
    referrals = db.session.scalar(select(func.count()).select_from(Referral))
    assert 4 * referrals <= len(entries) <= 10 * referrals, "about five entries a referral"
    changes = db.session.execute(select(StateChange.action, func.count()).group_by(StateChange.action)).all()
    for action, count in changes:
        if action is not Action.ASK:  # the generator's questions are messages, most without a state change
            assert actions[f"referral.{action.value}"] == count, f"one entry per {action.value}"
    questions = db.session.scalar(select(func.count()).select_from(Message).where(Message.kind == MessageKind.QUESTION))
    asks = sum(count for action, count in changes if action is Action.ASK)
    assert actions["referral.ask"] >= max(questions, asks)
    assert actions["referral.view"] and actions["consultation.request"] and actions["consultation.answer"]
    times = [entry.at for entry in entries]
    assert times == sorted(times), "the log's order (ids) is the order of time"

    scope = {m.user_id: m for m in db.session.scalars(select(Membership))}
    by_id = {r.id: r for r in db.session.scalars(select(Referral))}
    for entry in entries:
        if entry.action == "referral.submit":
            referral = by_id[int(entry.object_id)]
            assert entry.actor_id == referral.author_id and entry.actor_role in ("teacher", "school_lead")
            assert entry.actor_scope == referral.school.name and entry.school_id == referral.school_id
        elif entry.action in ("referral.acknowledge", "referral.take_over", "referral.close"):
            referral = by_id[int(entry.object_id)]
            membership = scope[entry.actor_id]
            assert entry.actor_role in ("asd_lead", "asd_worker") and entry.actor_role == membership.role.value
            assert membership.district_id == referral.district_id == entry.district_id
            if entry.action == "referral.take_over":
                assert entry.actor_id == referral.assignee_id
    transfers = db.session.scalars(select(StateChange).where(StateChange.action == Action.TRANSFER)).all()
    assert {str(t.referral_id) for t in transfers} <= {e.object_id for e in entries if e.action == "referral.transfer"}

    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and "0 not yet sealed" in verified.output, verified.output
