"""Kinds of e-mail a user can receive, and which of them a role cannot switch off.

In the app every notification is always shown; the choice is only about e-mail. PROCESS.md makes
two kinds mandatory: a new referral in the ASD's inbox, and overdue reminders.
"""

from __future__ import annotations

import enum

from ..accounts.models import Role


class EventKind(enum.StrEnum):
    NEW_REFERRAL = "new_referral"
    SCHOOL_SUBMISSION = "school_submission"
    ACKNOWLEDGED = "acknowledged"
    QUESTION = "question"
    FEEDBACK = "feedback"
    TRANSFER = "transfer"
    SCHOOL_REPLY = "school_reply"
    OVERDUE = "overdue"
    NEW_CONSULTATION = "new_consultation"
    CONSULTATION_UPDATE = "consultation_update"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    EventKind.NEW_REFERRAL: "Neue Mitteilung im Eingang des Bezirks (auch nach Abgabe aus einem anderen Bezirk)",
    EventKind.SCHOOL_SUBMISSION: "Eine Lehrkraft Ihrer Schule hat eine Mitteilung eingereicht",
    EventKind.ACKNOWLEDGED: "Der ASD hat den Eingang bestätigt",
    EventKind.QUESTION: "Rückfrage des ASD",
    EventKind.FEEDBACK: "Rückmeldung des ASD",
    EventKind.TRANSFER: "Mitteilung an einen anderen Bezirk abgegeben",
    EventKind.SCHOOL_REPLY: "Antwort oder Nachtrag der Schule zu Ihrem Fall",
    EventKind.OVERDUE: "Erinnerung an überfällige Fristen",
    EventKind.NEW_CONSULTATION: "Neue Anfrage zur Fachberatung im Pool",
    EventKind.CONSULTATION_UPDATE: "Ihre Fachberatung: angenommen, Termin, Empfehlung",
}

SCHOOL = {
    EventKind.ACKNOWLEDGED,
    EventKind.QUESTION,
    EventKind.FEEDBACK,
    EventKind.TRANSFER,
    EventKind.CONSULTATION_UPDATE,
}
BY_ROLE: dict[Role, set[EventKind]] = {
    Role.TEACHER: SCHOOL,
    Role.SCHOOL_LEAD: SCHOOL | {EventKind.SCHOOL_SUBMISSION},
    Role.ASD_WORKER: {EventKind.NEW_REFERRAL, EventKind.SCHOOL_REPLY},
    Role.ASD_LEAD: {EventKind.NEW_REFERRAL, EventKind.SCHOOL_REPLY, EventKind.OVERDUE},
    Role.INSOFA: {EventKind.NEW_CONSULTATION, EventKind.OVERDUE},
    Role.COORDINATOR: set(),
    Role.ADMIN: set(),
}
MANDATORY: dict[Role, set[EventKind]] = {
    Role.ASD_WORKER: {EventKind.NEW_REFERRAL},
    Role.ASD_LEAD: {EventKind.NEW_REFERRAL, EventKind.OVERDUE},
    Role.INSOFA: {EventKind.OVERDUE},
}


def kinds_for(user) -> list[EventKind]:
    """The kinds of e-mail `user` can receive, in the order of EventKind."""
    roles = {m.role for m in user.memberships}
    mine = set().union(*(BY_ROLE[r] for r in roles)) if roles else set()
    return [k for k in EventKind if k in mine]


def mandatory_for(user) -> set[EventKind]:
    roles = {m.role for m in user.memberships}
    return set().union(*(MANDATORY.get(r, set()) for r in roles)) if roles else set()
