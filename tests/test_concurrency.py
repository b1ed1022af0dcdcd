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
    feedback = {
        "indications_confirmed": "yes",
        "asd_became_active": "yes",
        "asd_still_active": "no",
        "contact_name": "Anna ASD",
        "contact_phone": "0234 1",
        "affected_informed": "yes",
        "affected_informed_on": "2026-11-06",
        "confirm": "y",
    }
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
        select(func.count())
        .select_from(StateChange)
        .where(StateChange.referral_id == referral_id, StateChange.action == action)
    )


# --- Two tabs, double clicks, two staff at once: the loser sees what happened -------------------


def _flashes(response) -> list[str]:
    import re
    from html import unescape

    return [unescape(m) for m in re.findall(r"data-flash>([^<]*)<", response.get_data(as_text=True))]


def test_two_tabs_of_one_person_are_not_another_person(world, as_user, lockstep, no_csrf):
    """The same ASD worker clicks "Eingang bestätigen" in two tabs: the second tab says it was her
    own other window, never "another person"."""
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    url = f"/referrals/{referral.id}/acknowledge"
    lockstep()
    answers = run_in_parallel(post(as_user(world.asd), url), post(as_user(world.asd), url))
    shown = [_flashes(a) for a in answers]
    assert sorted(len(s) for s in shown) == [1, 1], shown
    won = [s for s in shown if s == [RULES_DONE[Action.ACKNOWLEDGE]]]
    lost = [s[0] for s in shown if s != [RULES_DONE[Action.ACKNOWLEDGE]]]
    assert len(won) == 1 and len(lost) == 1, shown
    assert "in einem anderen Fenster" in lost[0] and "anderen Person" not in lost[0]
    assert "Aktueller Status: „Eingang bestätigt“" in lost[0]
    assert _count(referral.id, Action.ACKNOWLEDGE) == 1


def test_two_staff_take_over_at_once(world, as_user, lockstep, no_csrf):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    url = f"/referrals/{referral.id}/take-over"
    lockstep()
    first, second = run_in_parallel(post(as_user(world.asd), url), post(as_user(world.asd2), url))
    assert first.status_code == second.status_code == 200  # both end on the referral's page
    shown = {"asd": _flashes(first), "asd2": _flashes(second)}
    winners = [who for who, s in shown.items() if s == [RULES_DONE[Action.TAKE_OVER]]]
    assert len(winners) == 1, shown
    loser = shown["asd2" if winners == ["asd"] else "asd"][0]
    assert "gerade von einer anderen Person bearbeitet" in loser and "Aktueller Status: „In Prüfung“" in loser
    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    assert stored.state is State.IN_ASSESSMENT and stored.assignee_id == getattr(world, winners[0]).id
    assert _count(referral.id, Action.TAKE_OVER) == 1


def test_a_double_click_on_feedback_gives_it_once(world, as_user, lockstep, no_csrf):
    from referral.cases.models import Feedback

    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    factories.record_assessment(referral, world.asd, world.asd_lead)
    db.session.commit()
    feedback = {
        "indications_confirmed": "yes",
        "asd_became_active": "yes",
        "asd_still_active": "no",
        "contact_name": "Anna ASD",
        "contact_phone": "0234 1",
        "affected_informed": "yes",
        "affected_informed_on": "2026-11-06",
        "confirm": "y",
    }
    url = f"/referrals/{referral.id}/feedback"
    lockstep()
    answers = run_in_parallel(post(as_user(world.asd), url, feedback), post(as_user(world.asd), url, feedback))
    assert all(a.status_code == 200 for a in answers)
    shown = [_flashes(a) for a in answers]
    assert sum(s == [RULES_DONE[Action.GIVE_FEEDBACK]] for s in shown) == 1, shown
    lost = next(s for s in shown if s != [RULES_DONE[Action.GIVE_FEEDBACK]])
    assert "in einem anderen Fenster" in lost[0] and "Aktueller Status: „Rückmeldung gegeben“" in lost[0]
    assert db.session.scalar(select(func.count()).select_from(Feedback)) == 1
    assert _count(referral.id, Action.GIVE_FEEDBACK) == 1


