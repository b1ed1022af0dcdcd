"""The rules of a consultation, in one place (PROCESS.md, *Consultation*, *Deadlines*).

requested → accepted → answered, or requested → cancelled. Views ask `access.may()`, which asks this
module for the state and role part; every change goes through `apply()`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from sqlalchemy.orm.exc import StaleDataError

from ..accounts.models import SCHOOL_ROLES, Role
from ..cases.process import ConcurrentChange, ProcessError
from ..extensions import db
from ..kernel.deadlines import end_of_nth_working_day
from ..timeutil import utcnow

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


@dataclass(frozen=True)
class ConsultationRule:
    sources: frozenset[ConsultationState]
    target: ConsultationState | None  # None: the state stays
    roles: frozenset[Role]
    label: str
    done: str


S = ConsultationState
INSOFA = frozenset({Role.INSOFA})
RULES: dict[ConsultationAction, ConsultationRule] = {
    ConsultationAction.CANCEL: ConsultationRule(
        frozenset({S.REQUESTED}), S.CANCELLED, SCHOOL_ROLES, "Anfrage zurückziehen", "Die Anfrage wurde zurückgezogen."
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
        None,
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
        frozenset({S.ANSWERED}), None, SCHOOL_ROLES, "Mitteilung an den ASD beginnen", "Der Entwurf wurde angelegt."
    ),
}
# Only the InsoFa who accepted works on it from then on.
OWNER_ACTIONS = frozenset({ConsultationAction.ARRANGE, ConsultationAction.ANSWER})


def refusal(action: ConsultationAction, state: ConsultationState) -> str:
    return f"„{RULES[action].label}“ ist im Status „{state.label}“ nicht möglich."


def accept_due(requested_at: datetime, settings: dict[str, int]) -> datetime:
    return end_of_nth_working_day(requested_at, settings["consultation_accept_working_days"])


signals = Namespace()
# Sent inside the transaction of the action after its flush; receivers (audit log, notifications)
# add rows to that same transaction.
consultation_changed = signals.signal("consultation-changed")


def apply(
    consultation: Consultation, action: ConsultationAction, actor: User, now: datetime | None = None, **fields: Any
) -> None:
    """Check `action` against the rules, set `fields`, flush; never commits."""
    if action is not ConsultationAction.REQUEST:
        rule = RULES[action]
        if consultation.state not in rule.sources:
            raise ProcessError(refusal(action, consultation.state))
        if rule.target is not None:
            consultation.state = rule.target
    for name, value in fields.items():
        setattr(consultation, name, value)
    try:
        db.session.flush()
    except StaleDataError as exc:
        db.session.rollback()
        raise ConcurrentChange(
            "Die Anfrage wurde gerade von einer anderen Person bearbeitet. Ihre Aktion wurde "
            "nicht ausgeführt. Bitte prüfen Sie den aktuellen Stand."
        ) from exc
    consultation_changed.send(consultation, action=action, actor=actor, now=now or utcnow(), fields=sorted(fields))
