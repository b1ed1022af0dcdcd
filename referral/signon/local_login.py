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
        # The same answer as for a wrong password: a refusal must not confirm that a guessed password
        # is right. The login page says above the form which roles may use a password.
        login_refused(self.user, ["local_login"])
        self.form_errors.append(current_app.config["SECURITY_MSG_GENERIC_AUTHN_FAILED"][0])
        return False


def register(app) -> None:
    app.extensions["security"].set_form_info("login_form", FormInfo(cls=LocalLoginForm))
