"""Who hears of what (PROCESS.md, "Notifications"). Texts carry the case number, the school, the
urgency, what happened and a link; never the child, the family or any free text."""
from __future__ import annotations

from flask import current_app, has_request_context, render_template, url_for
from sqlalchemy import select

from ..accounts.models import ASD_ROLES, Membership, Role, User
from ..cases.process import Action
from ..extensions import db
from .models import Notification, OutboxMail

WHAT = {
    Action.SUBMIT: "Neue Mitteilung im Eingang",
    Action.ACKNOWLEDGE: "Eingang vom ASD bestätigt",
    Action.ASK: "Rückfrage des ASD",
    Action.GIVE_FEEDBACK: "Rückmeldung des ASD",
    Action.TRANSFER: "An einen anderen Bezirk abgegeben",
    Action.ANSWER: "Antwort der Schule auf die Rückfrage",
    Action.ADDENDUM: "Nachtrag der Schule",
}


def _district_staff(district_id: int) -> list[User]:
    members = select(Membership.user_id).where(Membership.district_id == district_id, Membership.role.in_(ASD_ROLES))
    return db.session.scalars(select(User).where(User.id.in_(members), User.active.is_(True)).order_by(User.id)).all()


def _school_side(referral) -> list[User]:
    members = select(Membership.user_id).where(Membership.school_id == referral.school_id, Membership.role == Role.SCHOOL_LEAD)
    leads = db.session.scalars(select(User).where(User.id.in_(members), User.active.is_(True)).order_by(User.id)).all()
    author = [referral.author] if referral.author and referral.author.active else []
    return author + leads


def recipients(referral, action: Action) -> tuple[list[User], list[str]]:
    """Users to notify, and extra addresses (the district's inbox) to mail."""
    if action is Action.SUBMIT:
        inbox = [referral.district.inbox_email] if referral.district.inbox_email else []
        leads = [u for u in _school_side(referral) if u is not referral.author]
        return _district_staff(referral.district_id) + leads, inbox
    if action is Action.TRANSFER:
        inbox = [referral.district.inbox_email] if referral.district.inbox_email else []
        return _school_side(referral) + _district_staff(referral.district_id), inbox
    if action in (Action.ACKNOWLEDGE, Action.ASK, Action.GIVE_FEEDBACK):
        return _school_side(referral), []
    if action in (Action.ANSWER, Action.ADDENDUM):
        return ([referral.assignee] if referral.assignee else _district_staff(referral.district_id)), []
    return [], []


def _link(referral) -> str:
    # A full address when the host is known (a request, or SERVER_NAME in production); else the path.
    if has_request_context() or current_app.config.get("SERVER_NAME"):
        return url_for("cases.show", referral_id=referral.id, _external=True)
    return f"/referrals/{referral.id}"


def notify(referral, action: Action, change=None, **extra) -> None:
    if action not in WHAT or not referral.number:
        return
    users, addresses = recipients(referral, action)
    actor_id = change.actor_id if change is not None else None
    seen: set[int] = set()
    text = f"{referral.number}: {WHAT[action]} – {referral.school.name}, {referral.urgency.short if referral.urgency else ''}"
    link = _link(referral)
    mails = set(addresses)
    for user in users:
        if user.id == actor_id or user.id in seen:
            continue
        seen.add(user.id)
        db.session.add(Notification(user_id=user.id, referral_id=referral.id, text=text[:300]))
        mails.add(user.email)
    body = render_template("email/referral_event.txt", number=referral.number, what=WHAT[action],
                           school=referral.school.name, urgency=referral.urgency.label if referral.urgency else "", link=link)
    for address in sorted(mails):
        db.session.add(OutboxMail(recipient=address, subject=f"{referral.number}: {WHAT[action]}", body=body))


def register(app) -> None:
    from ..cases.process import referral_changed

    referral_changed.connect(notify)
