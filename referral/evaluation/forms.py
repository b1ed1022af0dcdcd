from __future__ import annotations

from wtforms import DateField, SelectField
from wtforms.validators import Optional

from ..kernel.forms import CHOICE_ERROR, BaseForm, ErrorSummary

PERIOD_KINDS = [("school_year", "Schuljahr"), ("quarter", "Quartal"), ("month", "Monat"), ("free", "freier Zeitraum")]


class EvaluationFilterForm(ErrorSummary, BaseForm):
    class Meta:
        csrf = False  # a GET filter: bookmarkable, changes nothing

    period = SelectField("Zeitraum", choices=PERIOD_KINDS, default="school_year")
    day = DateField("Tag im Zeitraum", validators=[Optional()])
    first = DateField("von", validators=[Optional()])
    last = DateField("bis", validators=[Optional()])
    # 0: all. The choices are set by the view from the database.
    district = SelectField("Bezirk", coerce=int, default=0, invalid_choice_message=CHOICE_ERROR)
    school = SelectField("Schule", coerce=int, default=0, invalid_choice_message=CHOICE_ERROR)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in (self.day, self.first, self.last):
            if field.data and not 2000 <= field.data.year <= 2100:
                field.errors = [*field.errors, "Bitte ein Datum zwischen 2000 und 2100 angeben."]
                valid = False
        if self.period.data != "free" or not valid:
            return valid
        # Checked here: the date fields are Optional(), which ends their own validation when empty.
        first, last = self.first.data, self.last.data
        if not first:
            self.first.errors = [*self.first.errors, "Bitte den Beginn des Zeitraums angeben."]
        if not last:
            self.last.errors = [*self.last.errors, "Bitte das Ende des Zeitraums angeben."]
        elif first and last < first:
            self.last.errors = [*self.last.errors, "Das Ende liegt vor dem Beginn."]
        elif first and (last - first).days > 3660:
            self.last.errors = [*self.last.errors, "Bitte höchstens zehn Jahre wählen."]
        return valid and not self.first.errors and not self.last.errors
