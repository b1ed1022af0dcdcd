from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class JobRun(db.Model):
    """One daily job on one (Berlin) day: the row is its claim and its record at once.

    The unique (job, day) makes the claim: whichever worker inserts the row runs the job, every other
    worker, on any server, finds it taken. Holds no personal data: counts and an error's class only.
    """

    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("job", "day"),
        Index("ix_job_run_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    day: Mapped[date]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(10), default="running")  # running, ok, failed
    attempts: Mapped[int] = mapped_column(default=1)  # > 1: taken over from a worker that died in it
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(String(100), default="")  # the exception's class, never its message
