"""Forms of the referral and of the ASD's actions. German labels; errors go next to their fields."""

from __future__ import annotations

from flask import current_app
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    FieldList,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError

from ..kernel.forms import (
    CHOICE_ERROR,
    PLEASE_CHOOSE,
    YES_NO,
    BaseForm,
    ErrorSummary,
    GermanForm,
    MultiCheckboxField,
    NotInFuture,
    OptionalRadioField,
    OptionalSelectField,
    RequiredChoiceField,
    as_yes_no,
    at_most,
    long_text,
    options,
    text,
    today,
    yes_no,
)
from ..kernel.wording import megabytes
from ..printable import Printable
from .vocabulary import (
    AssessmentResult,
    BodyRegion,
    BodySide,
    Category,
    InformedStatus,
    Measure,
    PersonKind,
    Relation,
    ReporterFunction,
    SchoolActionKind,
    Urgency,
    regions_for,
)

MAX_PERSONS = 12

FILE_NAME_PRINTABLE = Printable("Der Dateiname enthält das Zeichen", "Bitte die Datei vor dem Hochladen umbenennen.")


ATTACHMENT_LABEL = "Datei (PDF, JPEG oder PNG, höchstens {max_attachment})"


def attachment_label() -> str:
    return ATTACHMENT_LABEL.format(max_attachment=megabytes(current_app.config["MAX_ATTACHMENT_BYTES"]))


class PrimarySchoolAge:
    """A typo in a birth date (1900, 2025) would mislead the ASD; primary school children are 4 to 14."""

    def __call__(self, form, field):
        if field.data:
            age = (today() - field.data).days / 365.25
            if not 4 <= age <= 14:
                raise ValidationError(
                    "Bitte das Geburtsdatum prüfen: Grundschulkinder sind zwischen 4 und 14 Jahre alt."
                )


class PersonForm(GermanForm):
    kind = SelectField("Person", choices=options(PersonKind.choices()), invalid_choice_message=CHOICE_ERROR)
    first_name = text("Vorname", 100)
    last_name = text("Nachname", 100)
    birth_date = DateField("Geburtsdatum", validators=[Optional(), NotInFuture(earliest_year=1900)])
    address = text("Anschrift (nur falls abweichend vom Kind)", 300)
    phone = text("Telefon", 40)
    relation = OptionalSelectField("Verhältnis zum Kind", choices=options(PLEASE_CHOOSE + Relation.choices()))
    custody = OptionalRadioField("Sorgeberechtigt", choices=YES_NO)

    def is_blank(self) -> bool:
        return (
            not any((self[f].data or "") for f in ("first_name", "last_name", "address", "phone"))
            and not self.birth_date.data
        )


class SchoolActionForm(GermanForm):
    kind = HiddenField()
    done = OptionalRadioField("Erfolgt?", choices=YES_NO)
    done_on = DateField("am", validators=[Optional(), NotInFuture()])
    reason = long_text("nein, weil …", 2000)
    detail = long_text("Ergänzung", 2000)


