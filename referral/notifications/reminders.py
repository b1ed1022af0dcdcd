"""`flask reminders send` (daily by `flask worker`): overdue items to those who must act (PROCESS.md, *Deadlines*).

Overdue acknowledgements and feedback go to the lead(s) of the referral's district, consultations not
accepted in time to the InsoFa pool. Each overdue item is reminded once per day: the reminder row
(subject, day) is written in the same transaction as the notifications and mails, and its primary key
refuses a second one, also when two runs overlap.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Role
from ..cases.deadlines import Late, overdue
from ..cases.models import Referral
from ..consultations.models import Consultation
from ..extensions import db
from ..timeutil import to_local, utcnow
from .events import Message, active_members, deliver_to, link
from .kinds import EventKind
from .models import Reminder
from .wording import OVERDUE


def _overdue_referrals(now: datetime) -> list[tuple[Referral, str, str]]:
    acknowledge = db.session.scalars(
        select(Referral).where(overdue(now, Late.ACKNOWLEDGE).condition).order_by(Referral.id)
    ).all()
    feedback = db.session.scalars(
        select(Referral).where(overdue(now, Late.FEEDBACK).condition).order_by(Referral.id)
    ).all()
    return [(r, "acknowledge", "Eingangsbestätigung überfällig") for r in acknowledge] + [
        (r, "feedback", "Rückmeldung an die Schule überfällig") for r in feedback
    ]


def send(now: datetime | None = None) -> int:
    """Remind of everything overdue that was not reminded today; returns the number of items reminded."""
    now = now or utcnow()
    day = to_local(now).date()
    done = set(db.session.scalars(select(Reminder.subject).where(Reminder.day == day)))
    count = 0
    leads: dict[int, list] = defaultdict(list)
    for referral, what, label in _overdue_referrals(now):
        subject = f"referral:{referral.id}:{what}"
        if subject in done:
            continue
        if referral.district_id not in leads:
            leads[referral.district_id] = active_members(roles=[Role.ASD_LEAD], district_id=referral.district_id)
        days = (now - (referral.acknowledge_due_at if what == "acknowledge" else referral.feedback_due_at)).days
        count += _remind(
            subject,
            day,
            leads[referral.district_id],
            referral.number,
            label,
            days,
            referral.school.name,
            link("cases.show", referral_id=referral.id),
            referral_id=referral.id,
        )
    pool = None
    for consultation in db.session.scalars(
        select(Consultation).where(Consultation.overdue_clause(now)).order_by(Consultation.id)
    ).all():
        subject = f"consultation:{consultation.id}"
        if subject in done:
            continue
        pool = pool if pool is not None else active_members(roles=[Role.INSOFA])
        count += _remind(
            subject,
            day,
            pool,
            consultation.number,
            "Annahme der Fachberatung überfällig",
            (now - consultation.accept_due_at).days,
            consultation.school.name,
            link("consultations.show", consultation_id=consultation.id),
            consultation_id=consultation.id,
        )
    from ..api.webhooks import feedback_due_soon  # the case software hears of it too, once per referral

    feedback_due_soon(now)
    return count


def _remind(subject: str, day, users, number: str, label: str, days: int, school: str, url: str, **target) -> int:
    """One item: its reminder row, notifications and mails, committed together or not at all."""
    db.session.add(Reminder(subject=subject, day=day))
    try:
        db.session.flush()  # first, so that a concurrent run waits here and then finds it taken
    except IntegrityError:
        db.session.rollback()
        return 0
    overdue_for = "seit heute" if days < 1 else f"seit {days} Tag{'en' if days != 1 else ''}"
    headline, first_line = OVERDUE.fill(number=number, school=school, what=label, since=overdue_for)
    body = render_template("email/reminder.txt", first_line=first_line, link=url)
    message = Message(subject=headline, body=body, text=f"{headline} ({overdue_for}, {school})")
    deliver_to([(u, EventKind.OVERDUE) for u in users], [], {EventKind.OVERDUE: message}, **target)
    db.session.commit()
    return 1
