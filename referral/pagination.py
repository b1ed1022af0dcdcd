"""Lists come in pages: one COUNT and one LIMIT/OFFSET query, whatever the size of the table."""

from __future__ import annotations

from sqlalchemy import func, select

from .extensions import db

PER_PAGE = 25


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
