"""The survey's one screen (built from its question set) and the coordinator's round form."""

from __future__ import annotations

import functools
import re

from wtforms import TextAreaField
from wtforms.validators import Optional, ValidationError

from ..consultations.forms import BIRTH_DATE, Pseudonymised
from ..kernel.forms import BaseForm, ErrorSummary, MultiCheckboxField, OptionalRadioField, at_most, options, today
from .questions import NO_ANSWER, SCALE, QuestionSet

# The case numbers of the app: referrals WE-2026-0001, consultations FB-2026-0007.
CASE_NUMBER = re.compile(r"\b[A-Za-zÄÖÜäöü]{2,4}-\d{4}-\d{1,6}\b")
LEAVE_OUT = "Bitte weglassen: hier gehören keine Namen, Geburtsdaten, Anschriften und Fallnummern hin."


class NoCaseData(Pseudonymised):
    """The consultation's guard, stricter: any date of birth (parents too), and case numbers."""

    def __call__(self, form, field):
        super().__call__(form, field)
        value = field.data or ""
        for match in BIRTH_DATE.finditer(value):
            if 1900 <= int(match.group(1)) <= today().year - 4:
                raise ValidationError(f"„{match.group(0)}“ sieht nach einem Geburtsdatum aus. {LEAVE_OUT}")
        match = CASE_NUMBER.search(value)
        if match:
            raise ValidationError(f"„{match.group(0)}“ sieht nach einer Fallnummer aus. {LEAVE_OUT}")


class SurveyForm(ErrorSummary, BaseForm):
    """Fields a1 … an (and `comment`) are added per question set: see `survey_form`."""

    def values(self, questions: QuestionSet) -> list[int | None]:
        return [
            int(getattr(self, f"a{i}").data) if getattr(self, f"a{i}").data else None
            for i in range(1, len(questions.questions) + 1)
        ]


COMMENT_LIMIT = 1000


@functools.cache
def form_class(questions: QuestionSet) -> type[SurveyForm]:
    """The form of one question set: one class per set and version (not one per request)."""
    fields: dict = {
        f"a{i}": OptionalRadioField(
            text, choices=options([("", NO_ANSWER), *((str(v), label) for v, label in SCALE)]), default=""
        )
        for i, text in enumerate(questions.questions, 1)
    }
    if questions.free_text:
        fields["comment"] = TextAreaField(
            questions.free_text, validators=[Optional(), at_most(COMMENT_LIMIT), NoCaseData()]
        )
    return type(f"SurveyForm_{questions.key}_{questions.version}", (SurveyForm,), fields)


def survey_form(questions: QuestionSet, **kwargs) -> SurveyForm:
    return form_class(questions)(**kwargs)


class RoundForm(ErrorSummary, BaseForm):
    districts = MultiCheckboxField("Bezirke, deren Schulen und ASD-Fachkräfte befragt werden", coerce=int)

    def validate_districts(self, field):
        if not field.data:
            raise ValidationError("Bitte mindestens einen Bezirk wählen.")
