"""The rules of the handover process, in one place.

PROCESS.md, *Referral states* and *Deadlines*: which action is possible in which state, which roles
may take it, where it leads, and when things are due. Views ask `policy.may()`, which asks this
module for the state and role part; every change of a referral goes through `apply()`, this
module's configuration of the one workflow engine (`workflow/engine.py`).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from sqlalchemy import select

from ..accounts.models import ASD_ROLES, SCHOOL_ROLES, Role
from ..extensions import db
from ..kernel.deadlines import end_of_nth_working_day
from ..timeutil import utcnow
from ..workflow.engine import KEEP, Gone, Rule, RuleTable, Winner, Workflow
from .vocabulary import Urgency

if TYPE_CHECKING:  # the models import this module for the enums
    from ..accounts.models import User
    from ..organisation.models import District
    from .models import Referral, StateChange


class State(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    IN_ASSESSMENT = "in_assessment"
    INFO_REQUESTED = "info_requested"
    FEEDBACK_GIVEN = "feedback_given"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    State.DRAFT: "Entwurf",
    State.SUBMITTED: "Eingereicht",
    State.ACKNOWLEDGED: "Eingang bestätigt",
    State.IN_ASSESSMENT: "In Prüfung",
    State.INFO_REQUESTED: "Rückfrage an die Schule",
    State.FEEDBACK_GIVEN: "Rückmeldung gegeben",
    State.CLOSED: "Abgeschlossen",
}
SUBMITTED_STATES = frozenset(State) - {State.DRAFT}
OPEN_STATES = frozenset({State.SUBMITTED, State.ACKNOWLEDGED, State.IN_ASSESSMENT, State.INFO_REQUESTED})


class Action(enum.StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    DELETE = "delete"
    ACKNOWLEDGE = "acknowledge"
    TRANSFER = "transfer"
    TAKE_OVER = "take_over"
    ASSIGN = "assign"
    REASSIGN = "reassign"
    ASK = "ask"
    ANSWER = "answer"
    ADDENDUM = "addendum"
    RECORD_ASSESSMENT = "record_assessment"
    GIVE_FEEDBACK = "give_feedback"
    CLOSE = "close"


ASD = ASD_ROLES
SCHOOL = SCHOOL_ROLES

# The state table of PROCESS.md. Rules with target KEEP are actions inside a state.
RULES: RuleTable[Action, State] = RuleTable(
    {
        Action.EDIT: Rule(frozenset({State.DRAFT}), KEEP, SCHOOL, "Entwurf bearbeiten", "Entwurf gespeichert."),
        Action.SUBMIT: Rule(
            frozenset({State.DRAFT}),
            State.SUBMITTED,
            SCHOOL,
            "Einreichen",
            "Die Mitteilung wurde an den ASD übermittelt.",
        ),
        Action.DELETE: Rule(
            frozenset({State.DRAFT}), Gone.DELETED, SCHOOL, "Entwurf löschen", "Der Entwurf wurde endgültig gelöscht."
        ),
        Action.ACKNOWLEDGE: Rule(
            frozenset({State.SUBMITTED}), State.ACKNOWLEDGED, ASD, "Eingang bestätigen", "Der Eingang wurde bestätigt."
        ),
        Action.TRANSFER: Rule(
            frozenset({State.SUBMITTED, State.ACKNOWLEDGED, State.IN_ASSESSMENT}),
            State.SUBMITTED,
            ASD,
            "An anderen Bezirk abgeben",
            "Die Mitteilung wurde an den anderen Bezirk abgegeben.",
        ),
        Action.TAKE_OVER: Rule(
            frozenset({State.ACKNOWLEDGED}),
            State.IN_ASSESSMENT,
            ASD,
            "Fall übernehmen",
            "Sie haben den Fall übernommen.",
        ),
        Action.ASSIGN: Rule(
            frozenset({State.ACKNOWLEDGED}),
            State.IN_ASSESSMENT,
            frozenset({Role.ASD_LEAD}),
            "Zuweisen",
            "Der Fall wurde zugewiesen.",
        ),
        Action.REASSIGN: Rule(
            frozenset({State.IN_ASSESSMENT, State.INFO_REQUESTED}),
            KEEP,
            frozenset({Role.ASD_LEAD}),
            "Neu zuweisen",
            "Der Fall wurde neu zugewiesen.",
        ),
        Action.ASK: Rule(
            frozenset({State.IN_ASSESSMENT}),
            State.INFO_REQUESTED,
            ASD,
            "Rückfrage an die Schule",
            "Die Rückfrage wurde an die Schule gesendet.",
        ),
        Action.ANSWER: Rule(
            frozenset({State.INFO_REQUESTED}),
            State.IN_ASSESSMENT,
            SCHOOL,
            "Rückfrage beantworten",
            "Ihre Antwort wurde an den ASD übermittelt.",
        ),
        # Not after closing: nobody works on a closed case any more; a new concern is a new referral.
        Action.ADDENDUM: Rule(
            SUBMITTED_STATES - {State.CLOSED}, KEEP, SCHOOL, "Nachtrag senden", "Ihr Nachtrag wurde übermittelt."
        ),
        Action.RECORD_ASSESSMENT: Rule(
            frozenset({State.IN_ASSESSMENT, State.INFO_REQUESTED}),
            KEEP,
            ASD,
            "Gefährdungseinschätzung erfassen",
            "Die Gefährdungseinschätzung wurde gespeichert.",
        ),
        Action.GIVE_FEEDBACK: Rule(
            frozenset({State.IN_ASSESSMENT}),
            State.FEEDBACK_GIVEN,
            ASD,
            "Rückmeldung geben",
            "Die Rückmeldung wurde an die Schule gegeben.",
        ),
        Action.CLOSE: Rule(
            frozenset({State.FEEDBACK_GIVEN}), State.CLOSED, ASD, "Abschließen", "Die Mitteilung wurde abgeschlossen."
        ),
    }
)

# Actions that only the person responsible for the case (or the district's lead) may take.
CASE_OWNER_ACTIONS = frozenset({Action.ASK, Action.RECORD_ASSESSMENT, Action.GIVE_FEEDBACK, Action.CLOSE})


# History entries the school does not see: the assessment is internal to the ASD (PROCESS.md,
# *Assessment*), and draft edits are noise to everyone.
HIDDEN_FROM_SCHOOL = frozenset({Action.RECORD_ASSESSMENT, Action.EDIT})
HIDDEN_FROM_ASD = frozenset({Action.EDIT})
# Entries the school sees without their free text: it learns that and to which district a referral
# was transferred, never why; a reason like "moved to a women's shelter" goes beyond what
# § 64 Abs. 4 SGB VIII allows. Both districts, the audit log and the evaluation keep it.
REASON_HIDDEN_FROM_SCHOOL = frozenset({Action.TRANSFER})


class HistoryEntry:
    """A history entry as one side reads it: the change itself, with `reason` only where that side may read it."""

    def __init__(self, change: StateChange, reason: str | None) -> None:
        self._change = change
        self.reason = reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._change, name)


def history_for(referral: Referral, *, asd_side: bool) -> list[HistoryEntry]:
    """The referral's history as the ASD or the school may read it (page and PDF alike)."""
    hidden = HIDDEN_FROM_ASD if asd_side else HIDDEN_FROM_SCHOOL
    return [
        HistoryEntry(change, change.reason if asd_side or change.action not in REASON_HIDDEN_FROM_SCHOOL else None)
        for change in referral.history
        if change.action not in hidden
    ]


