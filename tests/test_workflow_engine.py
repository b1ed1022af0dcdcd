"""The one workflow engine (referral/workflow): what it does the same for referrals and consultations."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from psycopg.errors import DeadlockDetected, SerializationFailure
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from referral import outages
from referral.cases import services
from referral.cases.deadlines import Late, overdue
from referral.cases.models import Referral
from referral.cases.process import RULES, Action, State
from referral.consultations import services as consultation_services
from referral.consultations.process import ConsultationState as S
from referral.consultations.vocabulary import ContactWay, Recommendation
from referral.extensions import db
from referral.kernel.settings import Setting
from referral.timeutil import utcnow
from referral.workflow.errors import ConcurrentChange, ProcessError, lost_a_race

from . import factories


def _stale(obj, **before) -> None:
    """Make the session believe it loaded `obj` before its last committed change (a second window):
    the version before, and the values in `before`."""
    set_committed_value(obj, "version", obj.version - 1)
    for name, value in before.items():
        set_committed_value(obj, name, value)


def test_the_rule_table_refuses_in_german_before_anything_changes(world):
    with pytest.raises(ProcessError, match="„Abschließen“ ist im Status „Eingereicht“ nicht möglich."):
        RULES.check(Action.CLOSE, State.SUBMITTED)
    assert RULES.possible(Action.ACKNOWLEDGE, State.SUBMITTED)


def test_a_refused_action_leaves_the_callers_session_alone(world):
    """The operation refuses without rolling back: an earlier change of the caller stays until the
    caller decides (here: to commit it)."""
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    earlier = Setting(key="retention_days", value=99)
    db.session.add(earlier)
    with pytest.raises(ProcessError, match="nicht möglich"):
        services.close(referral, world.asd)
    assert earlier in db.session.new
    db.session.commit()
    assert db.session.get(Setting, "retention_days").value == 99
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED


def test_a_lost_race_leaves_the_rollback_to_the_caller(world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    services.acknowledge(referral, world.asd2)
    db.session.commit()
    _stale(referral)
    earlier = Setting(key="retention_days", value=99)
    db.session.add(earlier)
    with pytest.raises(ConcurrentChange, match="anderen Person"):
        services.take_over(referral, world.asd)
    assert earlier in db.session.new, "the operation did not roll back the caller's session"
    db.session.rollback()
    assert db.session.get(Referral, referral.id).assignee_id is None


def test_a_consultation_lost_to_the_same_insofa_in_another_window_says_so(world):
    consultation = factories.consultation_in(S.ACCEPTED, world.teacher, world.insofa)
    when = utcnow() - timedelta(hours=1)
    consultation_services.arrange(consultation, world.insofa, at=when, way=ContactWay.PHONE)  # the first window
    db.session.commit()
    _stale(consultation)  # the second window loaded the consultation before the first saved
    with pytest.raises(ConcurrentChange) as lost:
        consultation_services.answer(consultation, world.insofa, recommendation=Recommendation.INFORM_ASD, note="")
    assert "in einem anderen Fenster" in str(lost.value)
    assert "andere Person" not in str(lost.value) and "anderen Person" not in str(lost.value)
    db.session.rollback()
    assert db.session.get(type(consultation), consultation.id).state is S.ACCEPTED


def test_a_consultation_lost_to_someone_else_names_another_person(world):
    consultation = factories.consultation_in(S.REQUESTED, world.teacher)
    consultation_services.accept(consultation, world.insofa)
    db.session.commit()
    _stale(consultation, state=S.REQUESTED)
    with pytest.raises(ConcurrentChange, match="von einer anderen Person bearbeitet"):
        consultation_services.accept(consultation, world.insofa2)
    db.session.rollback()


def test_a_consultation_page_lost_in_another_window_says_so(world, as_user, app, monkeypatch):
    """Through the page: the InsoFa's second tab is told about the other window, with the state."""
    app.config["WTF_CSRF_ENABLED"] = False
    consultation = factories.consultation_in(S.REQUESTED, world.teacher)
    accept = consultation_services.accept

    def first_window_wins(consultation, actor, **kwargs):  # the other tab of the same InsoFa, a moment earlier
        accept(consultation, actor)
        db.session.commit()
        _stale(consultation, state=S.REQUESTED)
        return accept(consultation, actor, **kwargs)

    monkeypatch.setattr(consultation_services, "accept", first_window_wins)
    page = as_user(world.insofa).post(f"/consultations/{consultation.id}/accept", follow_redirects=True)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "in einem anderen Fenster bearbeitet, von Ihnen selbst" in text and "anderen Person" not in text
    assert "Aktueller Status: „Angenommen“" in text


@pytest.mark.parametrize(
    ("error", "race"),
    [
        (StaleDataError("expected to update 1 row"), True),
        (OperationalError("UPDATE …", {}, DeadlockDetected("deadlock detected")), True),
        (OperationalError("UPDATE …", {}, SerializationFailure("could not serialize")), True),
        (OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_one_rule_tells_a_lost_race_from_an_outage(error, race):
    assert lost_a_race(error) is race
    if isinstance(error, OperationalError):
        assert (outages.unreachable(error) is None) is race


@pytest.mark.parametrize("state", [State.SUBMITTED, State.ACKNOWLEDGED, State.FEEDBACK_GIVEN])
def test_the_overdue_rule_says_the_same_in_sql_and_in_python(world, state):
    referral = factories.referral_in(state, world.teacher, world.asd)
    for later in (timedelta(0), timedelta(days=3), timedelta(days=30)):
        now = referral.submitted_at + later
        for late in ((), (Late.ACKNOWLEDGE,), (Late.FEEDBACK,)):
            rule = overdue(now, *late)
            in_sql = db.session.scalar(select(func.count()).where(Referral.id == referral.id, rule.condition))
            assert bool(in_sql) is rule.applies(referral), (state, later, late)
    assert overdue(referral.submitted_at + timedelta(days=30)).applies(referral) is (state is not State.FEEDBACK_GIVEN)
    assert referral.overdue(datetime.max) == (
        ["Eingangsbestätigung überfällig", "Rückmeldung überfällig"]
        if state is State.SUBMITTED
        else ["Rückmeldung überfällig"]
        if state is State.ACKNOWLEDGED
        else []
    )
