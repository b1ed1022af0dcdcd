"""Changes a person makes to their own notifications: read marks and e-mail choices.

Like every operation: check, change, record, flush; the caller (request or CLI) commits.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from ..accounts.models import User
from ..audit.log import record
from ..extensions import db
from ..timeutil import utcnow
from .kinds import kinds_for, mandatory_for
from .models import EmailChoice, Notification


def mark_read(user: User, notification: Notification) -> None:
    if notification.user_id != user.id:
        raise PermissionError("only one's own notifications are marked read")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()


def switched_off(user: User) -> set[str]:
    return set(db.session.scalars(select(EmailChoice.kind).where(EmailChoice.user_id == user.id)))


def choose_emails(user: User, wanted: set[str]) -> bool:
    """Keep the e-mails `user` wants among the optional kinds; True when the choice changed. Mandatory
    kinds (e.g. a referral's feedback due) cannot be switched off."""
    mandatory = mandatory_for(user)
    optional = {k.value for k in kinds_for(user) if k not in mandatory}
    off = optional - wanted
    if off == switched_off(user) & optional:
        return False
    db.session.execute(delete(EmailChoice).where(EmailChoice.user_id == user.id))
    db.session.add_all(EmailChoice(user_id=user.id, kind=k) for k in sorted(off))
    record("user.email_choices", user, object_type="user_account", fields=sorted(off))
    db.session.flush()
    return True


def mark_read_for_consultation(user: User, consultation_id: int) -> None:
    """The consultation's page was seen: its notifications to `user` are read too."""
    db.session.execute(
        update(Notification)
        .where(
            Notification.user_id == user.id,
            Notification.consultation_id == consultation_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
