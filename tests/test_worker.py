"""`flask worker`: each daily job once per day city-wide, missed ones on start, failures recorded and
shown in red, each mail once with two workers, and a graceful stop. Real worker processes against
the test database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db
from referral.jobs import schedule
from referral.jobs.models import JobRun
from referral.notifications.models import OutboxMail
from referral.timeutil import local_to_utc, to_local, utcnow

from . import factories
from .servers import ROOT, process_env
from .test_notifications import smtp  # noqa: F401 - the fixture: a real SMTP server on a loopback port

ALL_DUE = (
    "retention=00:00,reminders=00:00,audit-checkpoint=00:00,audit-verify=00:00"  # every job's time has passed today
)


def start_worker(database_url: str, folder, *args: str, **variables: str) -> subprocess.Popen:
    env = process_env(database_url, folder, FLASK_APP="wsgi", JOB_TIMES=ALL_DUE, **variables)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen, timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker ended with {process.returncode}:\n{out}\n{err[-3000:]}"
    return out


def runs() -> list[JobRun]:
    db.session.expire_all()
    return list(db.session.scalars(select(JobRun).order_by(JobRun.job, JobRun.day)))


def today() -> datetime:
    return to_local(utcnow()).date()


def test_two_workers_started_together_run_each_due_job_once(app, world, database_url, tmp_path):
    workers = [start_worker(database_url, tmp_path, "--once") for _ in range(2)]
    output = "".join(finished(worker) for worker in workers)
    lines = output.splitlines()
    for name in schedule.JOBS:
        assert sum(line.startswith(f"{name} ") for line in lines) == 1, output
    recorded = runs()
    assert sorted(r.job for r in recorded) == sorted(schedule.JOBS)
    assert all(r.day == today() and r.outcome == "ok" and r.attempts == 1 and r.ended_at for r in recorded)
    entries = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert next(r for r in recorded if r.job == "audit-verify").counts == {"geprüft": entries}


def test_two_workers_claiming_at_the_same_moment_run_the_job_once(app, world, monkeypatch):
    """Threads with sessions of their own, both inside the claim while the job takes its time."""
    calls = []

    def slow():
        calls.append(threading.current_thread().name)
        time.sleep(0.5)
        return {"erinnert": 0}

    monkeypatch.setitem(schedule.JOBS, "reminders", schedule.Job("reminders", "Erinnerungen", slow))
    day, results, errors = today(), [], []
    barrier = threading.Barrier(2)

    def worker():
        try:
            with app.app_context():
                barrier.wait()
                record = schedule.run("reminders", day)
                results.append(record.outcome if record else None)
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, name=f"worker-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(calls) == 1 and sorted(results, key=str) == [None, "ok"]
    assert [(r.job, r.outcome) for r in runs()] == [("reminders", "ok")]


def test_a_job_missed_while_no_worker_ran_runs_on_start(app, world, runner):
    app.config["JOB_TIMES"] = {name: datetime.min.time() for name in schedule.JOBS}  # all passed today
    yesterday = today() - timedelta(days=1)
    for name in schedule.JOBS:
        db.session.add(JobRun(job=name, day=yesterday, started_at=utcnow() - timedelta(days=1), outcome="ok"))
    db.session.commit()
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert {(r.job, r.day, r.outcome) for r in runs() if r.day == today()} == {
        (n, today(), "ok") for n in schedule.JOBS
    }
    again = runner.invoke(args=["worker", "--once"])
    assert "retention" not in again.output and len(runs()) == 2 * len(schedule.JOBS), "once a day"


def test_before_todays_time_the_missed_run_of_yesterday_is_due(app):
    app.config["JOB_TIMES"] = dict(app.config["JOB_TIMES"], retention=datetime.strptime("02:30", "%H:%M").time())
    night = local_to_utc(datetime(2026, 12, 2, 1, 0))
    assert schedule.occurrence("retention", night).isoformat() == "2026-12-01"
    assert ("retention", night.date() - timedelta(days=1)) in schedule.due(night)
    later = local_to_utc(datetime(2026, 12, 2, 2, 31))
    assert schedule.occurrence("retention", later).isoformat() == "2026-12-02"


def test_a_run_whose_worker_died_is_taken_over_once(app, world):
    db.session.add(JobRun(job="reminders", day=today(), started_at=utcnow() - timedelta(hours=3), outcome="running"))
    db.session.commit()
    record = schedule.run("reminders", today())
    assert record is not None and record.outcome == "ok" and record.attempts == 2
    assert schedule.run("reminders", today()) is None


def test_a_failing_job_is_recorded_failed_and_shown_in_red(app, world, as_user, client, monkeypatch):
    def failing():
        raise RuntimeError("Mustermann, Max, geb. 01.03.2018")  # a message may quote data: never stored

    monkeypatch.setitem(schedule.JOBS, "retention", schedule.Job("retention", "Löschfristen", failing))
    app.config["JOB_TIMES"] = {name: datetime.min.time() for name in schedule.JOBS}
    done = schedule.run_due()
    assert {r.job: r.outcome for r in done} == {
        "retention": "failed",
        "reminders": "ok",
        "audit-checkpoint": "ok",
        "audit-verify": "ok",
    }
    failed = next(r for r in runs() if r.job == "retention")
    assert failed.error == "RuntimeError" and failed.ended_at is not None and failed.counts == {}

    page = as_user(world.admin).get("/admin/jobs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<p class="text-danger fw-bold" data-job-problem="retention">Achtung: Der letzte Lauf am' in html
    assert "ist fehlgeschlagen" in html and '<td class="text-danger fw-bold">fehlgeschlagen</td>' in html
    assert 'data-job-problem="reminders"' not in html and "Mustermann" not in html
    overview = as_user(world.admin).get("/admin/").get_data(as_text=True)
    assert "Achtung: 1 tägliche Aufgabe des Hintergrunddienstes ist fehlgeschlagen oder überfällig." in overview
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["failed"] == ["jobs"]


def test_a_job_not_run_for_more_than_a_day_is_overdue(app, world, as_user, client):
    for name in schedule.JOBS:
        started = utcnow() - timedelta(days=2 if name == "audit-verify" else 0)
        db.session.add(JobRun(job=name, day=to_local(started).date(), started_at=started, outcome="ok"))
    db.session.commit()
    html = as_user(world.admin).get("/admin/jobs").get_data(as_text=True)
    problem = "Achtung: Seit mehr als einem Tag nicht gelaufen."
    assert f'<p class="text-danger fw-bold" data-job-problem="audit-verify">{problem}' in html
    assert html.count("data-job-problem=") == 1
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["failed"] == ["jobs"]


def test_the_jobs_page_is_the_admins(app, world, as_user, client):
    assert as_user(world.admin).get("/admin/jobs").status_code == 200
    for key, user in world.users.items():
        if key != "admin":
            assert as_user(user).get("/admin/jobs").status_code == 403, key
    anonymous = client.get("/admin/jobs")
    assert anonymous.status_code == 302 and "/login" in anonymous.location
    overview = as_user(world.admin).get("/admin/").get_data(as_text=True)
    assert 'href="/admin/jobs">Hintergrunddienste</a>' in overview


def test_two_workers_deliver_each_mail_once(app, world, smtp, database_url, tmp_path):  # noqa: F811
    smtp.start()
    for _ in range(4):
        factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) >= 8
    mail = {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(app.config["MAIL_PORT"])}
    workers = [start_worker(database_url, tmp_path, "--once", **mail) for _ in range(2)]
    output = "".join(finished(worker) for worker in workers)
    db.session.expire_all()
    total = db.session.scalar(select(func.count()).select_from(OutboxMail))  # with the reminders' mails
    assert len(smtp.inbox.messages) == total, output
    recipients = sorted(db.session.scalars(select(OutboxMail.recipient)))
    assert sorted(r for rcpts, _ in smtp.inbox.messages for r in rcpts) == recipients
    assert db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None))) == 0


def test_sigterm_stops_the_worker_after_its_unit_of_work(app, world, database_url, tmp_path):
    worker = start_worker(database_url, tmp_path, WORKER_INTERVAL_SECONDS="60")
    try:
        deadline = time.monotonic() + 60
        while len([r for r in runs() if r.outcome == "ok"]) < len(schedule.JOBS):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not run the jobs"
            time.sleep(0.3)
        db.session.rollback()
        worker.send_signal(signal.SIGTERM)
        out = finished(worker, timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "stopping after the current unit of work" in out and out.rstrip().endswith("worker stopped")


@pytest.mark.parametrize("value", ["retention=25:00", "cleanup=02:00", "retention=2"])
def test_wrong_job_times_stop_the_start_with_the_reason(value):
    from referral.config import ConfigError, job_times

    with pytest.raises(ConfigError, match="JOB_TIMES"):
        job_times(value)