def possible_in_state(action: Action, state: State) -> bool:
    return RULES.possible(action, state)


# --- Deadlines -------------------------------------------------------------------------------


def acknowledge_due(received_at: datetime, urgency: Urgency, settings: dict[str, int]) -> datetime:
    if urgency is Urgency.ACUTE:
        return received_at + timedelta(hours=settings["ack_acute_hours"])
    return end_of_nth_working_day(received_at, settings["ack_working_days"])


def feedback_due(submitted_at: datetime, settings: dict[str, int]) -> datetime:
    return end_of_nth_working_day(submitted_at, settings["feedback_working_days"])


# --- Applying an action ----------------------------------------------------------------------

signals = Namespace()
# `referral_changed` is sent inside the transaction of the action, after its changes are flushed.
# Receivers (the audit log, the notification outbox) write rows in that same transaction, so that
# they are committed or rolled back together with the action; they must not send anything out
# themselves. Tests use `action_checked` to line up two concurrent requests.
action_checked = signals.signal("action-checked")
referral_changed = signals.signal("referral-changed")


def refusal(action: Action, state: State) -> str:
    return RULES.refusal(action, state)


def _last_actor(referral_id: int) -> int | None:
    """Who made the referral's last committed change (its history)."""
    from .models import StateChange

    return db.session.scalar(
        select(StateChange.actor_id)
        .where(StateChange.referral_id == referral_id)
        .order_by(StateChange.id.desc())
        .limit(1)
    )


