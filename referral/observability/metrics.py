"""Prometheus metrics at /metrics, for the operator's monitoring; counts only, never personal data.

- Requests: `referral_http_requests_total` and `referral_http_request_duration_seconds` per Flask
  endpoint (never the URL: ids would make a series per referral), method and status. Counted in the
  WSGI wrapper (observability/__init__.py) for every request, including errors.
- Read from the database when scraped, with one aggregate query each (`SCRAPE_COLLECTORS`): the outbox
  (length, age of the oldest unsent mail), overdue referrals per district (district code only; the one
  rule of cases/deadlines.py `overdue`), the audit chain's length (newest entry id), the daily jobs' runs
  by outcome and their last success (the job table of `flask worker`).

Under gunicorn with several worker processes, each process counts its requests into files in
PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py creates one if it is not set, and tells the library when a
worker exits); a scrape, whichever worker answers it, adds up the files of all workers. Without that
variable (`flask run`, tests) the counts live in the process.

Access (README, "Operations"): a bearer token (METRICS_TOKEN) and/or the networks allowed to scrape
(METRICS_ALLOWED_NETWORKS); with both set, both must hold. With neither set the endpoint answers 404:
no configuration, no metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ..extensions import db, talisman
from ..timeutil import utcnow

# No `_created` series beside every counter: nothing here needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The request metrics of this process (single-process mode); under gunicorn they are read from the files.
_PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "referral_http_requests",
    "HTTP requests answered, by Flask endpoint, method and status.",
    ["endpoint", "method", "status"],
    registry=_PROCESS_REGISTRY,
)
DURATION = Histogram(
    "referral_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by Flask endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=_PROCESS_REGISTRY,
)
# Any other method a client invents is counted as "other": a label value per invented word would let
# clients create series without end.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
NO_ENDPOINT = "none"  # no route matched (404, 405)


def count_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    REQUESTS.labels(endpoint, method, str(status)).inc()
    DURATION.labels(endpoint, method).observe(seconds)


# --- Read from the database when scraped --------------------------------------------------------------

ScrapeCollector = Callable[[datetime], Iterable[Metric]]
SCRAPE_COLLECTORS: list[ScrapeCollector] = []


def scrape_collector(collect: ScrapeCollector) -> ScrapeCollector:
    """Adds a function `collect(now) -> metrics` run at every scrape. It must use bounded SQL (aggregates,
    no rows per referral) and emit counts only. The job metrics (runs and failures of `flask worker`'s
    jobs, from its job table) are to be added here the same way, in the module that owns the job table:

        @scrape_collector
        def job_metrics(now): yield GaugeMetricFamily("referral_job_last_success_timestamp_seconds", ...)
    """
    SCRAPE_COLLECTORS.append(collect)
    return collect


@scrape_collector
def outbox_metrics(now: datetime) -> Iterator[Metric]:
    from ..notifications.models import OutboxMail

    waiting, oldest = db.session.execute(
        select(func.count(), func.min(OutboxMail.created_at)).where(OutboxMail.sent_at.is_(None))
    ).one()
    yield GaugeMetricFamily("referral_outbox_mails", "E-mails in the outbox not yet sent.", value=waiting or 0)
    yield GaugeMetricFamily(
        "referral_outbox_oldest_age_seconds",
        "Age of the oldest e-mail not yet sent (0 when the outbox is empty).",
        value=max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
    )


@scrape_collector
def overdue_metrics(now: datetime) -> Iterator[Metric]:
    from ..cases.deadlines import Late, overdue
    from ..cases.models import Referral
    from ..organisation.models import District

    rows = db.session.execute(
        select(
            District.code,
            func.count(),
            func.count().filter(overdue(now, Late.ACKNOWLEDGE).condition),
            func.count().filter(overdue(now, Late.FEEDBACK).condition),
        )
        .select_from(Referral)
        .join(District, District.id == Referral.district_id)
        .where(overdue(now).condition)
        .group_by(District.code)
    ).all()
    found = {code: (any_, ack, feedback) for code, any_, ack, feedback in rows}
    # Every district, also those with nothing overdue: an alert can tell 0 from "no data".
    codes = sorted(set(db.session.scalars(select(District.code))) | set(found))
    total = GaugeMetricFamily(
        "referral_overdue_referrals",
        "Referrals overdue (acknowledgement or feedback) in their responsible district.",
        labels=["district"],
    )
    by_deadline = GaugeMetricFamily(
        "referral_overdue_referrals_by_deadline",
        "Referrals overdue per deadline (a referral late with both counts in both).",
        labels=["district", "deadline"],
    )
    for code in codes:
        any_, ack, feedback = found.get(code, (0, 0, 0))
        total.add_metric([code], any_)
        by_deadline.add_metric([code, Late.ACKNOWLEDGE.value], ack)
        by_deadline.add_metric([code, Late.FEEDBACK.value], feedback)
    yield total
    yield by_deadline


@scrape_collector
def audit_metrics(now: datetime) -> Iterator[Metric]:
    from ..audit.models import AuditEntry

    # The newest entry's id: its place in the log (ids come from a sequence; read from the index).
    length = db.session.scalar(select(func.max(AuditEntry.id)))
    yield GaugeMetricFamily("referral_audit_chain_length", "Entries in the audit log's hash chain.", value=length or 0)


@scrape_collector
def job_metrics(now: datetime) -> Iterator[Metric]:
    """Runs of `flask worker`'s daily jobs by outcome, and when each last succeeded (jobs/schedule.py)."""
    from ..jobs.models import JobRun
    from ..jobs.schedule import JOBS

    runs = CounterMetricFamily("referral_job_runs", "Runs of the daily jobs, by outcome.", labels=["job", "outcome"])
    counted = db.session.execute(select(JobRun.job, JobRun.outcome, func.count()).group_by(JobRun.job, JobRun.outcome))
    by_job: dict[tuple[str, str], int] = {(job, outcome): 0 for job in JOBS for outcome in ("ok", "failed", "running")}
    by_job.update({(job, outcome): count for job, outcome, count in counted})
    for (job, outcome), count in sorted(by_job.items()):
        runs.add_metric([job, outcome], count)
    yield runs
    last = GaugeMetricFamily(
        "referral_job_last_success_timestamp_seconds",
        "When each daily job last ended well (Unix time; 0: never).",
        labels=["job"],
    )
    ended: dict[str, datetime | None] = {
        job: at
        for job, at in db.session.execute(
            select(JobRun.job, func.max(JobRun.ended_at)).where(JobRun.outcome == "ok").group_by(JobRun.job)
        )
    }
    for job in JOBS:
        at = ended.get(job)
        last.add_metric([job], at.replace(tzinfo=UTC).timestamp() if at is not None else 0.0)
    yield last


