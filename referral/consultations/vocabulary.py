"""The closed vocabularies of a consultation (PROCESS.md, *Consultation*)."""

from __future__ import annotations

from ..kernel.vocabulary import Labelled
from ..kernel.wording import counted


class ConsultationUrgency(Labelled):
    # Acute danger is never a consultation: the form sends the school to the phone (ASD, 110).
    URGENT = "urgent"
    NORMAL = "normal"

    @classmethod
    def _labels(cls):
        return {
            cls.URGENT: "dringend – steht im Pool oben und wird vorrangig angenommen",
            cls.NORMAL: "normal – Annahme innerhalb der vereinbarten Frist",
        }

    @classmethod
    def choices_within(cls, accept_working_days: int) -> list[tuple[str, str]]:
        """The choices of the form, with the acceptance deadline as the admin set it."""
        within = f"normal – Annahme innerhalb von {counted(accept_working_days, 'Arbeitstag', 'Arbeitstagen')}"
        return [(u.value, within if u is cls.NORMAL else u.label) for u in cls]

    @property
    def short(self) -> str:
        return {ConsultationUrgency.URGENT: "dringend", ConsultationUrgency.NORMAL: "normal"}[self]


class ContactWay(Labelled):
    PHONE = "phone"
    IN_PERSON = "in_person"

    @classmethod
    def _labels(cls):
        return {cls.PHONE: "Telefon", cls.IN_PERSON: "persönliches Gespräch"}


class Recommendation(Labelled):
    """The three answers of PROCESS.md."""

    NO_WEIGHTY_INDICATIONS = "no_weighty_indications"
    TALK_TO_PARENTS = "talk_to_parents"
    INFORM_ASD = "inform_asd"

    @classmethod
    def _labels(cls):
        return {
            cls.NO_WEIGHTY_INDICATIONS: "Keine gewichtigen Anhaltspunkte – die Schule setzt ihre eigene Förderung fort",
            cls.TALK_TO_PARENTS: "Gespräch mit den Eltern führen, Hilfe anbieten, erneut einschätzen",
            cls.INFORM_ASD: "Den ASD informieren (Mitteilung nach § 4 Abs. 3 KKG)",
        }


CLASS_LEVELS = [
    ("1", "1"),
    ("2", "2"),
    ("3", "3"),
    ("4", "4"),
    ("other", "andere (z. B. Schuleingangsphase, Förderklasse)"),
]
