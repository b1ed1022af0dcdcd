"""Errors of the API as RFC 9457 problem details (application/problem+json), with a German `detail`."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

# Problem types of this API; a client tells them apart by `type` (the `title` is their short name).
BASE = "https://mitteilungen.invalid/api/v1/problems/"


def problem(
    status: int, title: str, detail: str, kind: str = "", headers: dict | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
