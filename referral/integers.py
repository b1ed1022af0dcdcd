"""Integers that come from URLs and query strings fit the database's INTEGER columns, or they are not
accepted: a number too large for PostgreSQL or SQLite would otherwise end in a 500 (OverflowError,
NumericValueOutOfRange) instead of "not found"."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

# Ids are INTEGER columns (32 bits signed on PostgreSQL); page numbers stay far below this too.
DB_INT_MAX = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` in every route: a value above DB_INT_MAX does not match, so the answer is 404."""

    def __init__(
        self,
        map: Map,  # noqa: A002 - Werkzeug's parameter names
        fixed_digits: int = 0,
        min: int | None = None,  # noqa: A002
        max: int | None = DB_INT_MAX,  # noqa: A002
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=DB_INT_MAX if max is None else max, signed=signed)


def query_int(value: str) -> int:
    """For `request.args.get(name, default, type=query_int)`: a value that is no integer or lies outside
    the INTEGER range raises ValueError, which Werkzeug turns into the default."""
    number = int(value)
    if not -DB_INT_MAX <= number <= DB_INT_MAX:
        raise ValueError(f"{value!r} is out of range")
    return number


def id_or_none(value: str | None) -> int | None:
    """A filter's id typed into a query string, or None if it is none or could name no row."""
    try:
        return query_int(value) if value else None
    except ValueError:
        return None
