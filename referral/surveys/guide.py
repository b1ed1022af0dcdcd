"""The guide's version (referral/guide/versions.py, built on the `guide` branch), read where it exists.

Each answer stores the number of the guide version current when it was given; the evaluation compares
the answers before and after each published version. Until the guide is merged there is no version
(None) and the evaluation has no before/after rows."""

from __future__ import annotations

import importlib
from datetime import datetime


def _versions():
    try:
        return importlib.import_module("referral.guide.versions")
    except ImportError:
        return None


def current_number() -> int | None:
    module = _versions()
    return module.current_number() if module is not None else None


def published_versions() -> list[tuple[int, datetime, str]]:
    module = _versions()
    return list(module.published_versions()) if module is not None else []
