"""Who hears of what (PROCESS.md, "Notifications"). Texts carry the case number, the school, the
urgency, what happened and a link; never the child, the family or any free text."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_request_context, render_template, url_for
from sqlalchemy import select

from ..accounts.models import ASD_ROLES, Membership, Role, User
from ..cases.process import Action
from ..consultations.process import ConsultationAction as A
from ..extensions import db
from ..timeutil import to_local
from .kinds import EventKind, mandatory_for
from .models import EmailChoice, Notification, OutboxMail
from .wording import CONSULTATION, REFERRAL

SCHOOL_KIND = {
    Action.ACKNOWLEDGE: EventKind.ACKNOWLEDGED,
    Action.ASK: EventKind.QUESTION,
    Action.GIVE_FEEDBACK: EventKind.FEEDBACK,
    Action.TRANSFER: EventKind.TRANSFER,
}


@dataclass(frozen=True)
class Message:
    """One notification as one kind of reader gets it: e-mail subject and body, and the in-app text."""

    subject: str
    body: str
    text: str


def active_members(*, roles, district_id: int | None = None, school_id: int | None = None) -> list[User]:
    members = select(Membership.user_id).where(Membership.role.in_(roles))
    if district_id is not None:
        members = members.where(Membership.district_id == district_id)
    if school_id is not None:
        members = members.where(Membership.school_id == school_id)
    return db.session.scalars(select(User).where(User.id.in_(members), User.active.is_(True)).order_by(User.id)).all()


def _school_side(referral) -> list[User]:
    leads = active_members(roles=[Role.SCHOOL_LEAD], school_id=referral.school_id)
    author = [referral.author] if referral.author and referral.author.active else []
    return author + leads


def recipients(referral, action: Action) -> tuple[list[tuple[User, EventKind]], list[tuple[str, EventKind]]]:
    """Users to notify with the kind of event it is for them, and extra addresses (the district's inbox)."""

    def staff() -> list[User]:  # queried only for the events that go to the district
        return active_members(roles=ASD_ROLES, district_id=referral.district_id)

    inbox = [(referral.district.inbox_email, EventKind.NEW_REFERRAL)] if referral.district.inbox_email else []
    if action is Action.SUBMIT:
        leads = [u for u in _school_side(referral) if u is not referral.author]
        return [(u, EventKind.NEW_REFERRAL) for u in staff()] + [(u, EventKind.SCHOOL_SUBMISSION) for u in leads], inbox
    if action is Action.TRANSFER:
        return (
            [(u, EventKind.TRANSFER) for u in _school_side(referral)] + [(u, EventKind.NEW_REFERRAL) for u in staff()]
        ), inbox
    if action in SCHOOL_KIND:
        return [(u, SCHOOL_KIND[action]) for u in _school_side(referral)], []
    if action in (Action.ANSWER, Action.ADDENDUM):
        return [(u, EventKind.SCHOOL_REPLY) for u in ([referral.assignee] if referral.assignee else staff())], []
    return [], []


def link(endpoint: str, **values) -> str:
    # A full address when the host is known (a request, or SERVER_NAME in production); else the path.
    if has_request_context() or current_app.config.get("SERVER_NAME"):
        return url_for(endpoint, _external=True, **values)
    with current_app.test_request_context():
        return url_for(endpoint, **values)


def wants_email(users: list[User], kind: EventKind) -> set[int]:
    """Ids of `users` who get e-mail of `kind`: all but those who switched it off where they may."""
    off = (
        set(
            db.session.scalars(
                select(EmailChoice.user_id).where(
                    EmailChoice.kind == kind.value, EmailChoice.user_id.in_([u.id for u in users])
                )
            )
        )
        if users
        else set()
    )
    return {u.id for u in users if u.id not in off or kind in mandatory_for(u)}


def deliver_to(
    targets: list[tuple[User, EventKind]],
    addresses: list[tuple[str, EventKind]],
    messages: dict[EventKind, Message],
    *,
    actor_id: int | None = None,
    referral_id: int | None = None,
    consultation_id: int | None = None,
) -> None:
    """An entry in the app for each user (never to the actor), and one e-mail per address, in the outbox;
    each worded for the kind of event it is for that reader (`messages`)."""
    seen: set[int] = set()
    chosen: list[tuple[User, EventKind]] = []
    for user, kind in targets:
        if user.id != actor_id and user.id not in seen:
            seen.add(user.id)
            chosen.append((user, kind))
    mails: dict[str, EventKind] = {}
    for address, kind in addresses:
        mails.setdefault(address, kind)
    for kind in dict.fromkeys(k for _, k in chosen):
        users = [u for u, k in chosen if k is kind]
        allowed = wants_email(users, kind)
        for user in users:
            if user.id in allowed:
                mails.setdefault(user.email, kind)
    for user, kind in chosen:
        db.session.add(
            Notification(
                user_id=user.id,
                referral_id=referral_id,
                consultation_id=consultation_id,
                text=messages[kind].text[:300],
            )
        )
    for address in sorted(mails):
        message = messages[mails[address]]
        db.session.add(OutboxMail(recipient=address, subject=message.subject[:200], body=message.body))


def referral_message(referral, action: Action, kind: EventKind, from_district=None) -> Message:
    """The notification of `action` for a reader of `kind` (see wording.REFERRAL)."""
    headline, first_line = REFERRAL[action, kind].fill(
        number=referral.number,
        school=referral.school.name,
        district=referral.district.name,
        from_district=from_district.name if from_district is not None else "",
        urgency=referral.urgency.short,
    )
    body = render_template(
        "email/referral_event.txt",
        first_line=first_line,
        urgency=referral.urgency.label,
        link=link("cases.show", referral_id=referral.id),
    )
    subject = f"{referral.number}: {headline}"
    return Message(subject=subject, body=body, text=f"{subject} ({referral.school.name})")


def notify(referral, action: Action, change=None, **extra) -> None:
    if action not in {act for act, _ in REFERRAL} or not referral.number:
        return
    targets, addresses = recipients(referral, action)
    from_district = change.from_district if change is not None else None
    kinds = dict.fromkeys([k for _, k in targets] + [k for _, k in addresses])
    deliver_to(
        targets,
        addresses,
        {k: referral_message(referral, action, k, from_district) for k in kinds},
        actor_id=change.actor_id if change is not None else None,
        referral_id=referral.id,
    )


def consultation_message(consultation, action, kind: EventKind) -> Message:
    """The notification of `action` for a reader of `kind` (see wording.CONSULTATION)."""
    headline, first_line = CONSULTATION[action, kind].fill(
        number=consultation.number, school=consultation.school.name, urgency=consultation.urgency.short
    )
    appointment = None
    if action is A.ARRANGE and consultation.appointment_at:  # when and how; nothing about the child
        appointment = f"{to_local(consultation.appointment_at):%d.%m.%Y, %H:%M} Uhr" + (
            f" ({consultation.appointment_way.label})" if consultation.appointment_way else ""
        )
    body = render_template(
        "email/consultation_event.txt",
        first_line=first_line,
        urgency=consultation.urgency.short,
        appointment=appointment,
        link=link("consultations.show", consultation_id=consultation.id),
    )
    subject = f"{consultation.number}: {headline}"
    return Message(subject=subject, body=body, text=f"{subject} ({consultation.school.name})")


def notify_consultation(consultation, action, actor=None, **extra) -> None:
    if action is A.REQUEST:
        targets = [(u, EventKind.NEW_CONSULTATION) for u in active_members(roles=[Role.INSOFA])]
    elif (action, EventKind.CONSULTATION_UPDATE) in CONSULTATION:
        author = consultation.author
        targets = [(author, EventKind.CONSULTATION_UPDATE)] if author.active else []
    else:
        return
    kinds = dict.fromkeys(k for _, k in targets)
    deliver_to(
        targets,
        [],
        {k: consultation_message(consultation, action, k) for k in kinds},
        actor_id=actor.id if actor else None,
        consultation_id=consultation.id,
    )


def register(app) -> None:
    from ..cases.process import referral_changed
    from ..consultations.process import consultation_changed

    referral_changed.connect(notify)
    consultation_changed.connect(notify_consultation)
