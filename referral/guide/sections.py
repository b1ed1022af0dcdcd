"""The guide's fixed sections: stable keys and anchors, so that the referral form can link each of
its sections to the part of the guide that explains it. The coordinator edits their texts, never
their list (a new section is a code change, with its default text in defaults.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Part(enum.StrEnum):
    """Whom a group of sections is written for; one guide for all roles, each reads all of it."""

    ALL = "alle"
    SCHOOL = "schule"
    ASD = "asd"

    @property
    def heading(self) -> str:
        return {
            Part.ALL: "Für alle: Grundsätze und Notfall",
            Part.SCHOOL: "Für Schulen: die Mitteilung an den ASD",
            Part.ASD: "Für den ASD: Eingang, Einschätzung, Rückmeldung",
        }[self]


class Facts(enum.StrEnum):
    """The box of current numbers shown with a section, read from the settings and the directory."""

    NONE = ""
    DUTY = "duty"  # the districts' duty phones and hours, 110
    POOL = "pool"  # the InsoFa pool and the deadline for accepting a consultation
    ASD_CONTACT = "asd_contact"  # the ASD's contact person for the user's school(s)
    ACKNOWLEDGE = "acknowledge"  # the deadlines for the acknowledgement
    AFTER_SUBMIT = "after_submit"  # acknowledgement, feedback and deletion deadlines
    FEEDBACK = "feedback"  # the feedback deadline
    ATTACHMENTS = "attachments"  # the size limit of attachments


@dataclass(frozen=True)
class Section:
    key: str  # also the anchor on the page (#key)
    title: str
    part: Part
    facts: Facts = Facts.NONE


SECTIONS: tuple[Section, ...] = (
    Section("ueberblick", "Der Weg im Überblick", Part.ALL, Facts.ASD_CONTACT),
    Section("akut", "In akuter Gefahr: sofort anrufen", Part.ALL, Facts.DUTY),
    Section("fachberatung", "Unsicher? Die Fachberatung durch die InsoFa", Part.ALL, Facts.POOL),
    Section("kind", "1. Kind", Part.SCHOOL),
    Section("eltern", "2. Eltern und Haushalt", Part.SCHOOL),
    Section("beobachtungen", "3. Beobachtungen", Part.SCHOOL),
    Section("bisher", "4. Was die Schule bereits getan hat", Part.SCHOOL),
    Section("information", "5. Information der Betroffenen", Part.SCHOOL),
    Section("dringlichkeit", "6. Dringlichkeit", Part.SCHOOL, Facts.ACKNOWLEDGE),
    Section("meldende-person", "7. Meldende Person", Part.SCHOOL),
    Section("anhaenge", "8. Anhänge", Part.SCHOOL, Facts.ATTACHMENTS),
    Section("nach-dem-absenden", "Nach dem Absenden", Part.SCHOOL, Facts.AFTER_SUBMIT),
    Section("rueckmeldung", "Die Rückmeldung an die Schule", Part.SCHOOL, Facts.FEEDBACK),
    Section("asd-eingang", "Eingang und Eingangsbestätigung", Part.ASD, Facts.ACKNOWLEDGE),
    Section("asd-einschaetzung", "Übernahme, Rückfragen und Gefährdungseinschätzung", Part.ASD),
    Section("asd-rueckmeldung", "Rückmeldung an die Schule und Abschluss", Part.ASD, Facts.FEEDBACK),
)

KEYS: tuple[str, ...] = tuple(section.key for section in SECTIONS)
BY_KEY: dict[str, Section] = {section.key: section for section in SECTIONS}

# The referral form's sections (templates/cases/form.html, "s1" … "s8") and the guide's part for each.
FORM_SECTIONS: dict[int, str] = {
    1: "kind",
    2: "eltern",
    3: "beobachtungen",
    4: "bisher",
    5: "information",
    6: "dringlichkeit",
    7: "meldende-person",
    8: "anhaenge",
}
