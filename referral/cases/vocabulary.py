"""The closed vocabularies of the referral form (PROCESS.md, section *Referral*).

Stored values are English codes; people read the German labels.
"""

from __future__ import annotations

from ..kernel.vocabulary import Labelled


class Urgency(Labelled):
    ACUTE = "acute"
    URGENT = "urgent"
    CLARIFY = "clarify"

    @classmethod
    def _labels(cls):
        return {
            cls.ACUTE: "akut – Gefahr jetzt (telefonischer Kontakt mit dem ASD erfolgt)",
            cls.URGENT: "dringend – Handeln innerhalb weniger Tage",
            cls.CLARIFY: "Klärung – Unterstützung nötig, keine unmittelbare Gefahr",
        }

    @property
    def short(self) -> str:
        return {Urgency.ACUTE: "akut", Urgency.URGENT: "dringend", Urgency.CLARIFY: "Klärung"}[self]

    @property
    def rank(self) -> int:
        return {Urgency.ACUTE: 0, Urgency.URGENT: 1, Urgency.CLARIFY: 2}[self]


class Category(Labelled):
    NEGLECT = "neglect"
    PSYCHOLOGICAL_ABUSE = "psychological_abuse"
    PHYSICAL_ABUSE = "physical_abuse"
    SEXUAL_VIOLENCE = "sexual_violence"
    DOMESTIC_VIOLENCE = "domestic_violence"
    PARENTAL_ADDICTION_OR_ILLNESS = "parental_addiction_or_illness"
    SCHOOL_ABSENTEEISM = "school_absenteeism"
    OTHER = "other"

    @classmethod
    def _labels(cls):
        return {
            cls.NEGLECT: "Vernachlässigung",
            cls.PSYCHOLOGICAL_ABUSE: "Psychische Misshandlung",
            cls.PHYSICAL_ABUSE: "Körperliche Misshandlung",
            cls.SEXUAL_VIOLENCE: "Sexuelle Gewalt",
            cls.DOMESTIC_VIOLENCE: "Häusliche Gewalt",
            cls.PARENTAL_ADDICTION_OR_ILLNESS: "Sucht oder psychische Erkrankung der Eltern",
            cls.SCHOOL_ABSENTEEISM: "Schulabsentismus",
            cls.OTHER: "Sonstiges",
        }

    @property
    def help(self) -> str:
        # Help texts with examples so that schools choose categories consistently.
        return {
            Category.NEGLECT: "Grundbedürfnisse werden dauerhaft nicht erfüllt. Beispiele: kommt regelmäßig "
            "hungrig oder ohne Frühstück, unpassende Kleidung bei Kälte, unbehandelte Krankheiten oder "
            "Zahnschmerzen, starker Körpergeruch über Wochen, fehlende Aufsicht.",
            Category.PSYCHOLOGICAL_ABUSE: "Das Kind wird herabgesetzt, bedroht, isoliert oder in "
            "Elternkonflikte hineingezogen. Beispiele: berichtet von ständigem Anschreien oder Drohungen, "
            "große Angst vor dem Abholen, wird vor anderen gedemütigt.",
            Category.PHYSICAL_ABUSE: "Körperliche Gewalt gegen das Kind. Beispiele: Hämatome an "
            "ungewöhnlichen Stellen (Oberarme, Rücken, Gesäß), Striemen, Brandwunden, unplausible "
            "Erklärungen für Verletzungen. Bitte die Körperskizze nutzen.",
            Category.SEXUAL_VIOLENCE: "Hinweise auf sexuelle Übergriffe. Beispiele: Äußerungen des Kindes, "
            "nicht altersgemäßes sexualisiertes Verhalten, Verletzungen im Intimbereich. Nicht selbst "
            "ermitteln, das Kind nicht befragen – Äußerungen wörtlich festhalten.",
            Category.DOMESTIC_VIOLENCE: "Gewalt zwischen Erwachsenen im Haushalt, die das Kind miterlebt. "
            "Beispiele: Kind berichtet von Streit mit Schlägen, Polizeieinsätzen, Verletzungen eines "
            "Elternteils.",
            Category.PARENTAL_ADDICTION_OR_ILLNESS: "Eine Sucht oder psychische Erkrankung eines Elternteils "
            "beeinträchtigt die Versorgung. Beispiele: Elternteil erscheint wiederholt alkoholisiert, "
            "Kind übernimmt Versorgung von Geschwistern, berichtet von tagelangem Im-Bett-Liegen.",
            Category.SCHOOL_ABSENTEEISM: "Häufiges unentschuldigtes Fehlen oder Fernhalten vom Unterricht. "
            "Beispiele: Fehlzeiten über Wochen, Entschuldigungen ohne Arztbesuch, Kind sagt, es müsse zu "
            "Hause bleiben.",
            Category.OTHER: "Gewichtige Anhaltspunkte, die in keine der Kategorien passen. Bitte in der "
            "Beschreibung genau schildern.",
        }[self]


