"""The admin's forms: accounts, districts, schools, deadlines."""

from __future__ import annotations

from wtforms import BooleanField, EmailField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, NumberRange, Optional, Regexp, ValidationError

from ..accounts.models import ASD_ROLES, SCHOOL_ROLES, Role
from ..kernel.forms import CHOICE_ERROR, PHONE, BaseForm, ErrorSummary, at_most, options
from ..kernel.settings import DEADLINE_DEFAULTS

ROLE_CHOICES = [("", "– bitte wählen –")] + [(r.value, r.label) for r in Role]
EMAIL_ERROR = "Bitte eine gültige E-Mail-Adresse angeben, z. B. name@schule.example."


def scope_choices(schools, districts) -> list:
    """One list for every kind of scope: the whole city, a district, a school."""
    return options(
        [("", "– bitte wählen –"), ("city", "ganze Stadt (Koordination, InsoFa, Administration)")]
        + [(f"district:{d.id}", f"Bezirk {d.name}") for d in districts]
        + [(f"school:{s.id}", f"Schule: {s.name}") for s in schools]
    )


def role_field():
    return SelectField(
        "Rolle",
        choices=options(ROLE_CHOICES),
        invalid_choice_message=CHOICE_ERROR,
        validators=[InputRequired("Bitte eine Rolle wählen.")],
    )


def scope_field():
    return SelectField(
        "Zuständigkeit",
        invalid_choice_message=CHOICE_ERROR,
        validators=[InputRequired("Bitte eine Schule, einen Bezirk oder die ganze Stadt wählen.")],
    )


class MembershipFields:
    """Role and scope, checked against each other. The fields are declared by each form, in its order."""

    def validate_scope(self, field):
        if self.role.data not in {r.value for r in Role} or not field.data:
            return  # the role's own error says what is wrong
        role = Role(self.role.data)
        kind = field.data.split(":", 1)[0]
        expected = "school" if role in SCHOOL_ROLES else "district" if role in ASD_ROLES else "city"
        if kind != expected:
            raise ValidationError(
                {
                    "school": "Diese Rolle gilt für eine Schule: bitte eine Schule wählen.",
                    "district": "Diese Rolle gilt für einen ASD-Bezirk: bitte einen Bezirk wählen.",
                    "city": "Diese Rolle gilt für die ganze Stadt: bitte „ganze Stadt“ wählen.",
                }[expected]
            )

    def scope_ids(self) -> tuple[int | None, int | None]:
        kind, _, ident = self.scope.data.partition(":")
        return (int(ident) if kind == "school" else None, int(ident) if kind == "district" else None)


class InviteForm(MembershipFields, ErrorSummary, BaseForm):
    email = EmailField(
        "E-Mail-Adresse (dienstlich)",
        validators=[DataRequired("Bitte die E-Mail-Adresse angeben."), Email(EMAIL_ERROR), at_most(254)],
    )
    name = StringField("Name", validators=[DataRequired("Bitte den Namen angeben."), at_most(120)])
    phone = StringField("Telefon (dienstlich, freiwillig)", validators=[Optional(), at_most(40)])
    role = role_field()
    scope = scope_field()


class MembershipForm(MembershipFields, ErrorSummary, BaseForm):
    role = role_field()
    scope = scope_field()


class UserForm(ErrorSummary, BaseForm):
    name = StringField("Name", validators=[DataRequired("Bitte den Namen angeben."), at_most(120)])
    phone = StringField("Telefon (dienstlich, freiwillig)", validators=[Optional(), at_most(40)])


class UserSearchForm(BaseForm):
    class Meta:
        csrf = False

    q = StringField("Name oder E-Mail-Adresse", validators=[Optional(), at_most(100)])
    status = SelectField(
        "Status",
        choices=options([("", "alle"), ("active", "aktiv"), ("invited", "eingeladen"), ("inactive", "deaktiviert")]),
        validate_choice=False,
    )


def dialable(form, field):
    # Schools call this number in acute danger: it must at least look like one.
    if field.data and sum(c.isdigit() for c in field.data) < 6:
        raise ValidationError("Bitte eine vollständige Telefonnummer mit Vorwahl angeben (mindestens 6 Ziffern).")


