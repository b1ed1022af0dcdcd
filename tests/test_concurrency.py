"""Two people acting on the same referral at once: exactly one succeeds, the other is told.

The requests really run in parallel, in two threads through the whole app, against the test
database (PostgreSQL in CI). A barrier on `process.action_checked` holds both requests at the point
where each has loaded the referral and found its action allowed, so both try to write.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from referral.cases import process, services
from referral.cases.models import Referral, StateChange
from referral.cases.process import Action, State
from referral.extensions import db

from . import factories


@pytest.fixture
def lockstep():
    """Call it once the set-up is done: from then on, two actions wait for each other after their checks."""
    receivers = []

    def arm():
        barrier = threading.Barrier(2, timeout=20)

        def wait(referral, action):
            barrier.wait()

        receivers.append(wait)
        process.action_checked.connect(wait)

    yield arm
    for receiver in receivers:
        process.action_checked.disconnect(receiver)


def run_in_parallel(*requests):
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(request) for request in requests]
        return [f.result(timeout=60) for f in futures]


def post(client, url, data=None):
    return lambda: client.post(url, data=data or {}, follow_redirects=True)


@pytest.fixture
def no_csrf(app):
    app.config["WTF_CSRF_ENABLED"] = False


def test_two_asd_staff_acknowledge_at_once(world, as_user, lockstep, no_csrf):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    url = f"/referrals/{referral.id}/acknowledge"
    lockstep()
    first, second = run_in_parallel(post(as_user(world.asd), url), post(as_user(world.asd2), url))

    pages = [first.get_data(as_text=True), second.get_data(as_text=True)]
    succeeded = [p for p in pages if RULES_DONE[Action.ACKNOWLEDGE] in p]
    refused = [p for p in pages if "gerade von einer anderen Person bearbeitet" in p]
    assert len(succeeded) == 1 and len(refused) == 1, pages
    assert "Aktueller Status: „Eingang bestätigt“" in refused[0]
    assert _count(referral.id, Action.ACKNOWLEDGE) == 1
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.ACKNOWLEDGED


def test_feedback_while_being_transferred(world, as_user, lockstep, no_csrf):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    factories.record_assessment(referral, world.asd, world.asd_lead)
    db.session.commit()
    feedback = {"indications_confirmed": "yes", "asd_became_active": "yes", "asd_still_active": "no",
                "contact_name": "Anna ASD", "contact_phone": "0234 1", "affected_informed": "yes",
                "affected_informed_on": "2026-11-06", "confirm": "y"}
    transfer = {"to_district": str(world.districts["hm"].id), "reason": "Eltern wohnen in Herne-Mitte"}
    lockstep()
    give, move = run_in_parallel(
        post(as_user(world.asd), f"/referrals/{referral.id}/feedback", feedback),
        post(as_user(world.asd_lead), f"/referrals/{referral.id}/transfer", transfer),
    )
    outcomes = {
        "feedback": RULES_DONE[Action.GIVE_FEEDBACK] in give.get_data(as_text=True),
        "transfer": RULES_DONE[Action.TRANSFER] in move.get_data(as_text=True),
    }
    assert sum(outcomes.values()) == 1, outcomes
    loser = move if outcomes["feedback"] else give
    assert "gerade von einer anderen Person bearbeitet" in loser.get_data(as_text=True)
    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    if outcomes["feedback"]:
        assert stored.state is State.FEEDBACK_GIVEN and stored.district_id == world.districts["we"].id
        assert _count(referral.id, Action.TRANSFER) == 0
    else:
        assert stored.state is State.SUBMITTED and stored.feedback is None
        assert _count(referral.id, Action.GIVE_FEEDBACK) == 0


def test_concurrent_submissions_get_distinct_consecutive_numbers(app, world):
    drafts = []
    for i in range(6):
        referral = factories.complete_draft(world.teacher, first=f"Kind{i}")
        services.save_draft(referral, world.teacher)
        drafts.append(referral.id)
    db.session.commit()
    teacher_id, user_class = world.teacher.id, type(world.teacher)
    start = threading.Barrier(len(drafts), timeout=20)

    def submit(referral_id):
        with app.app_context():  # each thread its own session and connection
            referral = db.session.get(Referral, referral_id)
            start.wait()
            services.submit(referral, db.session.get(user_class, teacher_id))
            db.session.commit()
            return referral.number

    numbers = run_in_parallel(*[lambda rid=rid: submit(rid) for rid in drafts])
    year = numbers[0].split("-")[1]
    assert sorted(numbers) == [f"WE-{year}-{n:04d}" for n in range(1, 7)]


def test_numbers_count_per_district_and_year(world):
    from datetime import datetime

    a = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=datetime(2026, 12, 30, 10))
    b = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=datetime(2026, 12, 31, 10))
    c = factories.referral_in(State.SUBMITTED, world.teacher_b, world.asd_hm, now=datetime(2026, 12, 31, 11))
    # 23:30 UTC on New Year's Eve is already 2027 in Germany.
    d = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=datetime(2026, 12, 31, 23, 30))
    assert [a.number, b.number, c.number, d.number] == ["WE-2026-0001", "WE-2026-0002", "HM-2026-0001", "WE-2027-0001"]


RULES_DONE = {action: rule.done for action, rule in process.RULES.items()}


def _count(referral_id: int, action: Action) -> int:
    return db.session.scalar(
        select(func.count()).select_from(StateChange).where(StateChange.referral_id == referral_id, StateChange.action == action)
    )