class ReporterFunction(Labelled):
    TEACHER = "teacher"
    SCHOOL_SOCIAL_WORK = "school_social_work"
    SCHOOL_LEAD = "school_lead"
    OGS = "ogs"

    @classmethod
    def _labels(cls):
        return {
            cls.TEACHER: "Lehrkraft",
            cls.SCHOOL_SOCIAL_WORK: "Schulsozialarbeit",
            cls.SCHOOL_LEAD: "Schulleitung",
            cls.OGS: "Offene Ganztagsschule (OGS)",
        }

    @property
    def feedback_owed(self) -> bool:
        # § 4 Abs. 4 KKG: the feedback right belongs to the professions of § 4 Abs. 1 KKG, not OGS staff.
        return self is not ReporterFunction.OGS


class SchoolActionKind(Labelled):
    PARENTS_TALK = "parents_talk"
    CHILD_INVOLVED = "child_involved"
    SCHOOL_LEAD_INVOLVED = "school_lead_involved"
    INSOFA_CONSULTED = "insofa_consulted"
    PROFESSIONALS_CONTACTED = "professionals_contacted"
    HELP_OFFERED = "help_offered"

    @classmethod
    def _labels(cls):
        return {
            cls.PARENTS_TALK: "Gespräch mit den Eltern",
            cls.CHILD_INVOLVED: "Kind einbezogen",
            cls.SCHOOL_LEAD_INVOLVED: "Schulleitung einbezogen",
            cls.INSOFA_CONSULTED: "Insoweit erfahrene Fachkraft (InsoFa) beraten",
            cls.PROFESSIONALS_CONTACTED: "Andere Fachkräfte kontaktiert",
            cls.HELP_OFFERED: "Hilfe angeboten",
        }

    @property
    def detail_label(self) -> str | None:
        return {
            SchoolActionKind.PARENTS_TALK: "Ergebnis des Gesprächs",
            SchoolActionKind.INSOFA_CONSULTED: "Name der InsoFa",
            SchoolActionKind.PROFESSIONALS_CONTACTED: "Welche Fachkräfte?",
            SchoolActionKind.HELP_OFFERED: "Welche Hilfe?",
        }.get(self)


class InformedStatus(Labelled):
    YES = "yes"
    NO_ENDANGERS = "no_endangers"
    NO_OTHER = "no_other"

    @classmethod
    def _labels(cls):
        return {
            cls.YES: "Ja, informiert am",
            cls.NO_ENDANGERS: "Nein, weil es den Schutz des Kindes gefährden würde",
            cls.NO_OTHER: "Nein, aus einem anderen Grund",
        }


class PersonKind(Labelled):
    MOTHER = "mother"
    FATHER = "father"
    CARER = "carer"
    HOUSEHOLD = "household"

    @classmethod
    def _labels(cls):
        return {
            cls.MOTHER: "Mutter",
            cls.FATHER: "Vater",
            cls.CARER: "Andere Bezugsperson",
            cls.HOUSEHOLD: "Weitere Person im Haushalt",
        }


class Relation(Labelled):
    BIRTH = "birth"
    STEP = "step"
    FOSTER = "foster"
    OTHER = "other"

    @classmethod
    def _labels(cls):
        return {
            cls.BIRTH: "leiblicher Elternteil",
            cls.STEP: "Stiefelternteil",
            cls.FOSTER: "Pflegeelternteil",
            cls.OTHER: "andere Beziehung",
        }


class BodySide(Labelled):
    FRONT = "front"
    BACK = "back"

    @classmethod
    def _labels(cls):
        return {cls.FRONT: "Vorderseite", cls.BACK: "Rückseite"}


