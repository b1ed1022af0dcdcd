"""Flask-Security's user store, with the per-request user load in one query."""

from __future__ import annotations

from typing import Any

from flask_security import SQLAlchemyUserDatastore
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .models import User


class UserDatastore(SQLAlchemyUserDatastore):
    def find_user(self, case_insensitive: bool = False, **kwargs: Any) -> User | None:
        # Every signed-in request loads its user by fs_uniquifier (Flask-Security's user loader), and
        # the gates and the menu read the memberships at once: one joined query instead of the user
        # and then the memberships' selectin (a round trip to the database on every page).
        if not case_insensitive and list(kwargs) == ["fs_uniquifier"]:
            statement = (
                select(User).options(joinedload(User.memberships)).where(User.fs_uniquifier == kwargs["fs_uniquifier"])
            )
            return self.db.session.scalars(statement).unique().one_or_none()
        return super().find_user(case_insensitive, **kwargs)  # type: ignore[return-value]
