"""gunicorn's production settings: `gunicorn wsgi:app` in the project folder reads this file.

Each setting can be changed from the environment file without editing this one (README, "Operations").
The app's own settings come from the environment too (referral/config.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

# 127.0.0.1 when nginx runs on the same machine; the private address when it runs on another.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gunicorn's rule of thumb: two per core plus one. Sync workers: nginx buffers slow clients and uploads.
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A request (a large PDF, an evaluation over years) may take a while; past this the worker is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# The proxies whose X-Forwarded-Proto/-For gunicorn believes (the app's TRUSTED_PROXIES counts hops).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Workers are not recycled (no max_requests): each new worker process leaves metric files behind.

# --- Logs: the same JSON lines as the app (referral/observability/logs.py), on standard error ---------
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Used only with LOG_FORMAT=text: the path without the query string, and the request id.
access_log_format = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
# As the app's LOG_FORMAT (referral/config.py): JSON in production, text otherwise.
_production = os.environ.get("REFERRAL_ENV", "").strip().lower() == "production"
if os.environ.get("LOG_FORMAT", "json" if _production else "text").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        # The app puts its own handler on the root logger when it is loaded (LOG_FORMAT).
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "referral.observability.logs.JsonFormatter"}},
    }

# --- Prometheus: the workers' request counts, added up by whichever worker answers /metrics ---------
# The library reads the directory from the environment when it is imported, so it is set here, in the
# master, before any worker loads the app. Without one given, a private one for this master's life.
# (A configuration reload runs this file again: the directory made the first time is kept.)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="referral-metrics-")
    os.environ["REFERRAL_OWN_METRICS_DIR"] = "1"
_own_metrics_dir = os.environ.get("REFERRAL_OWN_METRICS_DIR") == "1"
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    # Counts of an earlier run (after a crash) would be added to this run's.
    os.makedirs(_metrics_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(_metrics_dir, "*.db")):
        os.remove(stale)


def post_worker_init(worker):
    # The app is loaded (modules, routes, SQLAlchemy mappers, Jinja environment): hundreds of thousands
    # of objects that live as long as the worker. Frozen, the collector stops walking them in every
    # full collection, which otherwise ran every few requests, at several milliseconds each.
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    # A worker's gauges in "live" mode end with it; its counters stay in the sum.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
