"""Flask-Security's e-mails (password reset, notices) go through the outbox like all others.

The request only writes a row; the delivery worker sends it. So a reset request for a known
address takes as long as one for an unknown address (no SMTP in the request), and a mail is not
lost while the SMTP server is down.
"""

from __future__ import annotations

from flask_security import MailUtil


class OutboxMailUtil(MailUtil):
    def send_mail(self, template, subject, recipient, sender, body, html, **kwargs) -> None:
        from ..notifications.delivery import enqueue  # imported here: extensions.py imports this module

        address = recipient if isinstance(recipient, str) else recipient[1]
        enqueue(str(address), str(subject), body or "")
        # Not committed here: the request commits it with its other changes (referral/lifecycle.py).
