"""The guide's domain actions: read a version's texts, publish the next version, remember what a user saw.
They flush and never commit: the request owns the transaction (lifecycle.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, select

from ..audit.log import record
from ..extensions import db
from ..kernel.upsert import upsert
from ..timeutil import utcnow
from .defaults import DEFAULT_TEXTS
from .models import GuideSection, GuideSeen, GuideVersion
from .sections import KEYS
from .versions import current_number

if TYPE_CHECKING:
    from ..accounts.models import User


class StaleBase(Exception):
    """Someone published a newer version since the editor was opened."""

    def __init__(self, current: int | None) -> None:
        super().__init__(current)
        self.current = current


@dataclass(frozen=True)
class Shown:
    """A version as a page shows it; number None: the built-in texts (nothing published yet)."""

    number: int | None
    published_at: datetime | None
    note: str
    author: str
    texts: dict[str, str]


def version(number: int | None = None) -> Shown | None:
    """The version `number` (the newest when None) with its texts; the built-in texts when nothing is
    published and no number was asked for; None for an unknown number. Two queries."""
    statement = select(GuideVersion)
    statement = (
        statement.where(GuideVersion.number == number)
        if number is not None
        else statement.order_by(GuideVersion.number.desc()).limit(1)
    )
    found = db.session.scalar(statement)
    if found is None:
        return (
            None
            if number is not None
            else Shown(None, None, "", "", {key: normalised(DEFAULT_TEXTS[key]) for key in KEYS})
        )
    texts = dict(
        db.session.execute(select(GuideSection.key, GuideSection.text).where(GuideSection.version_id == found.id))
        .tuples()
        .all()
    )
    return Shown(
        found.number,
        found.published_at,
        found.note,
        found.author.name if found.author else "",
        {key: texts.get(key, "") for key in KEYS},
    )


def normalised(text: str) -> str:
    """Line ends as browsers send them (CRLF) and as typed (LF) compare equal; outer blank lines go."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def publish(user: User, base: int | None, note: str, texts: dict[str, str]) -> GuideVersion:
    """The next version after `base`, with `texts` for every fixed section. Raises StaleBase when `base`
    is no longer the newest; a concurrent publication of the same number fails at the flush
    (IntegrityError on the unique number), which the page answers like StaleBase."""
    current = current_number()
    if current != base:
        raise StaleBase(current)
    created = GuideVersion(number=(base or 0) + 1, published_at=utcnow(), note=note, author_id=user.id)
    texts = {key: normalised(texts.get(key, "")) for key in KEYS}
    created.sections = [GuideSection(key=key, text=texts[key]) for key in KEYS]
    db.session.add(created)
    db.session.flush()
    previous = version(base) if base is not None else None
    before = previous.texts if previous else DEFAULT_TEXTS
    changed = [key for key in KEYS if normalised(before.get(key, "")) != texts[key]]
    record("guide.publish", created, fields=["note", *changed], actor=user)
    return created


def last_seen(user: User) -> int | None:
    return db.session.scalar(select(GuideSeen.number).where(GuideSeen.user_id == user.id))


def mark_seen(user: User, number: int) -> None:
    db.session.execute(
        upsert(
            GuideSeen,
            {"user_id": user.id, "number": number},
            index_elements=[GuideSeen.user_id],
            # Never back: a tab opened before the newest version must not undo having seen it.
            set_={"number": case((GuideSeen.number < number, number), else_=GuideSeen.number)},
        )
    )


@dataclass(frozen=True)
class News:
    """What changed between the version a user last saw and the newest one."""

    versions: list[tuple[int, datetime, str]]  # (number, published_at, note) of the unseen ones, oldest first
    changed: frozenset[str]  # keys of the sections whose text differs


def news_since(seen: int | None, current: int | None) -> News | None:
    """None when there is nothing unseen, or on a first visit (everything is new then). Two queries."""
    if seen is None or current is None or seen >= current:
        return None
    rows = db.session.execute(
        select(GuideVersion.number, GuideVersion.published_at, GuideVersion.note)
        .where(GuideVersion.number > seen)
        .order_by(GuideVersion.number)
    ).tuples()
    versions = [(number, published_at, note) for number, published_at, note in rows]
    texts = db.session.execute(
        select(GuideVersion.number, GuideSection.key, GuideSection.text)
        .join(GuideSection, GuideSection.version_id == GuideVersion.id)
        .where(GuideVersion.number.in_((seen, current)))
    ).tuples()
    by_version: dict[int, dict[str, str]] = {seen: {}, current: {}}
    for number, key, text in texts:
        by_version[number][key] = text
    changed = frozenset(key for key in KEYS if by_version[seen].get(key, "") != by_version[current].get(key, ""))
    return News(versions, changed)


def unseen(user: User) -> bool:
    """Is there a version `user` has not seen on the guide's page? (The start pages' notice; one query.)"""
    newest = db.session.scalar(
        select(GuideVersion.number)
        .outerjoin(GuideSeen, GuideSeen.user_id == user.id)
        .where((GuideSeen.number.is_(None)) | (GuideVersion.number > GuideSeen.number))
        .limit(1)
    )
    return newest is not None
