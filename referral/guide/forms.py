"""The coordinator's editor: one text per fixed section, the "Was ist neu" note, and the version the
editor was opened on (to refuse a save over someone else's newer version)."""

from __future__ import annotations

from typing import Any

from wtforms import Field, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional, ValidationError

from ..kernel.forms import BaseForm, ErrorSummary, at_most
from .facts import PLACEHOLDERS
from .rendering import placeholders_in
from .sections import SECTIONS

NOTE_MAX = 200
TEXT_MAX = 6000


def field_name(key: str) -> str:
    return "text_" + key.replace("-", "_")


def known_placeholders(form: BaseForm, field: Field) -> None:
    unknown = [name for name in placeholders_in(field.data or "") if name not in PLACEHOLDERS]
    if unknown:
        allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        names = ", ".join(f"„{{{name}}}“" for name in dict.fromkeys(unknown))
        raise ValidationError(f"Unbekannter Platzhalter {names}. Möglich sind: {allowed}.")


def _base(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class GuideForm(ErrorSummary, BaseForm):
    base = HiddenField(filters=[_base])
    note = StringField(
        "Was ist neu",
        validators=[
            DataRequired("Bitte kurz beschreiben, was neu ist (zum Beispiel „vereinbart im Seminar am …“)."),
            at_most(NOTE_MAX),
        ],
    )

    def texts(self) -> dict[str, str]:
        return {section.key: self[field_name(section.key)].data or "" for section in SECTIONS}

    def fill(self, texts: dict[str, str]) -> None:
        for section in SECTIONS:
            self[field_name(section.key)].data = texts.get(section.key, "")


for _section in SECTIONS:
    setattr(
        GuideForm,
        field_name(_section.key),
        TextAreaField(
            _section.title, validators=[Optional(), at_most(TEXT_MAX), known_placeholders], render_kw={"rows": 12}
        ),
    )
