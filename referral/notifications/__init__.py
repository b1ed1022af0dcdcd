"""Notifications: in the app and by e-mail, written in the transaction of the event (an outbox)."""