def _lost(action: Action, state: State, winner: Winner) -> str:
    if action is Action.DELETE:
        return "Der Entwurf wurde inzwischen geändert oder eingereicht und wurde nicht gelöscht."
    return lost_message(winner, draft=state is State.DRAFT)


def lost_message(winner: Winner, *, draft: bool) -> str:
    """What the loser of a race is told. Two tabs of one person are not "another person"; for a
    draft, only its author edits it, so an unknown winner is another window too."""
    if draft:
        if winner is not Winner.OTHER:
            return (
                "Der Entwurf wurde inzwischen in einem anderen Fenster geändert oder eingereicht. Ihre Änderung "
                "wurde nicht gespeichert. Bitte prüfen Sie den aktuellen Stand."
            )
        return (
            "Der Entwurf wurde inzwischen von einer anderen Person geändert. Ihre Änderung wurde nicht "
            "gespeichert. Bitte prüfen Sie den aktuellen Stand."
        )
    if winner is Winner.SELF:
        return (
            "Die Mitteilung wurde gerade in einem anderen Fenster bearbeitet, von Ihnen selbst. Ihre Aktion "
            "wurde nicht ausgeführt. Bitte prüfen Sie den aktuellen Stand."
        )
    return (
        "Die Mitteilung wurde gerade von einer anderen Person bearbeitet. Ihre Aktion wurde nicht "
        "ausgeführt. Bitte prüfen Sie den aktuellen Stand."
    )


def concurrent_change_message(referral_id: int | None, actor_id: int | None, *, draft: bool) -> str:
    """What the loser of a race is told once its transaction is rolled back: whoever acted last,
    as far as the committed history says."""
    last = _last_actor(referral_id) if referral_id is not None else None
    winner = Winner.UNKNOWN if last is None else Winner.SELF if last == actor_id else Winner.OTHER
    return lost_message(winner, draft=draft)


def _referral_model() -> type[Any]:
    from .models import Referral  # the models import this module for the enums

    return Referral


REFERRALS = Workflow(rules=RULES, model=_referral_model, last_actor=_last_actor, lost=_lost, checked=action_checked)


def apply(
    referral: Referral,
    action: Action,
    actor: User,
    *,
    reason: str = "",
    to_district: District | None = None,
    assignee: User | None = None,
    now: datetime | None = None,
) -> StateChange | None:
    """Check `action` against the state table and record it; flushes, never commits or rolls back.

    The referral's row is locked and its version compared first, so that a concurrent second writer
    gets `ConcurrentChange` instead of overwriting the first (see `workflow.engine`).
    """
    from .models import StateChange  # models import this module for the enums

    now = now or utcnow()
    with db.session.no_autoflush:  # before the relationship change (a transfer) is flushed into the column
        from_district_id = referral.district_id

    def record(before: State) -> StateChange | None:
        if RULES[action].target is Gone.DELETED:
            referral_changed.send(referral, action=action, change=None)
            db.session.delete(referral)
            return None
        referral.updated_at = now
        change = _recent_edit(referral, actor, now) if action is Action.EDIT and not reason else None
        if change is not None:
            change.at = now  # drafts save themselves while typed: one history entry per sitting, not per save
            return change
        change = StateChange(
            referral=referral,
            action=action,
            from_state=before,
            to_state=referral.state,
            actor=actor,
            at=now,
            reason=reason or None,
            from_district_id=from_district_id if to_district is not None else None,
            to_district_id=to_district.id if to_district is not None else None,
            assignee=assignee,
        )
        db.session.add(change)
        return change

    change = REFERRALS.apply(referral, action, actor, record)
    if change is not None:
        referral_changed.send(referral, action=action, change=change)
    return change


