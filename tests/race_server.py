"""The app as gunicorn serves it for the race tests (tests/test_races.py): configured from the
environment like production, plus the few test settings the environment cannot carry."""

from __future__ import annotations

import os

from referral import create_app


def create():
    return create_app(overrides={"SESSION_FILE_DIR": os.environ["RACE_SESSION_DIR"], "SERVER_NAME": None})
