from __future__ import annotations

from wtforms import DateField, SelectField, StringField
from wtforms.validators import Optional, ValidationError

from ..kernel.forms import BaseForm, ErrorSummary, at_most, options
from .log import ACTION_LABELS


class AuditSearchForm(ErrorSummary, BaseForm):
    class Meta(BaseForm.Meta):
        csrf = False
        locales = ("de_DE", "de")

    date_from = DateField("Von (Datum)", validators=[Optional()])
    date_to = DateField("Bis (Datum)", validators=[Optional()])
    actor = StringField("Person (Name oder E-Mail)", validators=[Optional(), at_most(100)])
    action = SelectField(
        "Aktion",
        choices=options([("", "alle")] + sorted(ACTION_LABELS.items(), key=lambda i: i[1])),
        validate_choice=False,
    )
    case_number = StringField("Vorgangsnummer", validators=[Optional(), at_most(20)])
    school = SelectField("Schule", validate_choice=False)
    district = SelectField("Bezirk", validate_choice=False)

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("Das Ende des Zeitraums liegt vor seinem Anfang.")
