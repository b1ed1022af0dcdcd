"""No values of a failed SQL statement in logs or error texts. `hide_parameters` (config.py) keeps
the bound parameters out; PostgreSQL itself quotes the offending values in the DETAIL line of an
error ("Key (client_token)=(…) already exists"), which is cut here. The structured diagnostics
(`orig.diag`, constraint name) stay on the exception for code that handles the error."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def _without_detail(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("DETAIL:"))


def _cut_detail(context) -> None:
    for error in (context.original_exception, context.sqlalchemy_exception):
        if error is not None and error.args and isinstance(error.args[0], str) and "DETAIL:" in error.args[0]:
            error.args = (_without_detail(error.args[0]), *error.args[1:])


def register() -> None:
    if not event.contains(Engine, "handle_error", _cut_detail):
        event.listen(Engine, "handle_error", _cut_detail)
