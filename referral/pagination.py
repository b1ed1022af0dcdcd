"""Lists come in pages, in one of two ways.

`paginate`: one COUNT and one LIMIT/OFFSET query, for lists that stay small (accounts, audit search).

`keyset`: for the lists of referrals, which grow with every school year. A page starts after (or
before) the sort keys of a row of the page the user came from, so that the database reads the page
from an index in order and nothing else: the same work on page 1 and on page 200, with 1,000 or
200,000 referrals. The count is bounded ("mehr als 500"). The position travels in an opaque cursor,
signed with the app's secret key: a cursor that was altered, or belongs to another list or other
filters, is ignored and the list starts at its beginning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import ColumnElement, false, func, literal, select, tuple_, union_all

from .extensions import db
from .integers import DB_INT_MAX

PER_PAGE = 25
# A list shows its exact length up to this many rows, beyond it "mehr als …": counting further
# would read every row of a district's history on every page view.
COUNT_UP_TO = 500


class Page:
    """One page of rows with what the template needs to link the others."""

    def __init__(self, rows, page: int, total: int, per_page: int = PER_PAGE):
        self.rows, self.page, self.total = rows, page, total
        self.pages = max(1, -(-total // per_page))
        self.has_prev, self.has_next = page > 1, page < self.pages


def contains(text: str) -> str:
    """A LIKE pattern that finds `text` literally (% and _ typed by a user are not wildcards); use escape="\\"."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def paginate(statement, page: int, *, scalars: bool = True, per_page: int = PER_PAGE) -> Page:
    page = max(1, page)
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    limited = statement.limit(per_page).offset((page - 1) * per_page)
    rows = db.session.scalars(limited).all() if scalars else db.session.execute(limited).all()
    return Page(rows, page, total, per_page)


# --- Keyset pages --------------------------------------------------------------------------------

AFTER, BEFORE = "a", "b"


@dataclass(frozen=True)
class Position:
    """Where a page starts: after or before the row with these sort keys; `number`: which page it is."""

    number: int
    direction: str
    keys: tuple


@dataclass
class Window:
    """One page of a keyset list: its rows, its number, the cursors of the neighbouring pages, and the
    list's length if it is at most COUNT_UP_TO (else None)."""

    rows: list
    number: int
    total: int | None
    per_page: int
    prev_cursor: str | None
    next_cursor: str | None
    has_prev: bool

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def pages(self) -> int | None:
        if self.total is None:
            return None
        return max(1, -(-self.total // self.per_page), self.number)

    @property
    def count_up_to(self) -> int:
        return COUNT_UP_TO


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="referral-list-cursor")


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decoded(value: Any, kind: type) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and -DB_INT_MAX <= value <= DB_INT_MAX
        return value if ok else None
    raise TypeError(kind)


def encode_cursor(name: str, position: Position) -> str:
    return _serializer().dumps([name, position.number, position.direction, *map(_encode, position.keys)])


def decode_cursor(name: str, cursor: str | None, kinds: Sequence[type]) -> Position | None:
    """The position in the cursor, if the cursor is one this app made for this list (`name`, which
    includes the filters); None for no cursor, a tampered one, or one of another list."""
    if not cursor or len(cursor) > 1000:
        return None
    try:
        payload = _serializer().loads(cursor)
    except (BadData, ValueError, TypeError):
        return None
    if not (isinstance(payload, list) and len(payload) == 3 + len(kinds) and payload[0] == name):
        return None
    number, direction = payload[1], payload[2]
    if _decoded(number, int) is None or not 1 <= number <= DB_INT_MAX or direction not in (AFTER, BEFORE):
        return None
    try:
        keys = tuple(_decoded(value, kind) for value, kind in zip(payload[3:], kinds, strict=True))
    except ValueError:  # not an ISO date and time
        return None
    if any(key is None for key in keys):
        return None
    return Position(number, direction, keys)


def keyset(
    name: str,
    columns: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    keys: Sequence[tuple[Any, type]],
    cursor: str | None,
    *,
    descending: bool = False,
    partition: tuple[Any, Sequence[int]] | None = None,
    options: Sequence[Any] = (),
    per_page: int = PER_PAGE,
) -> Window:
    """One page of `select(*columns).where(*conditions)` in the order of `keys` (mapped attributes of
    the entity that `columns` starts with, with the type the cursor keeps them as; the last one unique).

    Each list has an index on (its equality column, *keys): `partition` names that column and its
    values. For several values (a lead of two districts) each value's page is read from the index on
    its own and the pages are merged, so that no value's whole history is sorted.

    Two queries: the page (one row more, to know whether there is a next one) and the bounded count."""
    position = decode_cursor(name, cursor, [kind for _, kind in keys])
    forward = position is None or position.direction == AFTER
    reverse = descending if forward else not descending  # the order the database reads in
    order = [column.desc() if reverse else column.asc() for column, _ in keys]
    where = list(conditions)
    if position is not None:
        row = tuple_(*(column for column, _ in keys))
        start = tuple_(*(literal(value, column.type) for (column, _), value in zip(keys, position.keys, strict=True)))
        where.append(row < start if reverse else row > start)

    column, values = partition if partition is not None else (None, ())
    counted = list(conditions)
    if column is not None and not values:
        where.append(false())
        counted.append(false())
    elif column is not None and len(values) == 1:
        where.append(column == values[0])
        counted.append(column == values[0])
    elif column is not None:
        counted.append(column.in_(values))
        identity = keys[-1][0]
        parts = [
            select(identity).where(*where, column == value).order_by(*order).limit(per_page + 1).subquery()
            for value in values
        ]
        where = [identity.in_(union_all(*(select(part.c[0]) for part in parts)))]

    statement = select(*columns).where(*where).order_by(*order).limit(per_page + 1).options(*options)
    rows = list(db.session.execute(statement).all())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    total = db.session.scalar(
        select(func.count()).select_from(select(literal(1)).where(*counted).limit(COUNT_UP_TO + 1).subquery())
    )

    if forward:
        number = position.number if position is not None else 1
        has_prev, has_next = position is not None, more
    else:
        has_prev, has_next = more, True
        # Rows added before meanwhile: this is not the first page, whatever the cursor counted.
        number = max(position.number, 2) if more and position is not None else 1
    names = [column.key for column, _ in keys]

    def cursor_at(row, direction: str, number: int) -> str:
        return encode_cursor(name, Position(number, direction, tuple(getattr(row[0], key) for key in names)))

    return Window(
        rows=rows,
        number=number,
        total=total if total is not None and total <= COUNT_UP_TO else None,
        per_page=per_page,
        # A page left empty (its rows changed meanwhile) goes back to the list's beginning.
        prev_cursor=cursor_at(rows[0], BEFORE, number - 1) if has_prev and rows else None,
        next_cursor=cursor_at(rows[-1], AFTER, number + 1) if has_next and rows else None,
        has_prev=has_prev,
    )
