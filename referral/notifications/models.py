from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class Notification(db.Model):
    """An entry in a user's list in the app. Names the case by number, never the child."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id", ondelete="SET NULL"))
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class OutboxMail(db.Model):
    """An e-mail waiting to be sent by `flask notifications deliver`; kept after sending as its record."""

    __tablename__ = "outbox_mail"
    __table_args__ = (Index("ix_outbox_mail_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")


class EmailChoice(db.Model):
    """A user's choice to receive no e-mail of one kind (absent: e-mail on). Mandatory kinds ignore it."""

    __tablename__ = "email_choice"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(db.Model):
    """A reminder sent: one per overdue item and day. The primary key makes a second one impossible,
    even when two runs of `flask reminders send` overlap."""

    __tablename__ = "reminder"

    subject: Mapped[str] = mapped_column(String(40), primary_key=True)  # "referral:17:acknowledge", "consultation:3"
    day: Mapped[date] = mapped_column(primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
