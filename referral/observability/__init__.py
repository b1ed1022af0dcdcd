"""What the operator watches: structured logs (logs.py) and Prometheus metrics (metrics.py).

Both are fed by one WSGI wrapper around the app: it times each request until its response has been
sent, then counts it (metrics) and writes its `request` log line. What it needs from inside the request
(endpoint, request id, user id) is noted when the request context ends, without loading anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flask import Flask, g, request
from werkzeug.wsgi import ClosingIterator

from . import logs, metrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

NOTED = "referral.observed"  # key in the WSGI environ


class Observed:
    """Times, counts and logs every request that passes through `app`."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[int] = [500]

        def start(
            line: str,
            headers: list[tuple[str, str]],
            exc_info: tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None] | None = None,
        ) -> Any:
            status[0] = int(line.split(" ", 1)[0])
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            self.finish(environ, started, 500)
            raise
        return ClosingIterator(body, lambda: self.finish(environ, started, status[0]))

    @staticmethod
    def finish(environ: WSGIEnvironment, started: float, status: int) -> None:
        seconds = time.perf_counter() - started
        noted = environ.get(NOTED, {})
        endpoint = noted.get("route", metrics.NO_ENDPOINT)
        method = environ.get("REQUEST_METHOD", "")
        try:
            metrics.count_request(endpoint, method, status, seconds)
        except Exception:  # the metrics files (a full /tmp, say) must not fail the response
            logging.getLogger(__name__).warning("request not counted in the metrics", exc_info=True)
        logs.request_line(method, endpoint, status, seconds, noted.get("request_id", ""), noted.get("user_id"))


def _give_request_id() -> None:
    # Every request gets its id at the start (the audit entries and the X-Request-ID header use it).
    from ..audit.log import request_id

    request_id()


def _note(error: BaseException | None = None) -> None:
    request.environ[NOTED] = {
        "route": request.endpoint or metrics.NO_ENDPOINT,
        "request_id": g.get("request_id", ""),
        "user_id": logs.signed_in_user_id(),
    }


def register(app: Flask) -> None:
    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    app.wsgi_app = Observed(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(_give_request_id)
    app.teardown_request(_note)

    def log_exception(exc_info: Any) -> None:
        # As Flask's, but naming the endpoint: the path may carry ids, the query string anything.
        endpoint = request.endpoint or metrics.NO_ENDPOINT
        app.logger.error("Exception on %s [%s]", endpoint, request.method, exc_info=exc_info)

    app.log_exception = log_exception  # type: ignore[method-assign]
    app.register_blueprint(metrics.blueprint)
