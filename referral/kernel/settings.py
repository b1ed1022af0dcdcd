"""The settings the admin can change (the deadlines for now), with their defaults."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

DEADLINE_DEFAULTS = {
    "ack_acute_hours": 2,
    "ack_working_days": 1,
    "feedback_working_days": 10,
    "consultation_accept_working_days": 2,
    # Data protection: the tool is a channel, not an archive (PROCESS.md, "Data protection").
    "retention_days": 180,
    "draft_retention_days": 90,
}


class Setting(db.Model):  # type: ignore[name-defined,misc]
    """Settings the admin can change (deadlines for now)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int]


def deadline_settings() -> dict[str, int]:
    stored = dict(db.session.execute(select(Setting.key, Setting.value)).tuples().all())
    return {key: stored.get(key, default) for key, default in DEADLINE_DEFAULTS.items()}
