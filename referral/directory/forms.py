from __future__ import annotations

from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Optional

from ..kernel.forms import PHONE, BaseForm, ErrorSummary, at_most


class ContactForm(ErrorSummary, BaseForm):
    name = StringField("Name", validators=[DataRequired("Bitte den Namen angeben."), at_most(120)])
    phone = StringField("Telefon (dienstlich)", validators=[Optional(), at_most(40), PHONE])
    email = EmailField(
        "E-Mail-Adresse (dienstlich)",
        validators=[
            Optional(),
            Email("Bitte eine gültige E-Mail-Adresse angeben, z. B. name@schule.example."),
            at_most(254),
        ],
    )
    reachable = StringField("Erreichbarkeit (z. B. Di und Do 8–12 Uhr)", validators=[Optional(), at_most(200)])

    def values(self) -> dict[str, str]:
        return {name: (getattr(self, name).data or "").strip() for name in ("name", "phone", "email", "reachable")}
