"""The real app served over HTTP on a loopback port, for the tests that need real requests: the
browser tests (werkzeug in a thread) and the race tests (werkzeug in a thread, or gunicorn in
processes). One set-up for both: the suite's test database and secret key, the same test settings,
a free port, and waiting until the server answers.

`create()` is the app factory gunicorn loads (`tests.servers:create()`); it imports nothing of the
test suite, so the server processes stay light.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# The `app` fixture's key (tests/conftest.py takes it from here): it also salts the password hashes
# of the `world` users, so a served app must have it for them to log in.
SECRET_KEY = "test-" + "x" * 40
SESSION_DIR_VARIABLE = "TEST_SESSION_DIR"  # the one test setting the environment cannot carry


@dataclass
class Served:
    url: str
    app: object = None  # the served app when it runs in this process (a test may change a setting)
    log: Path | None = None  # the server's output when it runs in processes of its own
    errors: list[str] = field(default_factory=list)  # tracebacks of exceptions raised in requests

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log and self.log.exists() else "\n".join(self.errors)
        return text[-6000:]


def settings(folder: Path, **overrides) -> dict:
    """What differs from a development app: its own uploads and sessions under `folder`, mails kept
    in memory, and no SERVER_NAME (the server answers to whatever host it is called by)."""
    return {
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "SERVER_NAME": None,
        "MAIL_BACKEND": "locmem",
        **overrides,
    }


def create_served_app(database_url: str, folder: Path, **overrides):
    """The app to serve in this process, on the suite's test database."""
    from referral import create_app

    served = create_app(
        overrides=settings(folder, **overrides), env={"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY}
    )
    assert not served.config.get("SERVER_NAME"), "the served app must answer to whatever host it is called by"
    return served


@contextmanager
def in_thread(served_app, name: str = "test-server") -> Iterator[Served]:
    """`served_app` on a free loopback port, in a threaded werkzeug server in a background thread;
    stopped (and its database connections closed) afterwards."""
    from flask import got_request_exception
    from werkzeug.serving import make_server

    from referral.extensions import db

    server = make_server(LOOPBACK, 0, served_app, threaded=True)
    served = Served(url=f"http://{LOOPBACK}:{server.server_port}", app=served_app)

    def record(sender, exception, **extra):
        served.errors.append("".join(traceback.format_exception(exception)))

    got_request_exception.connect(record, served_app)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        got_request_exception.disconnect(record, served_app)
        with served_app.app_context():
            db.engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def process_env(database_url: str, folder: Path, **variables: str) -> dict[str, str]:
    """The environment for the app in a process of its own: configured as in production, from the
    environment, with the settings of `settings()` (sessions in files, never the shared Redis)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "REFERRAL_ENV": "development",
        "UPLOAD_FOLDER": str(folder / "uploads"),
        SESSION_DIR_VARIABLE: str(folder / "sessions"),
        "MAIL_BACKEND": "locmem",
        **variables,
    }
    if "REDIS_URL" not in variables:  # the shared Redis only when a test hands it over explicitly
        env.pop("REDIS_URL", None)
    return env


def create():
    """The app factory for gunicorn: configured from the environment `process_env()` gives."""
    from referral import create_app

    return create_app(overrides={"SESSION_FILE_DIR": os.environ[SESSION_DIR_VARIABLE], "SERVER_NAME": None})


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    """Until the login page answers; fails at once with the server's output if the process ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server ended with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            urllib.request.urlopen(url + "/login", timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {seconds:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


@contextmanager
def gunicorn(database_url: str, folder: Path, *options: str, **variables: str) -> Iterator[Served]:
    """The app under gunicorn (`options` such as `--workers 2`) on a free loopback port, configured by
    `process_env()`; terminated afterwards. Its output is in `Served.log`."""
    port = free_port()
    log = folder / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{LOOPBACK}:{port}", *options, "tests.servers:create()"],
            cwd=ROOT,
            env=process_env(database_url, folder, **variables),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until_up(url, process, log)
        yield Served(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
