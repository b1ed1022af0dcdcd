"""The state table of PROCESS.md: exactly these transitions, enforced in one place and by the database."""

from datetime import datetime

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from referral.cases import process, services
from referral.cases.models import Referral, StateChange
from referral.cases.process import RULES, Action, State
from referral.extensions import db
from referral.workflow.engine import Gone, Keep
from referral.workflow.errors import ConcurrentChange, ProcessError

from . import factories

S = State
# PROCESS.md, *Referral states*, written out once more by hand so that a change to the rules is a
# deliberate change to this test as well.
EXPECTED_TRANSITIONS = {
    (Action.SUBMIT, S.DRAFT, S.SUBMITTED),
    (Action.ACKNOWLEDGE, S.SUBMITTED, S.ACKNOWLEDGED),
    (Action.TRANSFER, S.SUBMITTED, S.SUBMITTED),
    (Action.TRANSFER, S.ACKNOWLEDGED, S.SUBMITTED),
    (Action.TRANSFER, S.IN_ASSESSMENT, S.SUBMITTED),
    (Action.TAKE_OVER, S.ACKNOWLEDGED, S.IN_ASSESSMENT),
    (Action.ASSIGN, S.ACKNOWLEDGED, S.IN_ASSESSMENT),
    (Action.ASK, S.IN_ASSESSMENT, S.INFO_REQUESTED),
    (Action.ANSWER, S.INFO_REQUESTED, S.IN_ASSESSMENT),
    (Action.GIVE_FEEDBACK, S.IN_ASSESSMENT, S.FEEDBACK_GIVEN),
    (Action.CLOSE, S.FEEDBACK_GIVEN, S.CLOSED),
}


def test_the_state_table_is_exactly_that_of_process_md():
    table = {
        (action, source, rule.target) for action, rule in RULES.items() if rule.changes_state for source in rule.sources
    }
    assert table == EXPECTED_TRANSITIONS


def test_actions_within_a_state_never_change_it():
    assert RULES[Action.ADDENDUM].sources == frozenset(State) - {State.DRAFT, State.CLOSED}
    for action, rule in RULES.items():
        if not rule.changes_state:
            assert rule.target in (Keep.STATE, Gone.DELETED), action


OPERATIONS = {
    Action.SUBMIT: lambda r, w: services.submit(r, w.teacher),
    Action.ACKNOWLEDGE: lambda r, w: services.acknowledge(r, w.asd),
    Action.TRANSFER: lambda r, w: services.transfer(r, w.asd, w.districts["hm"], "Wohnort der Eltern"),
    Action.TAKE_OVER: lambda r, w: services.take_over(r, w.asd),
    Action.ASK: lambda r, w: services.ask(r, w.asd, "Frage?"),
    Action.ANSWER: lambda r, w: services.answer(r, w.teacher, "Antwort."),
    Action.GIVE_FEEDBACK: lambda r, w: services.give_feedback(r, w.asd, **factories.feedback_values(w.asd)),
    Action.CLOSE: lambda r, w: services.close(r, w.asd),
    Action.ADDENDUM: lambda r, w: services.add_addendum(r, w.teacher, "Nachtrag."),
    Action.DELETE: lambda r, w: services.delete_draft(r, w.teacher),
}


@pytest.mark.parametrize("state", list(State))
def test_every_other_transition_is_refused_with_a_german_message(world, state):
    referral = factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)
    if state is State.IN_ASSESSMENT:
        factories.record_assessment(referral, world.asd, world.asd_lead)
        db.session.commit()
    for action, operation in OPERATIONS.items():
        if state in RULES[action].sources:
            continue
        history = len(referral.history)
        with pytest.raises(ProcessError) as refused:
            operation(referral, world)
        assert "nicht möglich" in str(refused.value), (action, state)
        assert RULES[action].label in str(refused.value)
        db.session.rollback()
        assert db.session.get(Referral, referral.id).state is state
        assert len(db.session.get(Referral, referral.id).history) == history


def test_each_transition_is_recorded_in_the_history(world):
    referral = factories.referral_in(State.CLOSED, world.teacher, world.asd, lead=world.asd_lead)
    steps = [(c.action, c.from_state, c.to_state) for c in referral.history if c.from_state != c.to_state]
    assert steps == [
        (Action.SUBMIT, S.DRAFT, S.SUBMITTED),
        (Action.ACKNOWLEDGE, S.SUBMITTED, S.ACKNOWLEDGED),
        (Action.TAKE_OVER, S.ACKNOWLEDGED, S.IN_ASSESSMENT),
        (Action.GIVE_FEEDBACK, S.IN_ASSESSMENT, S.FEEDBACK_GIVEN),
        (Action.CLOSE, S.FEEDBACK_GIVEN, S.CLOSED),
    ]
    assert all(c.actor_id and c.at for c in referral.history)


