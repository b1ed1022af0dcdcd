"""The fixed question sets, versioned in code. A changed wording is a new version: answers keep the
version they were given to, and the evaluation never mixes versions of a set."""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_QUESTIONS = 5  # the answer table has one column per question (a1 … a5)

SCALE = [
    (1, "1 – trifft gar nicht zu"),
    (2, "2 – trifft eher nicht zu"),
    (3, "3 – teils, teils"),
    (4, "4 – trifft eher zu"),
    (5, "5 – trifft voll zu"),
]
NO_ANSWER = "keine Angabe"


class RoleKind(enum.StrEnum):
    SCHOOL = "school"
    ASD = "asd"

    @property
    def label(self) -> str:
        return {RoleKind.SCHOOL: "Schule", RoleKind.ASD: "ASD"}[self]


class SetKey(enum.StrEnum):
    FEEDBACK = "feedback"  # the school side, after the ASD's feedback
    CLOSING = "closing"  # the assigned ASD worker, after closing
    QUARTER = "quarter"  # every school and ASD user of the districts of a quarterly round


@dataclass(frozen=True)
class QuestionSet:
    key: SetKey
    version: int
    title: str
    intro: str
    questions: tuple[str, ...]
    free_text: str = ""  # the label of the optional free-text question, if the set has one

    def __post_init__(self) -> None:
        assert 3 <= len(self.questions) <= MAX_QUESTIONS


SETS: tuple[QuestionSet, ...] = (
    QuestionSet(
        SetKey.FEEDBACK,
        1,
        "Kurzumfrage nach der Rückmeldung",
        "Wie ist es Ihnen mit dieser Mitteilung ergangen?",
        (
            "Ich wusste, an wen ich mich wenden kann.",
            "Die Rückmeldung kam rechtzeitig.",
            "Die Rückmeldung war für mich verständlich.",
            "Das Ausfüllen der Mitteilung war gut zu schaffen.",
            "Ich fühlte mich mit meiner Sorge ernst genommen.",
        ),
    ),
    QuestionSet(
        SetKey.CLOSING,
        1,
        "Kurzumfrage nach dem Abschluss",
        "Wie war die Zusammenarbeit mit der Schule bei dieser Mitteilung?",
        (
            "Die Mitteilung enthielt die nötigen Informationen.",
            "Die Schule war für Rückfragen erreichbar.",
            "Die Dringlichkeit war zutreffend eingeschätzt.",
            "Die Mitteilung kam rechtzeitig bei uns an.",
        ),
    ),
    QuestionSet(
        SetKey.QUARTER,
        1,
        "Quartalsumfrage zur Zusammenarbeit von Schule und ASD",
        "Wie erleben Sie die Zusammenarbeit in den letzten drei Monaten?",
        (
            "Die Zusammenarbeit zwischen Schule und ASD funktioniert gut.",
            "Ich weiß, wie ich bei einem Verdacht auf Kindeswohlgefährdung vorgehe.",
            "Der Leitfaden hilft mir bei meiner Arbeit.",
            "Die Abläufe in dieser Anwendung sind verständlich.",
        ),
        free_text="Was sollte sich verbessern? (optional)",
    ),
)
CURRENT: dict[SetKey, QuestionSet] = {}
for _set in SETS:  # the highest version of each key is the one asked now
    if _set.key not in CURRENT or CURRENT[_set.key].version < _set.version:
        CURRENT[_set.key] = _set


def question_set(key: str, version: int) -> QuestionSet | None:
    return next((s for s in SETS if s.key == key and s.version == version), None)
