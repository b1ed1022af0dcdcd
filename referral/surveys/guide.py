"""The guide's version (referral/guide/versions.py), as the surveys use it: each answer stores the
number of the guide version current when it was given (None before the first published version), and
the evaluation compares the answers before and after each published version."""

from __future__ import annotations

from datetime import datetime

from ..guide import versions


def current_number() -> int | None:
    return versions.current_number()


def published_versions() -> list[tuple[int, datetime, str]]:
    return versions.published_versions()
