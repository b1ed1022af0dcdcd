"""When a referral is overdue: the one statement of the rule, for SQL (lists, counts, reminders)
and for one loaded referral. Working-day arithmetic lives in the kernel (referral/kernel/deadlines.py)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_

if TYPE_CHECKING:
    from .models import Referral


# --- Overdue ---------------------------------------------------------------------------------


class Late(enum.StrEnum):
    """What a referral can be overdue with (PROCESS.md, *Deadlines*)."""

    ACKNOWLEDGE = "acknowledge"  # the district confirms receipt
    FEEDBACK = "feedback"  # the school is owed feedback


@dataclass(frozen=True)
class OverdueRule:
    condition: Any  # SQL condition on `Referral`, for lists, counts and reminders
    applies: Callable[[Referral], bool]  # the same for one loaded referral


def overdue(now: datetime, *late: Late) -> OverdueRule:
    """The one statement of "overdue at `now`" (with `late`: only for those deadlines; without: any).

    An acknowledgement is overdue while the referral waits in SUBMITTED past `acknowledge_due_at`;
    feedback is overdue while the referral is open past `feedback_due_at`."""
    from .models import Referral  # the models import the process module, which imports this one
    from .process import OPEN_STATES, State

    rules: dict[Late, tuple[Any, Callable[[Referral], bool]]] = {
        Late.ACKNOWLEDGE: (
            and_(Referral.state == State.SUBMITTED, Referral.acknowledge_due_at < now),
            lambda r: r.state is State.SUBMITTED and r.acknowledge_due_at is not None and r.acknowledge_due_at < now,
        ),
        Late.FEEDBACK: (
            and_(Referral.state.in_(OPEN_STATES), Referral.feedback_due_at < now),
            lambda r: r.state in OPEN_STATES and r.feedback_due_at is not None and r.feedback_due_at < now,
        ),
    }
    chosen = [rules[kind] for kind in (late or tuple(Late))]
    conditions = [condition for condition, _ in chosen]
    predicates = [predicate for _, predicate in chosen]
    return OverdueRule(
        condition=conditions[0] if len(conditions) == 1 else or_(*conditions),
        applies=lambda referral: any(predicate(referral) for predicate in predicates),
    )
