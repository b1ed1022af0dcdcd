"""The refusals of the workflow, and how a lost race is recognised.

The messages are German and shown to the user as they are.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

# PostgreSQL's SQLSTATE class 40 ("transaction rollback": deadlock, serialization failure) means the
# transaction lost to a concurrent one; it is a race, not an outage.
RACE_SQLSTATE_CLASS = "40"

# Who won is unknown when the database, not the version check, refused: no "another person".
LOST_IN_THE_DATABASE = (
    "Gleichzeitig wurde dieselbe Sache an anderer Stelle bearbeitet. Ihre Aktion wurde nicht "
    "ausgeführt. Bitte prüfen Sie den aktuellen Stand."
)


class ProcessError(Exception):
    """An action that the process does not allow; the message is German and shown to the user."""


class ConcurrentChange(ProcessError):
    """Someone else (or the same person in another window) changed the object between loading and
    writing. The caller's session still holds this request's changes: the caller rolls back."""


class Refused(Exception):
    """The action cannot be taken (any more): the user is sent to `target` with the message."""

    def __init__(self, message: str, target: str, category: str = "danger") -> None:
        super().__init__(message)
        self.target = target
        self.category = category


def sqlstate(error: BaseException) -> str:
    """The SQLSTATE of a database error (PostgreSQL), "" where there is none (SQLite, other errors)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(original, "sqlstate", None)
    return code if isinstance(code, str) else ""


def lost_a_race(error: BaseException) -> bool:
    """A write that lost to a concurrent one in the database: stale rows, a deadlock, a serialisation
    failure (any SQLSTATE of class 40)."""
    if isinstance(error, StaleDataError):
        return True
    return isinstance(error, DBAPIError) and sqlstate(error).startswith(RACE_SQLSTATE_CLASS)
