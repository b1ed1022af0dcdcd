"""The engine: a rule table per feature, and `Workflow.apply` that checks, locks, changes and flushes.

Order of `apply`, the same for every feature:
1. the rule: is the action possible in the object's state? (`ProcessError`, nothing changed)
2. `checked` is sent (tests line up two concurrent requests there);
3. the object's row is locked until the end of the transaction and its version compared with the
   one loaded: a concurrent change that won is reported (`ConcurrentChange`) before this action
   changes anything, with the winner's identity in mind (two windows of one person are not
   "another person");
4. the state moves, the feature's effect runs (history entry, fields), and everything is flushed.
Nothing here commits or rolls back: after a refusal the caller decides what becomes of its session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from blinker import Signal
from sqlalchemy import Table, select, update
from sqlalchemy.orm.exc import StaleDataError

from ..accounts.models import Role
from ..extensions import db
from .errors import LOST_IN_THE_DATABASE, ConcurrentChange, ProcessError


class StateLike(Hashable, Protocol):
    """A state of a workflow: an enum member with a German label."""

    @property
    def label(self) -> str: ...


class Actor(Protocol):
    @property
    def id(self) -> int | None: ...


StateT = TypeVar("StateT", bound=StateLike)
ActionT = TypeVar("ActionT", bound=Hashable)
R = TypeVar("R")


class Keep(enum.Enum):
    """Target of an action that does not change the state."""

    STATE = "keep"


class Gone(enum.Enum):
    """Target of an action that deletes the object."""

    DELETED = "deleted"


KEEP = Keep.STATE


class Winner(enum.Enum):
    """Who made the change that the loser of a race lost to, as far as the committed history says."""

    SELF = "self"  # the same person, in another window or tab
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Rule(Generic[StateT]):
    sources: frozenset[StateT]
    target: StateT | Keep | Gone
    roles: frozenset[Role]
    label: str
    done: str

    @property
    def changes_state(self) -> bool:
        return not isinstance(self.target, (Keep, Gone))


class RuleTable(Mapping[ActionT, Rule[StateT]]):
    """Which action is possible in which state, for which roles, and where it leads."""

    def __init__(self, rules: Mapping[ActionT, Rule[StateT]]) -> None:
        self._rules = dict(rules)

    def __getitem__(self, action: ActionT) -> Rule[StateT]:
        return self._rules[action]

    def __iter__(self) -> Iterator[ActionT]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def possible(self, action: ActionT, state: StateT) -> bool:
        return state in self._rules[action].sources

    def refusal(self, action: ActionT, state: StateT) -> str:
        return f"„{self._rules[action].label}“ ist im Status „{state.label}“ nicht möglich."

    def check(self, action: ActionT, state: StateT) -> Rule[StateT]:
        """The rule of `action`, or `ProcessError` if it is not possible in `state`."""
        if not self.possible(action, state):
            raise ProcessError(self.refusal(action, state))
        return self._rules[action]


def lock_row(table: Table, ident: int) -> int | None:
    """Lock the row `ident` of `table` (with a `version` column) until the end of the transaction and
    return its committed version (None: the row is gone). A second writer waits here for the first.
    PostgreSQL: SELECT … FOR NO KEY UPDATE, the lock the version-checked UPDATE takes anyway, so that
    child rows this transaction inserted before (their foreign keys hold KEY SHARE locks on the row)
    cannot make two writers deadlock here. SQLite has no row locks; a no-op UPDATE takes its write lock."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(table).where(table.c.id == ident).values(version=table.c.version))
        return db.session.scalar(select(table.c.version).where(table.c.id == ident))
    return db.session.scalar(select(table.c.version).where(table.c.id == ident).with_for_update(key_share=True))


@dataclass(frozen=True)
class Workflow(Generic[ActionT, StateT]):
    """One feature's configuration of the engine.

    `model()` is the mapped class, with `id`, `state` and a `version` column (its version_id_col); a
    function, because the models import their feature's process module (for the enums);
    `last_actor(id)` tells who made the object's last committed change; `lost(action, state, winner)`
    is the German message for the loser of a race, given the state it found when it loaded.
    """

    rules: RuleTable[ActionT, StateT]
    model: Callable[[], type[Any]]
    last_actor: Callable[[int], int | None]
    lost: Callable[[ActionT, StateT, Winner], str]
    checked: Signal | None = None

    def apply(self, obj: Any, action: ActionT, actor: Actor, effect: Callable[[StateT], R]) -> R:
        """Check `action`, lock and compare the version, move the state, run `effect(state_before)`,
        flush. Never commits or rolls back."""
        with db.session.no_autoflush:  # what the caller changed so far is written by the flush below
            before: StateT = obj.state
            actor_id = actor.id
        rule = self.rules.check(action, before)
        if self.checked is not None:
            self.checked.send(obj, action=action)
        self.lock(obj, action, actor_id)
        if rule.changes_state:
            obj.state = rule.target
        result = effect(before)
        self.flush()
        return result

    def lock(self, obj: Any, action: ActionT, actor_id: int | None) -> None:
        """Lock `obj`'s row and refuse with `ConcurrentChange` if someone changed it since it was loaded.

        Runs without autoflush: this request's pending changes are not written before the check."""
        with db.session.no_autoflush:
            ident, state, loaded = obj.id, obj.state, obj.version
            if ident is None:  # not yet in the database: nobody else can have changed it
                return
            current = lock_row(self.model().__table__, ident)
            if current == loaded:
                return
            last = self.last_actor(ident)
        winner = Winner.UNKNOWN if last is None else Winner.SELF if last == actor_id else Winner.OTHER
        raise ConcurrentChange(self.lost(action, state, winner))

    def flush(self) -> None:
        """Flush; a write that still loses (behind the lock, e.g. a stale child row) is a
        `ConcurrentChange` whose winner is unknown. The session then needs the caller's rollback."""
        try:
            db.session.flush()
        except StaleDataError as error:
            raise ConcurrentChange(LOST_IN_THE_DATABASE) from error