class _FromDatabase(Collector):
    """Runs the scrape collectors; one that fails is reported as down, the others still answer."""

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        up = GaugeMetricFamily(
            "referral_metrics_collector_up", "1 if the collector could read its values, 0 if not.", labels=["collector"]
        )
        for collect in SCRAPE_COLLECTORS:
            try:
                metrics = list(collect(now))
            except Exception as error:
                db.session.rollback()
                current_app.logger.warning("metrics collector %s failed: %s", collect.__name__, type(error).__name__)
                up.add_metric([collect.__name__], 0)
                continue
            up.add_metric([collect.__name__], 1)
            yield from metrics
        yield up


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from _PROCESS_REGISTRY.collect()


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        # The counts of every worker, from their files.
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(_FromDatabase())
    return generate_latest(registry)


# --- The endpoint -------------------------------------------------------------------------------------

blueprint = Blueprint("observability", __name__)


def refusal() -> Response | None:
    """None if the scraper may read the metrics, else the answer it gets."""
    token: str | None = current_app.config.get("METRICS_TOKEN")
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = current_app.config.get(
        "METRICS_ALLOWED_NETWORKS", []
    )
    if not token and not networks:
        return Response("Nicht gefunden.\n", 404, mimetype="text/plain")
    if networks:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            address = None
        if address is None or not any(address in network for network in networks):
            return Response("Kein Zugriff von dieser Adresse.\n", 403, mimetype="text/plain")
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            return Response(
                "Zugangsschlüssel fehlt oder ist falsch.\n",
                401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return None


@blueprint.get("/metrics")
# Scraped on the internal network, directly from each app server: no redirect to HTTPS.
@talisman(force_https=False)  # type: ignore[untyped-decorator]
def metrics() -> Response:
    refused = refusal()
    if refused is not None:
        return refused
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)
