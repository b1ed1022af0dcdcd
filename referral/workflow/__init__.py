"""One workflow engine for referrals and consultations.

Each feature configures it with its own rule table (`cases/process.py`, `consultations/process.py`):
which action is possible in which state, for which roles, where it leads. The engine checks an
action against that table, locks the object's row, checks its version, and flushes; it never
commits or rolls back — the caller decides what becomes of the session.
"""
