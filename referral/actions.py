"""Running one domain action from a page: in the request's transaction, and the user told how it went."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from .cases.process import ConcurrentChange, ProcessError
from .extensions import db

# Who won is unknown here (this serves referrals and consultations): no "another person".
LOST_IN_THE_DATABASE = (
    "Gleichzeitig wurde dieselbe Sache an anderer Stelle bearbeitet. Ihre Aktion wurde nicht "
    "ausgeführt. Bitte prüfen Sie den aktuellen Stand."
)


def lost_a_race(error: Exception) -> bool:
    """A write that lost to a concurrent one in the database: stale rows, a deadlock, a serialisation failure."""
    if isinstance(error, StaleDataError):
        return True
    try:
        from psycopg.errors import DeadlockDetected, SerializationFailure
    except ImportError:  # SQLite only: it serialises writers and has neither
        return False
    return isinstance(error, DBAPIError) and isinstance(error.orig, (DeadlockDetected, SerializationFailure))


def carry_out(operation: Callable[[], object], done: str, current_state: Callable[[], object]) -> bool:
    """Run `operation` and flush (the request commits it); on a refusal roll back and say why (with
    the state someone else left it in, for a concurrent change). True when it took effect."""
    try:
        operation()
        db.session.flush()  # a lost race shows here, not in the request's commit
    except ConcurrentChange as error:
        db.session.rollback()
        flash(f"{error} Aktueller Status: „{current_state().label}“.", "danger")
    except (StaleDataError, DBAPIError) as error:  # lost in the database, past the version check
        db.session.rollback()
        if not lost_a_race(error):
            raise
        flash(f"{LOST_IN_THE_DATABASE} Aktueller Status: „{current_state().label}“.", "danger")
    except ProcessError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        flash(done, "success")
        return True
    return False
