"""`flask worker`: one long-running process that sends the outbox and the webhooks continuously and
runs the daily jobs at their times. Run one per server or several: the claims (schedule.py,
delivery.py, api/webhooks.py) keep each job once per day and each mail and webhook delivery once.

SIGTERM or SIGINT (systemd's stop, Ctrl+C) lets the current unit of work finish (the daily job
under way, or the mail being sent) and then ends the process; nothing is left half-done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from flask import current_app

from ..api.webhooks import deliver_webhooks
from ..extensions import db
from ..notifications.delivery import deliver
from . import schedule

log = logging.getLogger("referral.worker")


def tick(stop: Callable[[], bool], report: Callable[[str], None]) -> None:
    """One round: the due daily jobs, then the outbox. A database that cannot be reached ends the
    round quietly; the next round tries again (a claimed job left `running` is taken over later)."""
    try:
        for record in schedule.run_due(stop=stop):
            counts = ", ".join(f"{key}={value}" for key, value in record.counts.items())
            report(f"{record.job} {record.day.isoformat()}: {record.outcome}" + (f" ({counts})" if counts else ""))
        if not stop():
            sent, failed = deliver(stop=stop)
            if sent or failed:
                report(f"mail: {sent} sent, {failed} failed (kept for a later attempt)")
        if not stop():
            delivered, failed = deliver_webhooks(stop=stop)
            if delivered or failed:
                report(f"webhooks: {delivered} delivered, {failed} failed (retried later)")
    except Exception as error:  # noqa: BLE001 - the worker outlives a database or SMTP outage
        log.error("worker round failed: %s", type(error).__name__)
        report(f"round failed: {type(error).__name__}")
        with contextlib.suppress(Exception):  # the connection is gone; the pool discards it
            db.session.rollback()
    finally:
        db.session.remove()


def run(once: bool = False, report: Callable[[str], None] = print) -> None:
    stopping = threading.Event()

    def ask_to_stop(signum: int, frame: FrameType | None) -> None:
        report("stopping after the current unit of work")
        stopping.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    interval = current_app.config["WORKER_INTERVAL_SECONDS"]
    try:
        while not stopping.is_set():
            tick(stopping.is_set, report)
            if once:
                break
            stopping.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report("worker stopped")