def test_two_insofas_accept_a_consultation_at_once(world, as_user, no_csrf, monkeypatch):
    """Both InsoFas have the request open and click "Annehmen" together: one accepts, the other is
    told on the page, nothing is overwritten."""
    from referral.consultations import services as consultation_services
    from referral.consultations.models import Consultation
    from referral.consultations.process import ConsultationState

    consultation = factories.consultation_in(ConsultationState.REQUESTED, world.teacher)
    both_checked = threading.Barrier(2, timeout=20)
    accept = consultation_services.accept

    def accept_together(*args, **kwargs):  # both requests have loaded the request and found it open
        both_checked.wait()
        return accept(*args, **kwargs)

    monkeypatch.setattr(consultation_services, "accept", accept_together)
    url = f"/consultations/{consultation.id}/accept"
    first, second = run_in_parallel(post(as_user(world.insofa), url), post(as_user(world.insofa2), url))
    assert first.status_code < 500 and second.status_code < 500
    pages = {"insofa": first.get_data(as_text=True), "insofa2": second.get_data(as_text=True)}
    db.session.expire_all()
    stored = db.session.get(Consultation, consultation.id)
    winner = "insofa" if stored.insofa_id == world.insofa.id else "insofa2"
    assert stored.state is ConsultationState.ACCEPTED and stored.insofa_id == getattr(world, winner).id
    loser = pages["insofa2" if winner == "insofa" else "insofa"]
    assert "gerade von einer anderen Person bearbeitet" in loser or "hat inzwischen eine andere Fachkraft" in loser, (
        loser
    )


@pytest.mark.parametrize("lost", ["stale", "deadlock"])
def test_a_write_that_loses_in_the_database_ends_in_the_concurrent_change_message(
    world, as_user, no_csrf, monkeypatch, lost
):
    """Behind the row lock: should a draft's save still lose to another transaction (stale rows, a
    deadlock), the user gets the concurrent-change message, never a 500."""
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm.exc import StaleDataError

    from .test_permissions import draft_form

    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    error = (
        StaleDataError("expected to update 1 row")
        if lost == "stale"
        else OperationalError("UPDATE referral …", {}, DeadlockDetected("deadlock detected"))
    )

    def losing(*args, **kwargs):
        raise error

    monkeypatch.setattr(services, "save_draft", losing)
    client = as_user(world.teacher)
    autosaved = client.post(f"/referrals/{referral.id}/autosave", data=draft_form(world))
    assert autosaved.status_code == 409 and autosaved.json["saved"] is False
    assert autosaved.json["message"].startswith("Der Entwurf wurde inzwischen in einem anderen Fenster geändert")
    saved = client.post(f"/referrals/{referral.id}/edit", data=draft_form(world))
    assert saved.status_code == 302 and saved.location.endswith(f"/referrals/{referral.id}/edit")
    assert _flashes(client.get(saved.location))[0].startswith(
        "Der Entwurf wurde inzwischen in einem anderen Fenster geändert"
    )
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).child_first_name == factories.CHILD_FIRST


def test_an_asd_action_lost_in_the_database_is_explained(world, as_user, no_csrf, monkeypatch):
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def losing(*args, **kwargs):
        raise OperationalError("UPDATE referral …", {}, DeadlockDetected("deadlock detected"))

    monkeypatch.setattr(services, "acknowledge", losing)
    answer = post(as_user(world.asd), f"/referrals/{referral.id}/acknowledge")()
    assert answer.status_code == 200
    shown = _flashes(answer)
    assert shown and shown[0].startswith("Gleichzeitig wurde dieselbe Sache an anderer Stelle bearbeitet.")
    assert "Aktueller Status: „Eingereicht“" in shown[0] and "anderen Person" not in shown[0]
    assert _count(referral.id, Action.ACKNOWLEDGE) == 0
