"""The main menu and the start page, built from the pages' gates: an entry is shown exactly when the
gate of its page (`require_roles`) lets the user in, so menu and permissions cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .roles import admits
from .school_side import sees_whole_school

if TYPE_CHECKING:
    from ..accounts.models import User


@dataclass(frozen=True)
class Entry:
    endpoint: str
    label: str


def _school_list(user: User) -> str:
    return "Mitteilungen der Schule" if sees_whole_school(user) else "Meine Mitteilungen"


# In the order of the menu.
MENU: tuple[tuple[str, str | Callable[[User], str]], ...] = (
    ("home.school_start", "Start"),
    ("cases.new", "Neue Mitteilung"),
    ("cases.my_referrals", _school_list),
    ("consultations.index", "Fachberatung"),
    ("cases.inbox", "Eingang"),
    ("evaluation.district_overview", "Bezirksübersicht"),
    ("coordination.referrals", "Alle Mitteilungen (Metadaten)"),
    ("evaluation.index", "Auswertung"),
    ("surveys.rounds", "Umfragen"),
    ("audit.search", "Protokoll"),
    ("administration.overview", "Verwaltung"),
    ("directory.index", "Ansprechpartner"),
    ("guide.index", "So funktioniert's"),
)


def navigation(user: User) -> list[Entry]:
    """The menu entries `user` may open."""
    return [
        Entry(endpoint, label if isinstance(label, str) else label(user))
        for endpoint, label in MENU
        if admits(user, endpoint)
    ]


# The start pages, the first one whose gate lets the user in (for users with several roles, the
# school side's page comes first, then the ASD's, the pool's, the coordinator's and the admin's).
START = ("home.school_start", "cases.inbox", "consultations.index", "coordination.referrals", "administration.overview")


def start_endpoint(user: User) -> str | None:
    """The page a user starts on; None for a user without a role."""
    return next((endpoint for endpoint in START if admits(user, endpoint)), None)
