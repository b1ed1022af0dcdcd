from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..integers import query_int
from ..kernel.forms import BaseForm, ErrorSummary, MultiCheckboxField, options
from ..pagination import paginate
from . import operations
from .kinds import kinds_for, mandatory_for
from .models import Notification


class EmailChoiceForm(ErrorSummary, BaseForm):
    wanted = MultiCheckboxField("E-Mail erhalten bei")


blueprint = Blueprint("notifications", __name__, url_prefix="/notifications")


@blueprint.get("/")
def index():
    page = paginate(
        select(Notification).where(Notification.user_id == current_user.id).order_by(Notification.id.desc()),
        request.args.get("page", 1, type=query_int),
    )
    return render_template("notifications/index.html", page=page)


@blueprint.get("/<int:notification_id>")
def open_(notification_id: int):
    """Opening an entry marks it read and leads to its referral or consultation (whose page checks access again)."""
    entry = db.session.get(Notification, notification_id)
    if entry is None or entry.user_id != current_user.id:
        abort(404)
    operations.mark_read(current_user, entry)
    if entry.referral_id is not None:
        return redirect(url_for("cases.show", referral_id=entry.referral_id))
    if entry.consultation_id is not None:
        return redirect(url_for("consultations.show", consultation_id=entry.consultation_id))
    return redirect(url_for(".index"))


@blueprint.route("/email", methods=["GET", "POST"])
def email_choices():
    """Which e-mails one receives; in the app every notification is shown regardless."""
    kinds = kinds_for(current_user)
    mandatory = mandatory_for(current_user)
    optional = [k for k in kinds if k not in mandatory]
    form = EmailChoiceForm()
    form.wanted.choices = options([(k.value, k.label) for k in optional])
    if request.method == "GET":
        off = operations.switched_off(current_user)
        form.wanted.data = [k.value for k in optional if k.value not in off]
    elif form.validate():
        operations.choose_emails(current_user, set(form.wanted.data or []))
        flash("Ihre Auswahl wurde gespeichert.", "success")
        return redirect(url_for(".email_choices"))
    return render_template(
        "notifications/email.html", form=form, mandatory=[k for k in kinds if k in mandatory], has_kinds=bool(kinds)
    )


def register(app) -> None:
    from . import events

    events.register(app)
    app.register_blueprint(blueprint)

    @app.context_processor
    def unread_notifications():
        def count() -> int:
            if not current_user.is_authenticated:
                return 0
            return (
                db.session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
                )
                or 0
            )

        return {"unread_notifications": count}
