"""When a referral is overdue: the one statement of the rule, for SQL (lists, counts, reminders)
and for one loaded referral. Working-day arithmetic lives in the kernel (referral/kernel/deadlines.py)."""

from __future__ import annotations

import enum
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
    """What "overdue at `now`" means for the deadlines in `late`: as SQL (`condition`) and for one
    loaded referral (`applies`). The SQL is built only when asked for: a list page asks every row's
    referral (`Referral.overdue`), and building the expressions cost more than the whole row."""

    now: datetime
    late: tuple[Late, ...]

    @property
    def condition(self) -> Any:  # SQL condition on `Referral`, for lists, counts and reminders
        from .models import Referral  # the models import the process module, which imports this one
        from .process import OPEN_STATES, State

        now = self.now
        rules = {
            Late.ACKNOWLEDGE: and_(Referral.state == State.SUBMITTED, Referral.acknowledge_due_at < now),
            Late.FEEDBACK: and_(Referral.state.in_(OPEN_STATES), Referral.feedback_due_at < now),
        }
        conditions = [rules[kind] for kind in self.late]
        return conditions[0] if len(conditions) == 1 else or_(*conditions)

    def applies(self, referral: Referral) -> bool:
        """The same for one loaded referral."""
        from .process import OPEN_STATES, State

        now, state = self.now, referral.state
        for kind in self.late:
            if kind is Late.ACKNOWLEDGE:
                due, waiting = referral.acknowledge_due_at, state is State.SUBMITTED
            else:
                due, waiting = referral.feedback_due_at, state in OPEN_STATES
            if waiting and due is not None and due < now:
                return True
        return False


def overdue(now: datetime, *late: Late) -> OverdueRule:
    """The one statement of "overdue at `now`" (with `late`: only for those deadlines; without: any).

    An acknowledgement is overdue while the referral waits in SUBMITTED past `acknowledge_due_at`;
    feedback is overdue while the referral is open past `feedback_due_at`."""
    return OverdueRule(now, late or tuple(Late))
