"""Forms of a consultation. German labels; errors go next to their fields."""

from __future__ import annotations

import re
from datetime import timedelta

from wtforms import BooleanField, DateTimeLocalField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError

from ..cases.vocabulary import Category
from ..kernel.forms import (
    PHONE,
    BaseForm,
    ErrorSummary,
    MultiCheckboxField,
    OptionalRadioField,
    at_most,
    options,
    text,
    today,
)
from ..kernel.settings import deadline_settings
from ..timeutil import to_local, utcnow
from .vocabulary import CLASS_LEVELS, ConsultationUrgency, ContactWay, Recommendation

BIRTH_DATE = re.compile(r"\b\d{1,2}\.\s?\d{1,2}\.\s?((?:19|20)\d{2})\b")
# A street name ending in -straße, -weg, … (not the bare word: "Platz 1" in a race is no address).
STREET = re.compile(
    r"\b[\wäöüÄÖÜß-]{2,}(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm)\s+\d+\s?[a-z]?\b", re.IGNORECASE
)


class Pseudonymised:
    """A guard for the free text: refuse what looks like a birth date or a street address.

    The form warns that no names belong here; names cannot be recognised reliably, dates and
    addresses can. A date of an observation (this year or last) is fine."""

    def __call__(self, form, field):
        value = field.data or ""
        for match in BIRTH_DATE.finditer(value):
            # A year in which a primary school child can have been born (4 to 15 years ago).
            if today().year - 15 <= int(match.group(1)) <= today().year - 4:
                raise ValidationError(
                    f"„{match.group(0)}“ sieht nach einem Geburtsdatum aus. Bitte nur das Alter "
                    "angeben: hier gehören keine Namen, Geburtsdaten und Anschriften hin."
                )
        match = STREET.search(value)
        if match:
            raise ValidationError(
                f"„{match.group(0)}“ sieht nach einer Anschrift aus. Bitte weglassen: hier gehören "
                "keine Namen, Geburtsdaten und Anschriften hin."
            )


def required_text(label, max_length, message, **kwargs):
    return TextAreaField(label, validators=[DataRequired(message), at_most(max_length), Pseudonymised()], **kwargs)


class ConsultationForm(ErrorSummary, BaseForm):
    child_age = IntegerField(
        "Alter des Kindes (Jahre)",
        validators=[
            InputRequired("Bitte das Alter in Jahren angeben."),
            NumberRange(min=4, max=14, message="Bitte das Alter prüfen: Grundschulkinder sind 4 bis 14 Jahre alt."),
        ],
    )
    class_level = OptionalRadioField(
        "Klassenstufe", choices=options(CLASS_LEVELS), validators=[InputRequired("Bitte die Klassenstufe wählen.")]
    )
    categories = MultiCheckboxField("Worum geht es? (optional, mehrere möglich)", choices=options(Category.choices()))
    observations = required_text("Beobachtungen", 5000, "Bitte beschreiben Sie, was Sie beobachtet haben.")
    question = required_text("Ihre Frage an die InsoFa", 2000, "Bitte formulieren Sie Ihre Frage.")
    urgency = OptionalRadioField(
        "Dringlichkeit",
        choices=options(ConsultationUrgency.choices()),  # with the configured deadline: __init__
        validators=[InputRequired("Bitte die Dringlichkeit wählen.")],
    )
    contact_way = OptionalRadioField(
        "Wie möchten Sie beraten werden?",
        choices=options(ContactWay.choices()),
        validators=[InputRequired("Bitte wählen, wie Sie beraten werden möchten.")],
    )
    contact_phone = StringField(
        "Ihre Telefonnummer für die InsoFa",
        validators=[
            DataRequired("Bitte eine Telefonnummer angeben, unter der die InsoFa Sie erreicht."),
            at_most(40),
            PHONE,
        ],
        render_kw={"autocomplete": "tel"},
    )  # the asking teacher's own number (WCAG 1.3.5)
    reachable = text("Wann sind Sie gut erreichbar?", 200)
    pseudonymised = BooleanField(
        "Ich habe keine Namen, Geburtsdaten oder Anschriften eingetragen",
        validators=[
            DataRequired("Bitte bestätigen Sie, dass die Anfrage keine Namen, Geburtsdaten oder Anschriften enthält.")
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = deadline_settings()["consultation_accept_working_days"]
        self.urgency.choices = options(ConsultationUrgency.choices_within(days))

    def values(self) -> dict:
        return {
            "child_age": self.child_age.data,
            "class_level": self.class_level.data,
            "observations": self.observations.data.strip(),
            "question": self.question.data.strip(),
            "urgency": ConsultationUrgency(self.urgency.data),
            "contact_way": ContactWay(self.contact_way.data),
            "contact_phone": self.contact_phone.data.strip(),
            "reachable": (self.reachable.data or "").strip(),
            "categories": [Category(c) for c in self.categories.data or []],
        }


class AppointmentForm(ErrorSummary, BaseForm):
    at = DateTimeLocalField(
        "Datum und Uhrzeit", validators=[InputRequired("Bitte Datum und Uhrzeit angeben.")], format="%Y-%m-%dT%H:%M"
    )
    way = OptionalRadioField(
        "Form des Gesprächs",
        choices=options(ContactWay.choices()),
        validators=[InputRequired("Bitte wählen: Telefon oder persönlich.")],
    )

    def validate_at(self, field):
        now = to_local(utcnow()).replace(tzinfo=None)
        if field.data and field.data < now - timedelta(hours=1):
            raise ValidationError("Der Termin liegt in der Vergangenheit.")
        if field.data and field.data > now + timedelta(days=90):
            raise ValidationError("Bitte einen Termin in den nächsten 90 Tagen wählen.")


class RecommendationForm(ErrorSummary, BaseForm):
    recommendation = OptionalRadioField(
        "Empfehlung",
        choices=options(Recommendation.choices()),
        validators=[InputRequired("Bitte eine Empfehlung wählen.")],
    )
    note = TextAreaField(
        "Hinweise für die Schule (optional, ohne Namen)", validators=[Optional(), at_most(2000), Pseudonymised()]
    )
