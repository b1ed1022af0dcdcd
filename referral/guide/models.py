"""The guide's versions: each one immutable, with its texts per fixed section, and what each user last saw."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import db
from ..timeutil import utcnow


class GuideVersion(db.Model):  # type: ignore[name-defined,misc]
    """One published version of the guide. Never changed: an edit is the next number. Two coordinators
    saving from the same base version both try the same next number; the unique constraint lets one win."""

    __tablename__ = "guide_version"
    __table_args__ = (CheckConstraint("number >= 1", name="positive_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(300))  # "Was ist neu"
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    author: Mapped[User | None] = relationship()
    sections: Mapped[list[GuideSection]] = relationship(cascade="all, delete-orphan", lazy="raise")

    def __str__(self) -> str:
        return f"Version {self.number}"


class GuideSection(db.Model):  # type: ignore[name-defined,misc]
    """The Markdown text of one fixed section (sections.py) in one version."""

    __tablename__ = "guide_section"

    version_id: Mapped[int] = mapped_column(ForeignKey("guide_version.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")


class GuideSeen(db.Model):  # type: ignore[name-defined,misc]
    """The newest version a user has seen on the guide's page (for "Was ist neu seit Ihrem letzten Besuch")."""

    __tablename__ = "guide_seen"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int]
