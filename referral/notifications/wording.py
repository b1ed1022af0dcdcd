"""What each notification says, from the point of view of the one who reads it.

One event can reach several kinds of reader: a transfer is news for the school ("went to district
X") and a new case for the receiving district ("came from district Y"); a submission is a new case
for the ASD and news about their school for the school lead. So the wording is chosen per event
*and* per kind of notification (which says who the reader is, see kinds.BY_ROLE).

Each wording has a headline (the e-mail's subject after the case number, and the in-app text) and the
e-mail's first line. They may name only the case number, the school, the districts, the urgency and
what happened; never the child, the family or any free text (PROCESS.md, *Notifications*) – not even
the reason of a transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cases.process import Action
from ..consultations.process import ConsultationAction
from .kinds import EventKind


@dataclass(frozen=True)
class Wording:
    headline: str
    first_line: str

    def fill(self, **values) -> tuple[str, str]:
        return self.headline.format(**values), self.first_line.format(**values)


# Fields: number, school, district (responsible now), from_district (before a transfer), urgency (short).
REFERRAL: dict[tuple[Action, EventKind], Wording] = {
    (Action.SUBMIT, EventKind.NEW_REFERRAL): Wording(
        "Neue Mitteilung im Eingang – {urgency}",
        "Neue Mitteilung im Eingang des ASD {district}: {number} der {school}.",
    ),
    (Action.SUBMIT, EventKind.SCHOOL_SUBMISSION): Wording(
        "Mitteilung Ihrer Schule an den ASD übermittelt",
        "Aus Ihrer Schule ({school}) wurde die Mitteilung {number} an den ASD {district} übermittelt.",
    ),
    (Action.TRANSFER, EventKind.NEW_REFERRAL): Wording(
        "Mitteilung aus Bezirk {from_district} erhalten – {urgency}",
        "Der ASD {from_district} hat die Mitteilung {number} der {school} an den ASD {district} abgegeben "
        "(§ 86 SGB VIII); sie liegt jetzt in Ihrem Eingang, bitte den Eingang bestätigen.",
    ),
    (Action.TRANSFER, EventKind.TRANSFER): Wording(
        "An den ASD {district} abgegeben",
        "Der ASD {from_district} hat die Mitteilung {number} der {school} an den ASD {district} abgegeben; "
        "dieser ist jetzt für sie zuständig.",
    ),
    (Action.ACKNOWLEDGE, EventKind.ACKNOWLEDGED): Wording(
        "Eingang vom ASD bestätigt",
        "Der ASD {district} hat den Eingang der Mitteilung {number} der {school} bestätigt.",
    ),
    (Action.ASK, EventKind.QUESTION): Wording(
        "Rückfrage des ASD", "Der ASD {district} hat eine Rückfrage zur Mitteilung {number} der {school}."
    ),
    (Action.GIVE_FEEDBACK, EventKind.FEEDBACK): Wording(
        "Rückmeldung des ASD",
        "Der ASD {district} hat die Rückmeldung zur Mitteilung {number} der {school} gegeben (§ 4 Abs. 4 KKG).",
    ),
    (Action.ANSWER, EventKind.SCHOOL_REPLY): Wording(
        "Antwort der Schule auf die Rückfrage", "Die {school} hat die Rückfrage zur Mitteilung {number} beantwortet."
    ),
    (Action.ADDENDUM, EventKind.SCHOOL_REPLY): Wording(
        "Nachtrag der Schule", "Die {school} hat zur Mitteilung {number} einen Nachtrag gesendet."
    ),
}

# Fields: number, school, urgency (short).
CONSULTATION: dict[tuple[ConsultationAction, EventKind], Wording] = {
    (ConsultationAction.REQUEST, EventKind.NEW_CONSULTATION): Wording(
        "Neue Anfrage zur Fachberatung", "Neue Anfrage zur Fachberatung im Pool: {number} der {school}."
    ),
    (ConsultationAction.ACCEPT, EventKind.CONSULTATION_UPDATE): Wording(
        "Ihre Anfrage wurde angenommen",
        "Eine insoweit erfahrene Fachkraft hat Ihre Anfrage {number} der {school} angenommen.",
    ),
    (ConsultationAction.ARRANGE, EventKind.CONSULTATION_UPDATE): Wording(
        "Termin für Ihre Fachberatung", "Für Ihre Fachberatung {number} der {school} ist ein Termin vereinbart."
    ),
    (ConsultationAction.ANSWER, EventKind.CONSULTATION_UPDATE): Wording(
        "Empfehlung zu Ihrer Fachberatung",
        "Die insoweit erfahrene Fachkraft hat zu Ihrer Fachberatung {number} der {school} eine Empfehlung gegeben.",
    ),
}

# Fields: number, school, what (which deadline), since. The headline is the whole subject.
OVERDUE = Wording("Erinnerung {number}: {what}", "Erinnerung: {what} ({since}) – {number} der {school}.")
