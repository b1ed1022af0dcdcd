"""Running one domain action from a page: one transaction, and the user told how it went."""
from __future__ import annotations

from collections.abc import Callable

from flask import flash

from .cases.process import ConcurrentChange, ProcessError
from .extensions import db


def carry_out(operation: Callable[[], object], done: str, current_state: Callable[[], object]) -> bool:
    """Run `operation` and commit; on a refusal roll back and say why (with the state someone else
    left it in, for a concurrent change). True when it took effect."""
    try:
        operation()
        db.session.commit()
    except ConcurrentChange as error:
        db.session.rollback()
        flash(f"{error} Aktueller Status: „{current_state().label}“.", "danger")
    except ProcessError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        flash(done, "success")
        return True
    return False