def optional_int(value):
    return int(value) if value not in (None, "") else None


class DistrictForm(ErrorSummary, BaseForm):
    name = StringField("Name des Bezirks", validators=[DataRequired("Bitte den Namen angeben."), at_most(120)])
    code = StringField(
        "Kürzel (für Vorgangsnummern, 2–4 Großbuchstaben)",
        filters=[lambda v: (v or "").strip().upper()],
        validators=[
            DataRequired("Bitte das Kürzel angeben."),
            at_most(4),
            Regexp(r"^[A-ZÄÖÜ]{2,4}$", message="2 bis 4 Großbuchstaben, z. B. WE."),
        ],
    )
    duty_phone = StringField(
        "Telefon des Bereitschaftsdienstes",
        validators=[DataRequired("Bitte die Telefonnummer angeben."), at_most(40), PHONE, dialable],
    )
    duty_hours = StringField("Erreichbarkeit (z. B. Mo–Fr 8–16 Uhr)", validators=[Optional(), at_most(200)])
    inbox_email = EmailField(
        "E-Mail-Adresse des Posteingangs", validators=[Optional(), Email(EMAIL_ERROR), at_most(254)]
    )
    model_project = BooleanField("Bezirk des Modellprojekts (die Auswertung vergleicht ihn mit den anderen Bezirken)")


class SchoolForm(ErrorSummary, BaseForm):
    name = StringField("Name der Schule", validators=[DataRequired("Bitte den Namen angeben."), at_most(200)])
    district_id = SelectField(
        "ASD-Bezirk",
        coerce=optional_int,
        invalid_choice_message=CHOICE_ERROR,
        validators=[DataRequired("Bitte einen Bezirk wählen.")],
    )
    phone = StringField("Telefon (Sekretariat)", validators=[Optional(), at_most(40), PHONE])
    email = EmailField("E-Mail-Adresse (Sekretariat)", validators=[Optional(), Email(EMAIL_ERROR), at_most(254)])
    address = StringField("Anschrift", validators=[Optional(), at_most(200)])


DEADLINE_LABELS = {
    "ack_acute_hours": ("Eingangsbestätigung bei „akut“ (Stunden)", 1, 24),
    "ack_working_days": ("Eingangsbestätigung sonst (Arbeitstage, bis Tagesende)", 1, 10),
    "feedback_working_days": ("Rückmeldung an die Schule (Arbeitstage nach Eingang)", 1, 60),
    "consultation_accept_working_days": ("Annahme einer Fachberatung durch die InsoFa (Arbeitstage)", 1, 10),
    "retention_days": ("Löschung von Namen, Texten und Anhängen nach Abschluss (Kalendertage)", 30, 3650),
    "draft_retention_days": ("Löschung unbearbeiteter Entwürfe (Kalendertage)", 14, 365),
}


def _deadline_field(key):
    label, low, high = DEADLINE_LABELS[key]
    return IntegerField(
        label,
        validators=[
            InputRequired("Bitte eine ganze Zahl angeben."),
            NumberRange(low, high, message=f"Bitte eine ganze Zahl von {low} bis {high} angeben."),
        ],
    )


class DeadlinesForm(ErrorSummary, BaseForm):
    class Meta(BaseForm.Meta):
        locales = ("de_DE", "de")


for _key in DEADLINE_DEFAULTS:
    setattr(DeadlinesForm, _key, _deadline_field(_key))


class SignOnLinkForm(ErrorSummary, BaseForm):
    """Linking an account to a person's identity at a provider, by the subject the provider uses."""

    provider = SelectField("Anmeldedienst", validators=[DataRequired("Bitte den Anmeldedienst wählen.")])
    subject = StringField(
        "Kennung der Person beim Anmeldedienst (sub)",
        validators=[DataRequired("Bitte die Kennung (sub) angeben."), at_most(255)],
        description="Die unveränderliche Kennung, die der Anmeldedienst für die Person verwendet (Claim „sub“).",
    )

    def __init__(self, providers, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider.choices = [("", "– bitte wählen –")] + [(p.name, p.label) for p in providers]
