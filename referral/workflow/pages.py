"""The page side of the workflow, one for referrals and consultations: the loader ("this object,
this action, this user"), the runner of an action that says how it went, and the answer to a refusal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from flask import Blueprint, abort, flash, redirect
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..actions import carry_out
from ..extensions import db
from .engine import ActionT, StateT, Workflow
from .errors import Refused


@dataclass(frozen=True)
class Loader(Generic[ActionT, StateT]):
    """The object `ident`, if the current user may take `action` on it now.

    404 when the user may not see it (unless `gone` explains where it went), 403 when the action is
    outside the user's role (unless `held` explains who holds it), and `Refused` with the page to go
    to when the object has moved on since the user's page was loaded (someone else acted first)."""

    workflow: Workflow[ActionT, StateT]
    find: Callable[[int, ActionT], Any]  # the object if the user may see it, else None
    may: Callable[[Any, ActionT], bool]  # role and scope, whatever the state
    page: Callable[[Any], str]  # where the object is shown
    gone: Callable[[int], Refused | None] = lambda ident: None
    held: Callable[[Any, ActionT], str | None] = lambda obj, action: None
    tell_state: bool = True  # the refusal names the current state

    def __call__(self, ident: int, action: ActionT) -> Any:
        found = self.find(ident, action)
        if found is None:
            refused = self.gone(ident)
            if refused is not None:
                raise refused
            abort(404)
        if not self.may(found, action):
            reason = self.held(found, action)
            if reason is None:
                abort(403)
            raise Refused(reason, self.page(found))
        rules = self.workflow.rules
        if not rules.possible(action, found.state):
            message = rules.refusal(action, found.state)
            if self.tell_state:
                message += f" Aktueller Status: „{found.state.label}“."
            raise Refused(message, self.page(found))
        return found


def carry_out_action(
    workflow: Workflow[ActionT, StateT],
    action: ActionT,
    ident: int,
    operation: Callable[[], object],
    next_page: Callable[[], str],
) -> Response:
    """Run one action in one transaction, tell the user how it went (with the state someone else
    left the object in, for a concurrent change), and go on to `next_page()`."""
    model = workflow.model()
    carry_out(
        operation,
        workflow.rules[action].done,
        lambda: db.session.scalar(select(model.state).where(model.id == ident)),
    )
    return redirect(next_page())


def answer_refusals(blueprint: Blueprint) -> None:
    """A `Refused` raised in `blueprint`'s views: nothing of the request is kept, the user is sent
    on with the explanation."""

    @blueprint.errorhandler(Refused)
    def refused(error: Refused) -> Response:
        db.session.rollback()
        flash(str(error), error.category)
        return redirect(error.target)
