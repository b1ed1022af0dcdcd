"""The daily "prune" job of `flask worker`: delivered webhooks past their keeping time and expired
idempotency keys are deleted in batches; what is still needed stays."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from referral.accounts.operations import Actor
from referral.api import clients
from referral.api.idempotency import KEPT_FOR, ApiIdempotencyKey
from referral.api.webhooks import DELIVERED_KEPT, WebhookDelivery
from referral.extensions import db
from referral.jobs import schedule
from referral.jobs.models import JobRun
from referral.timeutil import to_local, utcnow


def only_prune_due(app) -> None:
    """Every job's time has passed today; all but "prune" have run already."""
    app.config["JOB_TIMES"] = {name: datetime.min.time() for name in schedule.JOBS}
    today = to_local(utcnow()).date()
    for name in schedule.JOBS:
        if name != "prune":
            db.session.add(JobRun(job=name, day=today, started_at=utcnow(), outcome="ok"))
    db.session.commit()


def test_the_daily_job_deletes_old_delivered_webhooks_and_expired_keys_in_batches(app, world, runner, monkeypatch):
    client, _ = clients.create(Actor.operator(), "Fachsoftware", [world.districts["we"]], ["referrals:read"])
    db.session.commit()
    now = utcnow()
    old, kept_days = now - DELIVERED_KEPT - timedelta(hours=1), now - DELIVERED_KEPT + timedelta(hours=1)

    def delivery(delivered_at, failed_at=None, created_at=old):
        row = WebhookDelivery(
            event_id="e",
            event_type="referral.submitted",
            client_id=client.id,
            body="{}",
            created_at=created_at,
            next_attempt_at=now + timedelta(days=1),  # the worker's delivery round leaves it alone
            delivered_at=delivered_at,
            failed_at=failed_at,
        )
        db.session.add(row)
        return row

    gone = [delivery(old) for _ in range(5)]
    young = delivery(kept_days)
    failed = delivery(None, failed_at=old)  # the admin's page counts the failed ones: they stay
    waiting = delivery(None)
    keys = [
        ApiIdempotencyKey(
            client_id=client.id, key=f"k{i}", fingerprint="f", created_at=now - KEPT_FOR - timedelta(i + 1)
        )
        for i in range(3)
    ]
    fresh_key = ApiIdempotencyKey(
        client_id=client.id, key="fresh", fingerprint="f", created_at=now - timedelta(hours=1)
    )
    db.session.add_all([*keys, fresh_key])
    db.session.commit()
    kept = {young.id, failed.id, waiting.id}
    assert len(gone) == 5

    only_prune_due(app)
    monkeypatch.setattr(schedule, "PRUNE_BATCH", 2)  # several batches, the last one short
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output

    db.session.expire_all()
    assert set(db.session.scalars(select(WebhookDelivery.id))) == kept
    assert list(db.session.scalars(select(ApiIdempotencyKey.key))) == ["fresh"]
    run = db.session.scalar(select(JobRun).where(JobRun.job == "prune"))
    assert run.outcome == "ok" and run.counts == {"Webhooks": 5, "Idempotency-Keys": 3}

    # The next day's run finds nothing more to do.
    db.session.delete(run)
    db.session.commit()
    assert runner.invoke(args=["worker", "--once"]).exit_code == 0
    run = db.session.scalar(select(JobRun).where(JobRun.job == "prune"))
    assert run.counts == {"Webhooks": 0, "Idempotency-Keys": 0}
    assert set(db.session.scalars(select(WebhookDelivery.id))) == kept
