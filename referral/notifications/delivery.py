"""Sending the outbox: continuously by `flask worker`, or once by `flask notifications deliver`.

Each mail is first claimed with a lease (an UPDATE of its next attempt, committed), then sent, then
marked sent. Two workers (on any servers) never take the same mail: on PostgreSQL the claim skips
rows another worker has locked (`FOR UPDATE SKIP LOCKED`) and the UPDATE checks again that the mail
is still due, on SQLite the claim takes the database's write lock. If the SMTP server is down, the mail
stays in the outbox and is tried again later (1, 2, 4 … up to 60 minutes); nothing is lost.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta

from flask_mailman import EmailMessage
from sqlalchemy import select, update

from ..extensions import db
from ..timeutil import utcnow
from .models import OutboxMail

LEASE = timedelta(minutes=5)  # a worker that dies while sending lets another try after this


def enqueue(recipient: str, subject: str, body: str) -> OutboxMail:
    """An e-mail for the worker, written in the caller's transaction (sent only if that commits)."""
    mail = OutboxMail(recipient=recipient, subject=subject[:200], body=body)
    db.session.add(mail)
    return mail


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def _claim(now: datetime) -> OutboxMail | None:
    due = (
        select(OutboxMail.id)
        .where(OutboxMail.sent_at.is_(None), OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == due.scalar_subquery(), OutboxMail.sent_at.is_(None), OutboxMail.next_attempt_at <= now)
        .values(next_attempt_at=now + LEASE, attempts=OutboxMail.attempts + 1)
        .returning(OutboxMail.id)
    ).scalar()
    db.session.commit()
    return db.session.get(OutboxMail, claimed) if claimed else None


def deliver(limit: int = 500, now: datetime | None = None, stop: Callable[[], bool] = lambda: False) -> tuple[int, int]:
    """Send what is due; returns (sent, failed). `stop`: asked before each mail (the worker's SIGTERM)."""
    sent = failed = 0
    for _ in range(limit):
        if stop():
            break
        mail = _claim(now or utcnow())
        if mail is None:
            break
        try:
            EmailMessage(mail.subject, mail.body, to=[mail.recipient]).send()
        except (OSError, smtplib.SMTPException) as error:
            mail.next_attempt_at = (now or utcnow()) + backoff(mail.attempts)
            mail.last_error = f"{type(error).__name__}: {error}"[:500]
            failed += 1
        else:
            mail.sent_at = now or utcnow()
            sent += 1
        db.session.commit()
    return sent, failed
