"""The dialect-specific INSERT … ON CONFLICT DO UPDATE, written once (PostgreSQL and SQLite spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db


def upsert(model: Any, values: dict[str, Any], *, index_elements: list[Any], set_: dict[str, Any]) -> Any:
    """The statement that inserts `values` or, where a row with the same `index_elements` exists,
    updates it with `set_`; the caller adds `.returning(…)` where it needs the row's values."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model).values(**values).on_conflict_do_update(index_elements=index_elements, set_=set_)