def test_transfer_moves_the_referral_and_records_from_to_and_reason(world):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    number, feedback_due = referral.number, referral.feedback_due_at
    services.transfer(
        referral, world.asd, world.districts["hm"], "Eltern wohnen in Herne-Mitte", now=datetime(2026, 11, 9, 10)
    )
    db.session.commit()
    assert referral.state is State.SUBMITTED and referral.district_id == world.districts["hm"].id
    assert referral.assignee is None and referral.acknowledged_at is None
    assert referral.number == number, "the school knows the case by its number"
    assert referral.feedback_due_at == feedback_due, "the school's feedback stays due as before"
    change = referral.history[-1]
    assert (change.from_district_id, change.to_district_id, change.reason) == (
        world.districts["we"].id,
        world.districts["hm"].id,
        "Eltern wohnen in Herne-Mitte",
    )


def test_transfer_needs_a_reason_and_another_district(world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    with pytest.raises(ProcessError, match="Grund"):
        services.transfer(referral, world.asd, world.districts["hm"], "  ")
    with pytest.raises(ProcessError, match="bereits"):
        services.transfer(referral, world.asd, world.districts["we"], "Grund")


def test_feedback_needs_an_assessment_first(world):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    with pytest.raises(ProcessError, match="Gefährdungseinschätzung"):
        services.give_feedback(referral, world.asd, **factories.feedback_values(world.asd))


def test_assessment_needs_two_specialists(world):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    with pytest.raises(ProcessError, match="mindestens zwei"):
        services.record_assessment(
            referral,
            world.asd,
            result=factories.AssessmentResult.NO_RISK,
            specialists=[world.asd, world.asd],
            other_specialists="",
            school_involved=False,
            measures=[factories.Measure.NONE],
        )


def test_submission_requires_a_complete_referral(world):
    referral = services.new_draft(world.teacher, world.schools["a"])
    with pytest.raises(services.IncompleteReferral) as incomplete:
        services.submit(referral, world.teacher)
    assert {"child_first_name", "urgency", "categories", "persons", "affected_informed"} <= set(
        incomplete.value.problems
    )
    assert "school_actions-0-done" in incomplete.value.problems


def test_acute_requires_the_phone_call(world):
    referral = factories.complete_draft(world.teacher, urgency=factories.Urgency.ACUTE)
    referral.phone_call_at, referral.phone_call_with = None, ""
    with pytest.raises(services.IncompleteReferral) as incomplete:
        services.submit(referral, world.teacher)
    assert set(incomplete.value.problems) == {"phone_call_at", "phone_call_with"}


# --- The database enforces the same rules ----------------------------------------------------


@pytest.mark.parametrize(
    ("state", "change"),
    [
        (State.SUBMITTED, {"state": "flying"}),  # not a state
        (State.DRAFT, {"state": State.SUBMITTED}),  # submitted without number and times
        (State.SUBMITTED, {"state": State.ACKNOWLEDGED}),  # acknowledged without a time
        (State.ACKNOWLEDGED, {"state": State.IN_ASSESSMENT}),  # assessed without an assignee
        (State.IN_ASSESSMENT, {"state": State.FEEDBACK_GIVEN}),  # feedback without its time
        (State.FEEDBACK_GIVEN, {"state": State.CLOSED}),  # closed without its time
        (State.SUBMITTED, {"urgency": "acute", "phone_call_at": None}),  # akut without the phone call
    ],
)
def test_database_refuses_rows_that_break_the_state_rules(world, state, change):
    referral = factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)
    values = {k: (v.value if isinstance(v, State) else v) for k, v in change.items()}
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    with pytest.raises(IntegrityError):
        db.session.execute(text(f"UPDATE referral SET {assignments} WHERE id = :id"), {**values, "id": referral.id})
        db.session.flush()
    db.session.rollback()


def test_stale_write_is_refused(world):
    """The version column turns a second writer's update into a ConcurrentChange, never an overwrite."""
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    db.session.execute(update(Referral).where(Referral.id == referral.id).values(version=Referral.version + 1))
    db.session.commit()
    referral = db.session.get(Referral, referral.id)
    # Another request's write, behind the back of this session's loaded object.
    db.session.execute(
        update(Referral).where(Referral.id == referral.id).values(version=Referral.version + 1),
        execution_options={"synchronize_session": False},
    )
    with pytest.raises(ConcurrentChange, match="anderen Person"):
        services.acknowledge(referral, world.asd)
    # The operation did not roll back the caller's session: deciding that is the caller's part.
    assert referral in db.session.dirty
    db.session.rollback()
    assert db.session.query(StateChange).filter_by(referral_id=referral.id, action=Action.ACKNOWLEDGE).count() == 0


def test_referral_changed_signal_fires_once_per_action(world):
    seen = []

    def receiver(referral, action, change):
        seen.append((referral.id, action))

    process.referral_changed.connect(receiver)
    try:
        referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    finally:
        process.referral_changed.disconnect(receiver)
    assert [a for _, a in seen] == [Action.SUBMIT, Action.ACKNOWLEDGE]
    assert {i for i, _ in seen} == {referral.id}
