"""Pages of one's own account that Flask-Security does not provide: accepting an invitation."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request
from flask_login import current_user
from flask_security import logout_user, url_for_security
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, ValidationError

from ..kernel.forms import BaseForm, ErrorSummary, at_most
from . import operations, services

blueprint = Blueprint("accounts", __name__)


class InvitationForm(ErrorSummary, BaseForm):
    password = PasswordField(
        "Neues Passwort",
        validators=[DataRequired("Bitte ein Passwort angeben."), at_most(256)],
        render_kw={"autocomplete": "new-password"},
    )
    password_confirm = PasswordField(
        "Passwort wiederholen",
        validators=[
            DataRequired("Bitte das Passwort wiederholen."),
            at_most(256),
            EqualTo("password", "Die beiden Passwörter stimmen nicht überein."),
        ],
        render_kw={"autocomplete": "new-password"},
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def validate_password(self, field):
        # The same policy as everywhere (length, zxcvbn strength, German reasons): Flask-Security's.
        problems, _ = current_app.extensions["security"].password_util.validate(
            field.data, True, email=self.user.email, name=self.user.name
        )
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))


@blueprint.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    user = services.invited_user(token)
    if user is None:
        return render_template("accounts/invitation_invalid.html"), 404
    if current_user.is_authenticated:
        logout_user()  # someone else's session on this browser must not carry over
    form = InvitationForm(user)
    if form.validate_on_submit():
        operations.accept_invitation(user, form.password.data)
        flash("Ihr Passwort ist gespeichert. Bitte melden Sie sich jetzt an.", "success")
        return redirect(url_for_security("login"))
    return render_template("accounts/invitation.html", form=form, user=user), 422 if request.method == "POST" else 200
