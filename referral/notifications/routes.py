from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..pagination import paginate
from ..timeutil import utcnow
from .models import Notification

blueprint = Blueprint("notifications", __name__, url_prefix="/notifications")


@blueprint.get("/")
def index():
    page = paginate(select(Notification).where(Notification.user_id == current_user.id)
                    .order_by(Notification.id.desc()), request.args.get("page", 1, type=int))
    return render_template("notifications/index.html", page=page)


@blueprint.get("/<int:notification_id>")
def open_(notification_id: int):
    """Opening an entry marks it read and leads to its referral (whose page checks access again)."""
    entry = db.session.get(Notification, notification_id)
    if entry is None or entry.user_id != current_user.id:
        abort(404)
    if entry.read_at is None:
        entry.read_at = utcnow()
        db.session.commit()
    if entry.referral_id is None:
        return redirect(url_for(".index"))
    return redirect(url_for("cases.show", referral_id=entry.referral_id))


def register(app) -> None:
    from . import events

    events.register(app)
    app.register_blueprint(blueprint)

    @app.context_processor
    def unread_notifications():
        def count() -> int:
            if not current_user.is_authenticated:
                return 0
            return db.session.scalar(select(func.count()).select_from(Notification).where(
                Notification.user_id == current_user.id, Notification.read_at.is_(None))) or 0
        return {"unread_notifications": count}
