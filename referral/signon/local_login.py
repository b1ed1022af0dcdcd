"""Login with the tool's own password only for the roles in LOCAL_LOGIN_ROLES (e.g. the admin's
break-glass account); everyone else is sent to their identity provider."""

from __future__ import annotations

from flask import current_app
from flask_security import FormInfo

from ..audit.log import AuditedLoginForm, login_refused


def allowed(user) -> bool:
    roles = current_app.config["LOCAL_LOGIN_ROLES"]
    return roles is None or bool(roles & {membership.role.value for membership in user.memberships})


class LocalLoginForm(AuditedLoginForm):
    def validate(self, **kwargs) -> bool:
        if not super().validate(**kwargs):
            return False
        if allowed(self.user):
            return True
        # Only said after the right password: the address and password were the person's own.
        login_refused(self.user, ["local_login"])
        labels = [provider.label for provider in current_app.config["OIDC_PROVIDERS"].values()]
        way = f"über die Schaltfläche „{labels[0]}“" if len(labels) == 1 else "über Ihren Anmeldedienst (oben)"
        self.form_errors.append(
            f"Die Anmeldung mit Passwort ist für Ihr Konto nicht vorgesehen. Bitte melden Sie sich {way} an."
        )
        return False


def register(app) -> None:
    app.extensions["security"].set_form_info("login_form", FormInfo(cls=LocalLoginForm))