EDIT_SITTING = timedelta(minutes=10)


def _recent_edit(referral: Referral, actor: User, now: datetime) -> StateChange | None:
    """The author's last save of this draft, if it was a moment ago (autosave): that entry is reused."""
    from .models import StateChange

    if referral.id is None:
        return None
    last = db.session.scalar(
        select(StateChange).where(StateChange.referral_id == referral.id).order_by(StateChange.id.desc()).limit(1)
    )
    if (
        last is not None
        and last.action is Action.EDIT
        and last.actor_id == actor.id
        and last.reason is None
        and now - last.at < EDIT_SITTING
    ):
        return last
    return None


# --- What a submission needs -----------------------------------------------------------------


def submission_problems(referral: Referral) -> dict[str, str]:
    """Missing or inconsistent content, keyed by form field name, in German.

    Drafts may be incomplete; a referral reaching the ASD must be complete enough to act on.
    """
    from .vocabulary import InformedStatus, PersonKind

    problems: dict[str, str] = {}
    required = {
        "child_first_name": "Bitte den Vornamen des Kindes angeben.",
        "child_last_name": "Bitte den Nachnamen des Kindes angeben.",
        "child_class": "Bitte die Klasse angeben.",
        "child_address": "Bitte die Anschrift des Kindes angeben.",
        "observation": "Bitte beschreiben Sie, was gesehen oder gehört wurde.",
        "observed_by": "Bitte angeben, wer es beobachtet hat.",
        "reporter_name": "Bitte Ihren Namen angeben.",
        "reporter_phone": "Bitte eine Telefonnummer für Rückfragen angeben.",
    }
    for field, message in required.items():
        if not (getattr(referral, field) or "").strip():
            problems[field] = message
    if referral.child_birth_date is None:
        problems["child_birth_date"] = "Bitte das Geburtsdatum des Kindes angeben."
    if referral.observed_on is None:
        problems["observed_on"] = "Bitte das Datum der Beobachtung angeben."
    if not referral.categories:
        problems["categories"] = "Bitte mindestens eine Kategorie wählen."
    if referral.reporter_function is None:
        problems["reporter_function"] = "Bitte Ihre Funktion angeben."
    if referral.urgency is None:
        problems["urgency"] = "Bitte die Dringlichkeit angeben."
    elif referral.urgency is Urgency.ACUTE:
        if referral.phone_call_at is None:
            problems["phone_call_at"] = "Bei „akut“ bitte angeben, wann Sie den ASD angerufen haben."
        if not (referral.phone_call_with or "").strip():
            problems["phone_call_with"] = "Bei „akut“ bitte angeben, mit wem Sie gesprochen haben."

    if not any(p.first_name.strip() or p.last_name.strip() for p in referral.persons):
        problems["persons"] = "Bitte mindestens einen Elternteil oder eine Bezugsperson angeben."
    for i, person in enumerate(referral.persons):
        if not person.last_name.strip():
            problems[f"persons-{i}-last_name"] = "Bitte den Nachnamen angeben."
        if person.kind is not PersonKind.HOUSEHOLD and person.custody is None:
            problems[f"persons-{i}-custody"] = "Bitte angeben, ob die Person sorgeberechtigt ist."

    # Keyed by the position in the form, which lists the actions in the order of PROCESS.md.
    for i, action in enumerate(referral.school_actions_in_order):
        if action.done is None:
            problems[f"school_actions-{i}-done"] = "Bitte „ja“ oder „nein“ wählen."
        elif action.done and action.done_on is None:
            problems[f"school_actions-{i}-done_on"] = "Bitte das Datum angeben."
        elif not action.done and not action.reason.strip():
            problems[f"school_actions-{i}-reason"] = "Bitte den Grund angeben („nein, weil …“)."

    if referral.affected_informed is None:
        problems["affected_informed"] = "Bitte angeben, ob die Betroffenen vorab informiert wurden."
    elif referral.affected_informed is InformedStatus.YES:
        if referral.affected_informed_on is None:
            problems["affected_informed_on"] = "Bitte das Datum angeben."
    elif not referral.affected_informed_reason.strip():
        problems["affected_informed_reason"] = "Bitte den Grund angeben."
    return problems