class BodyRegion(Labelled):
    HEAD = "head"
    FACE = "face"
    NECK = "neck"
    CHEST = "chest"
    BELLY = "belly"
    UPPER_BACK = "upper_back"
    LOWER_BACK = "lower_back"
    BUTTOCKS = "buttocks"
    GENITALS = "genitals"
    LEFT_UPPER_ARM = "left_upper_arm"
    RIGHT_UPPER_ARM = "right_upper_arm"
    LEFT_FOREARM = "left_forearm"
    RIGHT_FOREARM = "right_forearm"
    LEFT_HAND = "left_hand"
    RIGHT_HAND = "right_hand"
    LEFT_THIGH = "left_thigh"
    RIGHT_THIGH = "right_thigh"
    LEFT_LOWER_LEG = "left_lower_leg"
    RIGHT_LOWER_LEG = "right_lower_leg"
    LEFT_FOOT = "left_foot"
    RIGHT_FOOT = "right_foot"

    @classmethod
    def _labels(cls):
        return {
            cls.HEAD: "Kopf",
            cls.FACE: "Gesicht",
            cls.NECK: "Hals",
            cls.CHEST: "Brust",
            cls.BELLY: "Bauch",
            cls.UPPER_BACK: "oberer Rücken",
            cls.LOWER_BACK: "unterer Rücken",
            cls.BUTTOCKS: "Gesäß",
            cls.GENITALS: "Intimbereich",
            cls.LEFT_UPPER_ARM: "linker Oberarm",
            cls.RIGHT_UPPER_ARM: "rechter Oberarm",
            cls.LEFT_FOREARM: "linker Unterarm",
            cls.RIGHT_FOREARM: "rechter Unterarm",
            cls.LEFT_HAND: "linke Hand",
            cls.RIGHT_HAND: "rechte Hand",
            cls.LEFT_THIGH: "linker Oberschenkel",
            cls.RIGHT_THIGH: "rechter Oberschenkel",
            cls.LEFT_LOWER_LEG: "linker Unterschenkel",
            cls.RIGHT_LOWER_LEG: "rechter Unterschenkel",
            cls.LEFT_FOOT: "linker Fuß",
            cls.RIGHT_FOOT: "rechter Fuß",
        }


# The regions that can be seen from each side of the outline.
FRONT_ONLY = {BodyRegion.FACE, BodyRegion.CHEST, BodyRegion.BELLY, BodyRegion.GENITALS}
BACK_ONLY = {BodyRegion.UPPER_BACK, BodyRegion.LOWER_BACK, BodyRegion.BUTTOCKS}


def regions_for(side: BodySide) -> list[BodyRegion]:
    hidden = BACK_ONLY if side is BodySide.FRONT else FRONT_ONLY
    return [r for r in BodyRegion if r not in hidden]


class MessageKind(Labelled):
    QUESTION = "question"
    ANSWER = "answer"
    ADDENDUM = "addendum"

    @classmethod
    def _labels(cls):
        return {
            cls.QUESTION: "Rückfrage des ASD",
            cls.ANSWER: "Antwort der Schule",
            cls.ADDENDUM: "Nachtrag der Schule",
        }


class AssessmentResult(Labelled):
    """The four results of the official § 8a SGB VIII statistics."""

    ACUTE = "acute"
    LATENT = "latent"
    SUPPORT_NEEDED = "support_needed"
    NO_RISK = "no_risk"

    @classmethod
    def _labels(cls):
        return {
            cls.ACUTE: "Akute Kindeswohlgefährdung",
            cls.LATENT: "Latente Kindeswohlgefährdung",
            cls.SUPPORT_NEEDED: "Keine Gefährdung, aber Hilfe-/Unterstützungsbedarf",
            cls.NO_RISK: "Keine Gefährdung und kein (weiterer) Hilfebedarf",
        }


class Measure(Labelled):
    HELP_OFFER = "help_offer"
    PROTECTION_PLAN = "protection_plan"
    TAKING_INTO_CARE = "taking_into_care"
    FAMILY_COURT = "family_court"
    NONE = "none"

    @classmethod
    def _labels(cls):
        return {
            cls.HELP_OFFER: "Hilfeangebot",
            cls.PROTECTION_PLAN: "Schutzplan",
            cls.TAKING_INTO_CARE: "Inobhutnahme",
            cls.FAMILY_COURT: "Familiengericht",
            cls.NONE: "keine",
        }
