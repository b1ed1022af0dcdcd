"""Configured numbers as German text: a page that quotes a limit or a deadline reads it from the configuration,
so that changing the configuration changes what people are told (issue 12)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from limits import parse_many

MEGABYTE = 1024 * 1024


def counted(number: int, one: str, many: str) -> str:
    """'1 Arbeitstag', '2 Arbeitstagen': the caller gives both forms in the case the sentence needs."""
    return f"{number} {one if number == 1 else many}"


def megabytes(size: int) -> str:
    """'10 MB' for a limit in bytes (limits are whole megabytes; a part of one is rounded down)."""
    return f"{size // MEGABYTE} MB"


def duration(span: timedelta) -> str:
    """'eine Stunde', '72 Stunden', '15 Minuten' (accusative: "gilt …", "für … gesperrt")."""
    minutes = int(span.total_seconds() // 60)
    if minutes % 60:
        return "eine Minute" if minutes == 1 else f"{minutes} Minuten"
    hours = minutes // 60
    return "eine Stunde" if hours == 1 else f"{hours} Stunden"


def lockout(limit: str) -> timedelta:
    """How long a limit such as '5 per 15 minutes' (Flask-Limiter's notation) keeps the login locked;
    of several ('5 per 15 minutes; 20 per day') the first, the one that locks first."""
    return timedelta(seconds=parse_many(limit)[0].get_expiry())


def configured(config: Mapping[str, Any]) -> dict[str, str]:
    """The numbers of the app's configuration that pages quote, as German text; needs no database."""
    return {
        "max_attachment": megabytes(config["MAX_ATTACHMENT_BYTES"]),
        "login_lockout": duration(lockout(config["LOGIN_FAILURES_PER_ACCOUNT"])),
        "invitation_valid": duration(timedelta(hours=config["INVITATION_VALID_HOURS"])),
        "reset_valid": duration(config["SECURITY_RESET_PASSWORD_WITHIN"]),
        "password_length": str(config["SECURITY_PASSWORD_LENGTH_MIN"]),
    }
