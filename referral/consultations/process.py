"""The rules of a consultation, in one place (PROCESS.md, *Consultation*, *Deadlines*).

requested → accepted → answered, or requested → cancelled. Views ask `access.may()`, which asks this
module for the state and role part; every change goes through `apply()`, this module's
configuration of the one workflow engine (`workflow/engine.py`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from sqlalchemy import select

from ..accounts.models import SCHOOL_ROLES, Role
from ..extensions import db
from ..kernel.deadlines import end_of_nth_working_day
from ..timeutil import utcnow
from ..workflow.engine import KEEP, Rule, RuleTable, Winner, Workflow

if TYPE_CHECKING:  # the models import this module for the enums
    from ..accounts.models import User
    from .models import Consultation


class ConsultationState(enum.StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    ANSWERED = "answered"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            ConsultationState.REQUESTED: "Angefragt",
            ConsultationState.ACCEPTED: "Angenommen",
            ConsultationState.ANSWERED: "Beraten",
            ConsultationState.CANCELLED: "Zurückgezogen",
        }[self]


class ConsultationAction(enum.StrEnum):
    REQUEST = "request"
    CANCEL = "cancel"
    ACCEPT = "accept"
    ARRANGE = "arrange"
    ANSWER = "answer"
    START_REFERRAL = "start_referral"


ConsultationRule = Rule[ConsultationState]


S = ConsultationState
INSOFA = frozenset({Role.INSOFA})
RULES: RuleTable[ConsultationAction, ConsultationState] = RuleTable(
    {
        ConsultationAction.CANCEL: ConsultationRule(
            frozenset({S.REQUESTED}),
            S.CANCELLED,
            SCHOOL_ROLES,
            "Anfrage zurückziehen",
            "Die Anfrage wurde zurückgezogen.",
        ),
        ConsultationAction.ACCEPT: ConsultationRule(
            frozenset({S.REQUESTED}),
            S.ACCEPTED,
            INSOFA,
            "Anfrage annehmen",
            "Sie haben die Anfrage angenommen. Die Schule wurde benachrichtigt.",
        ),
        ConsultationAction.ARRANGE: ConsultationRule(
            frozenset({S.ACCEPTED}),
            KEEP,
            INSOFA,
            "Termin vereinbaren",
            "Der Termin wurde gespeichert und der Schule mitgeteilt.",
        ),
        ConsultationAction.ANSWER: ConsultationRule(
            frozenset({S.ACCEPTED}),
            S.ANSWERED,
            INSOFA,
            "Empfehlung erfassen",
            "Die Empfehlung wurde gespeichert und der Schule mitgeteilt.",
        ),
        # A referral started from the consultation; the consultation itself stays as it is.
        ConsultationAction.START_REFERRAL: ConsultationRule(
            frozenset({S.ANSWERED}), KEEP, SCHOOL_ROLES, "Mitteilung an den ASD beginnen", "Der Entwurf wurde angelegt."
        ),
    }
)
# Only the InsoFa who accepted works on it from then on.
OWNER_ACTIONS = frozenset({ConsultationAction.ARRANGE, ConsultationAction.ANSWER})


def refusal(action: ConsultationAction, state: ConsultationState) -> str:
    return RULES.refusal(action, state)


def accept_due(requested_at: datetime, settings: dict[str, int]) -> datetime:
    return end_of_nth_working_day(requested_at, settings["consultation_accept_working_days"])


signals = Namespace()
# Sent inside the transaction of the action after its flush; receivers (audit log, notifications)
# add rows to that same transaction.
consultation_changed = signals.signal("consultation-changed")


def _last_actor(consultation_id: int) -> int | None:
    """Who made the consultation's last committed change: its audit entries are its history."""
    from ..audit.models import AuditEntry

    return db.session.scalar(
        select(AuditEntry.actor_id)
        .where(
            AuditEntry.object_type == "consultation",
            AuditEntry.object_id == str(consultation_id),
            AuditEntry.action.in_([f"consultation.{action.value}" for action in ConsultationAction]),
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )


def _lost(action: ConsultationAction, state: ConsultationState, winner: Winner) -> str:
    """The loser's message: the same InsoFa or teacher in two windows is not "another person"."""
    if winner is Winner.SELF:
        return (
            "Die Anfrage wurde gerade in einem anderen Fenster bearbeitet, von Ihnen selbst. Ihre Aktion wurde "
            "nicht ausgeführt. Bitte prüfen Sie den aktuellen Stand."
        )
    return (
        "Die Anfrage wurde gerade von einer anderen Person bearbeitet. Ihre Aktion wurde "
        "nicht ausgeführt. Bitte prüfen Sie den aktuellen Stand."
    )


def _consultation_model() -> type[Any]:
    from .models import Consultation  # the models import this module for the enums

    return Consultation


CONSULTATIONS = Workflow(rules=RULES, model=_consultation_model, last_actor=_last_actor, lost=_lost)


def apply(
    consultation: Consultation, action: ConsultationAction, actor: User, now: datetime | None = None, **fields: Any
) -> None:
    """Check `action` against the rules, set `fields`, flush; never commits or rolls back."""

    def set_fields(before: ConsultationState | None = None) -> None:
        for name, value in fields.items():
            setattr(consultation, name, value)

    if action is ConsultationAction.REQUEST:  # a new consultation: no rule, nobody to race with
        set_fields()
        CONSULTATIONS.flush()
    else:
        CONSULTATIONS.apply(consultation, action, actor, set_fields)
    consultation_changed.send(consultation, action=action, actor=actor, now=now or utcnow(), fields=sorted(fields))
