"""Column types that every feature's models use."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Enum


def enum_column(enum_cls: type[enum.Enum], **kwargs: Any) -> Enum:
    """Stored as VARCHAR with a CHECK of the allowed values, the same on SQLite and PostgreSQL."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda e: [m.value for m in e],
        **kwargs,
    )