class ReferralForm(ErrorSummary, BaseForm):
    # 1. Child
    child_first_name = text("Vorname", 100)
    child_last_name = text("Nachname", 100)
    child_birth_date = DateField("Geburtsdatum", validators=[Optional(), PrimarySchoolAge()])
    child_gender = text("Geschlecht (freiwillig)", 40)
    child_class = text("Klasse", 20)
    child_address = text("Anschrift", 300)
    child_language = text("Familiensprache", 100)
    interpreter_needed = OptionalRadioField("Dolmetschung benötigt", choices=YES_NO)
    # 2. Parents and household
    persons = FieldList(FormField(PersonForm), "Eltern und Haushalt", min_entries=1, max_entries=MAX_PERSONS)
    add_person = SubmitField("Weitere Person hinzufügen")
    # 3. Observations
    categories = MultiCheckboxField("Kategorien", choices=options(Category.choices()))
    observed_on = DateField("Datum der Beobachtung", validators=[Optional(), NotInFuture()])
    observed_by = text("Beobachtet von (wer?)", 200)
    observation_source = text("Quelle (selbst gesehen, vom Kind erzählt, von Dritten …)", 200)
    observation = long_text("Was wurde gesehen oder gehört?")
    child_words = long_text("Äußerungen des Kindes (wörtlich)")
    body_marks = MultiCheckboxField(
        "Verletzungen am Körper",
        choices=options(
            (f"{side.value}:{region.value}", f"{side.label}: {region.label}")
            for side in BodySide
            for region in regions_for(side)
        ),
    )
    # 4. What the school already did
    school_actions = FieldList(
        FormField(SchoolActionForm),
        "Was die Schule bereits getan hat",
        min_entries=len(SchoolActionKind),
        max_entries=len(SchoolActionKind),
    )
    # 5. Those affected told beforehand
    affected_informed = OptionalRadioField(
        "Wurden die Betroffenen vorab über diese Mitteilung informiert?", choices=options(InformedStatus.choices())
    )
    affected_informed_on = DateField("Informiert am", validators=[Optional(), NotInFuture()])
    affected_informed_reason = long_text("Begründung", 2000)
    # 6. Urgency
    urgency = OptionalRadioField("Dringlichkeit aus Sicht der Schule", choices=options(Urgency.choices()))
    phone_call_at = DateTimeLocalField("Telefonat mit dem ASD am/um", validators=[Optional(), NotInFuture()])
    phone_call_with = text("Gesprochen mit", 200)
    # 7. Reporter
    # The reporter is the signed-in user: the browser may fill in their own data (WCAG 1.3.5).
    reporter_name = text("Name", 120, render_kw={"autocomplete": "name"})
    reporter_function = OptionalSelectField("Funktion", choices=options(PLEASE_CHOOSE + ReporterFunction.choices()))
    reporter_phone = text("Telefon", 40, render_kw={"autocomplete": "tel", "type": "tel"})
    reporter_reachable = text("Erreichbar (wann?)", 200)

    # 8. Attachments: uploaded together with the draft, so that nothing typed is lost.
    attachment = FileField(ATTACHMENT_LABEL, validators=[FILE_NAME_PRINTABLE])  # the limit: __init__
    upload = SubmitField("Entwurf speichern und Anhang hochladen")
    # Identifies this form across double clicks: a second identical POST finds the first referral.
    client_token = HiddenField()

    save = SubmitField("Entwurf speichern")
    submit = SubmitField("Mitteilung einreichen")

    SECTIONS = {
        "child_": "Kind",
        "interpreter_needed": "Kind",
        "categories": "Beobachtungen",
        "observ": "Beobachtungen",
        "child_words": "Beobachtungen",
        "body_marks": "Beobachtungen",
        "affected_": "Information der Betroffenen",
        "urgency": "Dringlichkeit",
        "phone_call": "Dringlichkeit",
        "reporter_": "Meldende Person",
        "attachment": "Anhänge",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attachment.label.text = attachment_label()

    def section_of(self, name: str) -> str | None:
        return next((section for prefix, section in self.SECTIONS.items() if name.startswith(prefix)), None)

    def row_of(self, list_name: str, index: int, entry) -> str:
        if list_name == "school_actions" and entry.kind.data in SchoolActionKind._value2member_map_:
            return SchoolActionKind(entry.kind.data).label
        return f"Person {index + 1}"

    def validate_school_actions(self, field):
        if [entry.form.kind.data for entry in field] != [kind.value for kind in SchoolActionKind]:
            raise ValidationError("Das Formular ist unvollständig; bitte die Seite neu laden.")

    def may_add_person(self) -> bool:
        return len(self.persons) < MAX_PERSONS

    # --- between form and model ---------------------------------------------------------------

    def load(self, referral) -> None:
        """Fill the form from a stored referral (GET)."""
        for name in (
            "child_first_name",
            "child_last_name",
            "child_birth_date",
            "child_gender",
            "child_class",
            "child_address",
            "child_language",
            "observed_on",
            "observed_by",
            "observation_source",
            "observation",
            "child_words",
            "affected_informed_on",
            "affected_informed_reason",
            "phone_call_with",
            "reporter_name",
            "reporter_phone",
            "reporter_reachable",
        ):
            self[name].data = getattr(referral, name)
        self.interpreter_needed.data = as_yes_no(referral.interpreter_needed)
        self.affected_informed.data = referral.affected_informed.value if referral.affected_informed else ""
        self.urgency.data = referral.urgency.value if referral.urgency else ""
        self.reporter_function.data = referral.reporter_function.value if referral.reporter_function else ""
        from ..timeutil import to_local

        self.phone_call_at.data = (
            to_local(referral.phone_call_at).replace(tzinfo=None) if referral.phone_call_at else None
        )
        self.categories.data = [c.value for c in referral.category_codes]
        self.body_marks.data = [f"{m.side.value}:{m.region.value}" for m in referral.body_marks]
        while len(self.persons):
            self.persons.pop_entry()
        for person in referral.persons or []:
            self.persons.append_entry(
                {
                    "kind": person.kind.value,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "birth_date": person.birth_date,
                    "address": person.address,
                    "phone": person.phone,
                    "relation": person.relation.value if person.relation else "",
                    "custody": as_yes_no(person.custody),
                }
            )
        if not referral.persons:
            self.persons.append_entry({"kind": PersonKind.MOTHER.value})
            self.persons.append_entry({"kind": PersonKind.FATHER.value})
        by_kind = {a.kind: a for a in referral.school_actions}
        while len(self.school_actions):
            self.school_actions.pop_entry()
        for kind in SchoolActionKind:
            action = by_kind.get(kind)
            self.school_actions.append_entry(
                {
                    "kind": kind.value,
                    "done": as_yes_no(action.done if action else None),
                    "done_on": action.done_on if action else None,
                    "reason": action.reason if action else "",
                    "detail": action.detail if action else "",
                }
            )

    def store(self, referral) -> None:
        """Copy what was typed onto the referral (the caller commits or rolls back)."""
        from ..timeutil import local_to_utc
        from .models import BodyMark, Person, ReferralCategory, SchoolAction

        for name in (
            "child_first_name",
            "child_last_name",
            "child_gender",
            "child_class",
            "child_address",
            "child_language",
            "observed_by",
            "observation_source",
            "observation",
            "child_words",
            "affected_informed_reason",
            "reporter_name",
            "reporter_phone",
            "reporter_reachable",
        ):
            setattr(referral, name, (self[name].data or "").strip())
        for name in ("child_birth_date", "observed_on", "affected_informed_on"):
            setattr(referral, name, self[name].data)
        referral.interpreter_needed = yes_no(self.interpreter_needed.data)
        referral.affected_informed = (
            InformedStatus(self.affected_informed.data) if self.affected_informed.data else None
        )
        if referral.affected_informed is not InformedStatus.YES:
            referral.affected_informed_on = None
        if referral.affected_informed is InformedStatus.YES:
            referral.affected_informed_reason = ""
        referral.urgency = Urgency(self.urgency.data) if self.urgency.data else None
        if referral.urgency is Urgency.ACUTE:
            referral.phone_call_at = local_to_utc(self.phone_call_at.data) if self.phone_call_at.data else None
            referral.phone_call_with = (self.phone_call_with.data or "").strip() or None
        else:
            referral.phone_call_at = referral.phone_call_with = None
        referral.reporter_function = (
            ReporterFunction(self.reporter_function.data) if self.reporter_function.data else None
        )

        wanted = set(self.categories.data or [])
        referral.categories = [c for c in referral.categories if c.category.value in wanted] + [
            ReferralCategory(category=Category(code))
            for code in sorted(wanted - {c.category.value for c in referral.categories})
        ]
        marks = {tuple(v.split(":", 1)) for v in self.body_marks.data or []}
        kept = [m for m in referral.body_marks if (m.side.value, m.region.value) in marks]
        referral.body_marks = kept + [
            BodyMark(side=BodySide(side), region=BodyRegion(region))
            for side, region in sorted(marks - {(m.side.value, m.region.value) for m in kept})
        ]
        persons = []
        for position, entry in enumerate(e for e in self.persons if not e.form.is_blank()):
            data = entry.form
            persons.append(
                Person(
                    position=position,
                    kind=PersonKind(data.kind.data),
                    first_name=(data.first_name.data or "").strip(),
                    last_name=(data.last_name.data or "").strip(),
                    birth_date=data.birth_date.data,
                    address=(data.address.data or "").strip(),
                    phone=(data.phone.data or "").strip(),
                    relation=Relation(data.relation.data) if data.relation.data else None,
                    custody=yes_no(data.custody.data),
                )
            )
        referral.persons = persons
        by_kind = {a.kind: a for a in referral.school_actions}
        for entry in self.school_actions:
            data = entry.form
            kind = SchoolActionKind(data.kind.data)
            action = by_kind.get(kind) or SchoolAction(kind=kind)
            action.done = yes_no(data.done.data)
            action.done_on = data.done_on.data if action.done else None
            action.reason = (data.reason.data or "").strip() if action.done is False else ""
            action.detail = (data.detail.data or "").strip()
            by_kind[kind] = action
        referral.school_actions = [by_kind[k] for k in SchoolActionKind]

    def show_problems(self, problems: dict[str, str]) -> None:
        """Attach the submission problems (keyed by field path) to their fields."""
        # Problems on persons are counted over the non-blank entries; map them back.
        filled = [i for i, e in enumerate(self.persons) if not e.form.is_blank()]
        for path, message in problems.items():
            parts = path.split("-")
            if parts[0] == "persons" and len(parts) == 3:
                field = self.persons[filled[int(parts[1])]].form[parts[2]]
            elif len(parts) == 3:
                field = self[parts[0]][int(parts[1])].form[parts[2]]
            else:
                field = self[path]
            field.errors = list(field.errors or []) + [message]


def _message_body(label):
    return TextAreaField(label, validators=[DataRequired("Bitte einen Text eingeben."), at_most(10000), Printable()])


class QuestionForm(ErrorSummary, BaseForm):
    body = _message_body("Rückfrage an die Schule")


class AnswerForm(ErrorSummary, BaseForm):
    body = _message_body("Ihre Antwort auf die Rückfrage")


class AddendumForm(ErrorSummary, BaseForm):
    body = _message_body("Nachtrag (neue Beobachtungen, Ergänzungen)")


# Each message form has its own prefix, so that several on one page keep distinct field ids.
MESSAGE_FORMS = {"ask": QuestionForm, "answer": AnswerForm, "addendum": AddendumForm}


class ConfirmDeletionForm(BaseForm):
    """Deleting for good needs a second, explicit step (WCAG 3.3.4): the confirmation page sends
    `confirmed=yes`; a bare POST (one stray click, a stale form) deletes nothing."""

    confirmed = HiddenField()

    def is_confirmed(self) -> bool:
        return self.validate() and self.confirmed.data == "yes"


class TransferForm(ErrorSummary, BaseForm):
    to_district = RequiredChoiceField("Zuständiger Bezirk", validators=[InputRequired("Bitte einen Bezirk wählen.")])
    reason = TextAreaField(
        "Grund der Abgabe (z. B. Wohnort der Eltern, § 86 SGB VIII)",
        validators=[DataRequired("Bitte den Grund der Abgabe angeben."), at_most(2000), Printable()],
    )


class AssignForm(ErrorSummary, BaseForm):
    assignee = RequiredChoiceField("Fachkraft", validators=[InputRequired("Bitte eine Fachkraft wählen.")])


class AssessmentForm(ErrorSummary, BaseForm):
    result = OptionalRadioField(
        "Ergebnis der Gefährdungseinschätzung",
        choices=options(AssessmentResult.choices()),
        validators=[InputRequired("Bitte das Ergebnis wählen.")],
    )
    specialists = MultiCheckboxField("Beteiligte Fachkräfte des ASD", coerce=int)
    other_specialists = TextAreaField(
        "Weitere beteiligte Fachkräfte (eine pro Zeile)", validators=[Optional(), at_most(2000), Printable()]
    )
    school_involved = OptionalRadioField(
        "Schule in die Einschätzung einbezogen?",
        choices=YES_NO,
        validators=[InputRequired("Bitte „ja“ oder „nein“ wählen.")],
    )
    measures = MultiCheckboxField(
        "Maßnahmen",
        choices=options(Measure.choices()),
        validators=[DataRequired("Bitte mindestens eine Maßnahme oder „keine“ wählen.")],
    )

    def validate_measures(self, field):
        if Measure.NONE.value in field.data and len(field.data) > 1:
            raise ValidationError("„keine“ kann nicht zusammen mit anderen Maßnahmen gewählt werden.")

    def other_specialist_names(self) -> list[str]:
        return [n.strip() for n in (self.other_specialists.data or "").splitlines() if n.strip()]


class FeedbackForm(ErrorSummary, BaseForm):
    indications_confirmed = OptionalRadioField(
        "Haben sich die gewichtigen Anhaltspunkte bestätigt?",
        choices=YES_NO,
        validators=[InputRequired("Bitte „ja“ oder „nein“ wählen.")],
    )
    asd_became_active = OptionalRadioField(
        "Ist der ASD zum Schutz des Kindes tätig geworden?",
        choices=YES_NO,
        validators=[InputRequired("Bitte „ja“ oder „nein“ wählen.")],
    )
    asd_still_active = OptionalRadioField(
        "Ist der ASD weiterhin tätig?", choices=YES_NO, validators=[InputRequired("Bitte „ja“ oder „nein“ wählen.")]
    )
    contact_name = StringField(
        "Ansprechperson im ASD für die Schule",
        validators=[DataRequired("Bitte die Ansprechperson angeben."), at_most(120), Printable()],
    )
    contact_phone = StringField(
        "Telefon der Ansprechperson",
        validators=[DataRequired("Bitte eine Telefonnummer angeben."), at_most(40), Printable()],
    )
    affected_informed = OptionalRadioField(
        "Wurden die Betroffenen vorab über diese Rückmeldung informiert?",
        choices=options(InformedStatus.choices()),
        validators=[InputRequired("Bitte eine Möglichkeit wählen.")],
    )
    affected_informed_on = DateField("Informiert am", validators=[Optional(), NotInFuture()])
    affected_informed_reason = TextAreaField("Begründung", validators=[Optional(), at_most(2000), Printable()])
    confirm = BooleanField(
        "Mir ist bewusst, dass die Rückmeldung nach § 64 Abs. 4 SGB VIII nur diese Angaben enthält.",
        validators=[DataRequired("Bitte bestätigen.")],
    )

    def validate_asd_still_active(self, field):
        if field.data == "yes" and self.asd_became_active.data == "no":
            raise ValidationError("Weiterhin tätig kann der ASD nur sein, wenn er tätig geworden ist.")

    def validate_affected_informed_on(self, field):
        if self.affected_informed.data == InformedStatus.YES.value and not field.data:
            raise ValidationError("Bitte das Datum angeben.")

    def validate_affected_informed_reason(self, field):
        if (
            self.affected_informed.data
            and self.affected_informed.data != InformedStatus.YES.value
            and not (field.data or "").strip()
        ):
            raise ValidationError("Bitte den Grund angeben.")

    def values(self) -> dict:
        informed = InformedStatus(self.affected_informed.data)
        return {
            "indications_confirmed": yes_no(self.indications_confirmed.data),
            "asd_became_active": yes_no(self.asd_became_active.data),
            "asd_still_active": yes_no(self.asd_still_active.data),
            "contact_name": self.contact_name.data.strip(),
            "contact_phone": self.contact_phone.data.strip(),
            "affected_informed": informed,
            "affected_informed_on": self.affected_informed_on.data if informed is InformedStatus.YES else None,
            "affected_informed_reason": (self.affected_informed_reason.data or "").strip()
            if informed is not InformedStatus.YES
            else "",
        }


class AttachmentForm(ErrorSummary, BaseForm):
    file = FileField(
        ATTACHMENT_LABEL,  # the limit: __init__
        validators=[FileRequired("Bitte eine Datei auswählen."), FILE_NAME_PRINTABLE],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.file.label.text = attachment_label()


class InboxFilterForm(BaseForm):
    class Meta:
        csrf = False

    state = OptionalSelectField("Status")
    overdue = BooleanField("nur überfällige")
