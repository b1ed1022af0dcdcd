"""Running one domain action from a page: in the request's transaction, and the user told how it went."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from .extensions import db
from .workflow.errors import LOST_IN_THE_DATABASE, ConcurrentChange, ProcessError, lost_a_race


def carry_out(operation: Callable[[], object], done: str, current_state: Callable[[], object]) -> bool:
    """Run `operation` and flush (the request commits it); on a refusal roll back and say why (with
    the state someone else left it in, for a concurrent change). True when it took effect. The
    operation itself never rolls back: this page-side runner decides."""
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
