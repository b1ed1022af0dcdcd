"""The form toolkit every feature uses: German messages, choices, NUL-free and printable text, the error summary."""

from __future__ import annotations

from datetime import date, datetime

from flask_wtf import FlaskForm
from wtforms import FieldList, Form, FormField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..printable import Printable
from ..timeutil import to_local, utcnow

CHOICE_ERROR = "Bitte eine der angebotenen Möglichkeiten wählen."


def options(pairs) -> list[SelectChoice]:
    """Choices as WTForms wants them; templates read `.value` and `.label`."""
    return [SelectChoice(value if isinstance(value, int) else str(value), label) for value, label in pairs]


PLEASE_CHOOSE = [("", "– bitte wählen –")]
YES_NO = options([("yes", "ja"), ("no", "nein")])


class OfferedOnly:
    """Empty is allowed (drafts may be incomplete); anything else must be one of the offered choices."""

    def pre_validate(self, form):
        if self.data not in (None, "") and self.data not in {c.value for c in self.choices}:
            raise ValidationError(CHOICE_ERROR)


class OptionalRadioField(OfferedOnly, RadioField):
    pass


class OptionalSelectField(OfferedOnly, SelectField):
    pass


def optional_int(value):
    return int(value) if value not in (None, "") else None


class RequiredChoiceField(OfferedOnly, SelectField):
    """A required choice among ids set by the view: it starts with an empty "– bitte wählen –", as HTML
    wants of a required select, and the required validator (not the choice check) speaks for empty."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("coerce", optional_int)
        super().__init__(*args, **kwargs)

    def offer(self, pairs) -> None:
        self.choices = options(PLEASE_CHOOSE + list(pairs))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("invalid_choice_message", CHOICE_ERROR)
        super().__init__(*args, **kwargs)


def without_nul(value):
    """NUL characters have no place in text and PostgreSQL refuses them: they are dropped."""
    return value.replace("\x00", "") if isinstance(value, str) else value


class CleanInput:
    """Form meta: every field drops NUL characters from what was sent."""

    def bind_field(self, form, unbound_field, options):
        if unbound_field.field_class not in (FieldList, FormField):  # those pass the data on to their fields
            filters = list(unbound_field.kwargs.get("filters") or [])
            if without_nul not in filters:
                unbound_field.kwargs["filters"] = [without_nul, *filters]
        return unbound_field.bind(form=form, **options)


class GermanForm(Form):
    """Sub-forms get WTForms' own messages (dates, numbers) in German as well."""

    class Meta(CleanInput, Form.Meta):
        locales = ("de_DE", "de")


class BaseForm(FlaskForm):
    class Meta(CleanInput, FlaskForm.Meta):
        pass


def at_most(max_length: int) -> Length:
    return Length(max=max_length, message=f"Höchstens {max_length} Zeichen.")


# Printable(): everything typed here ends up in the PDF of record, which has only the fonts' characters.
def text(label, max_length, **kwargs):
    return StringField(label, validators=[Optional(), at_most(max_length), Printable()], **kwargs)


def long_text(label, max_length=10000, **kwargs):
    return TextAreaField(label, validators=[Optional(), at_most(max_length), Printable()], **kwargs)


def yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def as_yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no"}.get(value, "")


def today() -> date:
    return to_local(utcnow()).date()


class NotInFuture:
    """Things that already happened (observations, talks, calls) cannot lie in the future, nor in a
    past no referral is about (a typo like 0202 instead of 2026)."""

    def __init__(self, earliest_year: int = 2000):
        self.earliest_year = earliest_year

    def __call__(self, form, field):
        if not field.data:
            return
        if field.data.year < self.earliest_year:
            raise ValidationError(f"Bitte das Datum prüfen: es liegt vor {self.earliest_year}.")
        if isinstance(field.data, datetime):
            if field.data > to_local(utcnow()).replace(tzinfo=None):
                raise ValidationError("Der Zeitpunkt darf nicht in der Zukunft liegen.")
        elif field.data > today():
            raise ValidationError("Das Datum darf nicht in der Zukunft liegen.")


def anchor(field) -> str:
    """Where an error link takes the focus: the first option of a group, else the field itself."""
    return f"{field.id}-0" if isinstance(field, (RadioField, SelectMultipleField)) else field.id


class ErrorSummary:
    """The list of errors above a form, each naming where it is and linking to the field."""

    def section_of(self, name: str) -> str | None:
        return None

    def row_of(self, list_name: str, index: int, entry) -> str:
        return f"{list_name} {index + 1}"

    def error_items(self) -> list[tuple[str, str, list[str]]]:
        items = []
        for field in self:
            if isinstance(field, FieldList):
                own = [e for e in field.errors if isinstance(e, str)]
                if own:
                    items.append((field.id, field.label.text, own))
                for index, entry in enumerate(field):
                    row = self.row_of(field.name, index, entry.form)
                    items += [
                        (anchor(sub), f"{row} – {sub.label.text}", sub.errors) for sub in entry.form if sub.errors
                    ]
            elif field.errors:
                section = self.section_of(field.name)
                items.append(
                    (
                        anchor(field),
                        f"{section} – {field.label.text}" if section else field.label.text,
                        list(field.errors),
                    )
                )
        return items


class ActionForm(BaseForm):
    """An empty form: CSRF protection for the buttons that only take an action."""


PHONE = Regexp(r"^[0-9 +()/\-]*$", message="Bitte nur Ziffern, Leerzeichen und + ( ) / - verwenden.")
