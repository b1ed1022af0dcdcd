"""The guide's versions as other features ask for them (the surveys name the version a respondent read)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from ..extensions import db
from .models import GuideVersion


def current_number() -> int | None:
    """The newest published version's number; None while only the built-in texts exist."""
    return db.session.scalar(select(func.max(GuideVersion.number)))


def published_versions() -> list[tuple[int, datetime, str]]:
    """(number, published_at, note) of every published version, oldest first."""
    rows = db.session.execute(
        select(GuideVersion.number, GuideVersion.published_at, GuideVersion.note).order_by(GuideVersion.number)
    )
    return [(number, published_at, note) for number, published_at, note in rows.tuples()]
