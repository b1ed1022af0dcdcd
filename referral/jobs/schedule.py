"""The daily jobs: when each is due, claiming it once per day city-wide, running and recording it.

Kept small instead of APScheduler: the schedule is three jobs at fixed Berlin times, and what has
to be right is "once per day across all servers" and "missed ones run when a worker comes back".
Both come from one table row per (job, day) that the first worker to insert it owns
(`INSERT … ON CONFLICT DO NOTHING`; PostgreSQL's unique index or SQLite's write lock makes the
second insert find it). APScheduler's job stores would add a second bookkeeping of the same facts
and still need this row for the city-wide "once".

Catch-up: a job is due when its most recent scheduled time has passed and that day has no row, so
a worker that starts after a missed time runs it at once. Older missed days are not run one by one:
each job works on the state as of now (retention purges everything past its period, reminders
remind of everything overdue today, the audit check walks the whole chain), so one run covers
them; the gap stays visible on the admin page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db
from ..timeutil import local_to_utc, to_local, utcnow
from .models import JobRun

log = logging.getLogger("referral.worker")

RUNNING, OK, FAILED = "running", "ok", "failed"


class ChainBroken(Exception):
    """The audit check found a broken entry (which one is told by `flask audit verify`)."""


def _retention() -> dict[str, int]:
    from .. import retention

    plan = retention.run(report=lambda line: None)
    return {"Mitteilungen": plan.closed, "Entwürfe": plan.drafts, "Fachberatungen": plan.consultations}


def _reminders() -> dict[str, int]:
    from ..notifications.reminders import send

    return {"erinnert": send()}


def _audit_verify() -> dict[str, int]:
    from ..audit import chain

    verdict = chain.verify()
    db.session.rollback()  # only read; the walk must not hold a transaction open
    if not verdict.ok:
        error = ChainBroken()
        error.counts = {"geprüft": verdict.checked}  # type: ignore[attr-defined]
        raise error
    return {"geprüft": verdict.checked}


PRUNE_BATCH = 5000  # rows per DELETE and commit: short transactions, bounded memory


def _prune() -> dict[str, int]:
    """Rows that only grow: delivered webhooks past their keeping time and expired idempotency keys,
    deleted in batches, each committed on its own (an interrupted run just leaves the rest for the next)."""
    from ..api import idempotency, webhooks

    now = utcnow()
    counts = {}
    for label, prune in (("Webhooks", webhooks.prune_delivered), ("Idempotency-Keys", idempotency.prune_expired)):
        counts[label] = 0
        while True:
            deleted = prune(now, PRUNE_BATCH)
            db.session.commit()
            counts[label] += deleted
            if deleted < PRUNE_BATCH:
                break
    return counts


def _audit_checkpoint() -> dict[str, int]:
    """Seal what is waiting, then sign the chain's head into AUDIT_CHECKPOINT_FILE / the mail to
    AUDIT_CHECKPOINT_MAIL (nothing to sign without a key: then only the sealing)."""
    from ..audit import chain, checkpoints

    counts = {"versiegelt": chain.seal_pending()}
    checkpoint = checkpoints.publish()
    db.session.commit()  # the mail in the outbox
    if checkpoint is not None:
        counts["Block"] = checkpoint["block"]
    return counts


def seal_audit_log() -> int:
    """Every worker round: link the audit log's new entries into a block when the oldest has waited
    AUDIT_SEAL_SECONDS or a full block is waiting (the sealers on several servers exclude each
    other; writers never wait for them)."""
    from ..audit import chain

    due = chain.seal_due(current_app.config["AUDIT_SEAL_SECONDS"])
    db.session.rollback()
    return chain.seal_pending() if due else 0


def refresh_evaluation() -> int:
    """Every worker round: recompute the evaluation's months that changes marked dirty, so that a page
    view rarely has any left to do and a bulk change (retention, key rotation: "everything") is never
    recomputed inside a request."""
    from ..evaluation import aggregates

    taken = aggregates.refresh()
    db.session.commit()
    return taken


# Run at the start of every worker round, before the daily jobs; a failure is logged and the round goes on.
FREQUENT: tuple[Callable[[], int], ...] = (seal_audit_log, refresh_evaluation)


@dataclass(frozen=True)
class Job:
    name: str
    label: str
    run: Callable[[], dict[str, int]]


# In the order the admin page lists them; the names are those of JOB_TIMES.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("retention", "Löschfristen (Aufbewahrung)", _retention),
        Job("reminders", "Erinnerungen an überfällige Fristen", _reminders),
        Job("audit-checkpoint", "Signierter Prüfpunkt des Protokolls", _audit_checkpoint),
        Job("audit-verify", "Prüfung des Protokolls (Hash-Kette)", _audit_verify),
        Job("prune", "Aufräumen (zugestellte Webhooks, abgelaufene Idempotency-Keys)", _prune),
    )
}


def scheduled_at(name: str) -> time:
    at: time = current_app.config["JOB_TIMES"][name]
    return at


def occurrence(name: str, now: datetime) -> date:
    """The Berlin day of the job's most recent scheduled time at `now` (naive UTC): today once the
    time has passed, else yesterday."""
    local = to_local(now)
    return local.date() if local.time() >= scheduled_at(name) else local.date() - timedelta(days=1)


def _insert() -> Callable[..., Any]:
    return pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert


def claim(name: str, day: date, now: datetime) -> JobRun | None:
    """The run of `name` for `day` if this worker gets it; None if another worker has (or had) it.

    Committed at once, so that every other worker sees the claim while this one works. A run left
    `running` longer than JOB_STALE_MINUTES (its worker was killed) is taken over; the conditional
    UPDATE lets exactly one worker do that.
    """
    claimed = db.session.execute(
        _insert()(JobRun)
        .values(job=name, day=day, started_at=now, outcome=RUNNING, attempts=1, counts={}, error="")
        .on_conflict_do_nothing(index_elements=["job", "day"])
        .returning(JobRun.id)
    ).scalar()
    if claimed is None:
        stale = now - timedelta(minutes=current_app.config["JOB_STALE_MINUTES"])
        claimed = db.session.execute(
            update(JobRun)
            .where(JobRun.job == name, JobRun.day == day, JobRun.outcome == RUNNING, JobRun.started_at < stale)
            .values(started_at=now, attempts=JobRun.attempts + 1)
            .returning(JobRun.id)
        ).scalar()
    db.session.commit()
    return db.session.get(JobRun, claimed) if claimed is not None else None


def run(name: str, day: date, now: datetime | None = None) -> JobRun | None:
    """Claim and run one job; the run is recorded as ok or failed (with the error's class only:
    a message may quote data). None if another worker has it."""
    now = now or utcnow()
    record = claim(name, day, now)
    if record is None:
        return None
    run_id = record.id
    try:
        counts = JOBS[name].run()
    except Exception as error:
        db.session.rollback()
        record = db.session.get(JobRun, run_id)
        assert record is not None
        record.outcome, record.error = FAILED, type(error).__name__[:100]
        record.counts = dict(getattr(error, "counts", {}))
        log.error("job %s for %s failed: %s", name, day.isoformat(), type(error).__name__)
    else:
        record = db.session.get(JobRun, run_id)
        assert record is not None
        record.outcome, record.counts = OK, counts
    record.ended_at = utcnow()
    db.session.commit()
    return record


def due(now: datetime) -> list[tuple[str, date]]:
    """The jobs whose most recent scheduled time has no run yet (or only one whose worker died)."""
    stale = now - timedelta(minutes=current_app.config["JOB_STALE_MINUTES"])
    found = []
    for name in JOBS:
        day = occurrence(name, now)
        existing = db.session.scalar(select(JobRun).where(JobRun.job == name, JobRun.day == day))
        if existing is None or (existing.outcome == RUNNING and existing.started_at < stale):
            found.append((name, day))
    db.session.rollback()
    return found


def run_due(now: datetime | None = None, stop: Callable[[], bool] = lambda: False) -> list[JobRun]:
    """The frequent jobs, then every due job, each claimed and committed on its own; stops between
    jobs when asked to."""
    for frequent in FREQUENT:
        try:
            frequent()
        except Exception as error:  # noqa: BLE001 - the next round tries again; the daily jobs still run
            db.session.rollback()
            log.error("%s failed: %s", frequent.__name__, type(error).__name__)
    done = []
    for name, day in due(now or utcnow()):
        if stop():
            break
        record = run(name, day, now)
        if record is not None:
            done.append(record)
    return done


# --- What the admin page and /readyz show ------------------------------------------------------


@dataclass
class Status:
    job: Job
    at: time
    runs: list[JobRun] = field(default_factory=list)  # newest first
    problem: str = ""  # "" when all is well; else a German sentence

    @property
    def label(self) -> str:
        return self.job.label


def status(now: datetime | None = None, runs_per_job: int = 10) -> list[Status]:
    """Each job with its last runs; a problem when the newest run failed, or no run started within a
    day (plus JOB_GRACE_MINUTES, for the clock change and a slow start)."""
    now = now or utcnow()
    grace = timedelta(days=1, minutes=current_app.config["JOB_GRACE_MINUTES"])
    stale = now - timedelta(minutes=current_app.config["JOB_STALE_MINUTES"])
    found = []
    for name, job in JOBS.items():
        runs = list(
            db.session.scalars(select(JobRun).where(JobRun.job == name).order_by(JobRun.day.desc()).limit(runs_per_job))
        )
        entry = Status(job, scheduled_at(name), runs)
        alive = [r for r in runs if r.outcome == OK or (r.outcome == RUNNING and r.started_at >= stale)]
        if runs and runs[0].outcome == FAILED:
            entry.problem = f"Der letzte Lauf am {runs[0].day:%d.%m.%Y} ist fehlgeschlagen."
        elif not alive:
            entry.problem = "Ist noch nie gelaufen." if not runs else "Seit mehr als einem Tag nicht gelaufen."
        elif alive[0].started_at < now - grace:
            entry.problem = "Seit mehr als einem Tag nicht gelaufen."
        found.append(entry)
    return found


def next_time(name: str, now: datetime) -> datetime:
    """The next scheduled time of the job (naive UTC), for the admin page."""
    local = to_local(now)
    day = local.date() if local.time() < scheduled_at(name) else local.date() + timedelta(days=1)
    return local_to_utc(datetime.combine(day, scheduled_at(name)))
