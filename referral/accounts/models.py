from __future__ import annotations

import enum
import uuid
from datetime import datetime

from flask_security import UserMixin
from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisation.models import District, School
from ..timeutil import utcnow


class Role(enum.StrEnum):
    TEACHER = "teacher"
    SCHOOL_LEAD = "school_lead"
    ASD_WORKER = "asd_worker"
    ASD_LEAD = "asd_lead"
    INSOFA = "insofa"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.TEACHER: "Lehrkraft / Schulsozialarbeit",
    Role.SCHOOL_LEAD: "Schulleitung",
    Role.ASD_WORKER: "ASD-Fachkraft",
    Role.ASD_LEAD: "ASD-Teamleitung",
    Role.INSOFA: "Insoweit erfahrene Fachkraft",
    Role.COORDINATOR: "Koordination",
    Role.ADMIN: "Administration",
}
SCHOOL_ROLES = frozenset({Role.TEACHER, Role.SCHOOL_LEAD})
ASD_ROLES = frozenset({Role.ASD_WORKER, Role.ASD_LEAD})
CITY_ROLES = frozenset({Role.INSOFA, Role.COORDINATOR, Role.ADMIN})


def _in(roles: frozenset[Role]) -> str:
    return "(" + ", ".join(f"'{r.value}'" for r in sorted(roles)) + ")"


class User(db.Model, UserMixin):
    """An account. Login by e-mail; the 2FA columns are used once 2FA is switched on."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(40), default="")
    password: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    fs_uniquifier: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: uuid.uuid4().hex)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Two-factor authentication (Flask-Security-Too), switched on by the accounts issue.
    tf_primary_method: Mapped[str | None] = mapped_column(String(64))
    tf_totp_secret: Mapped[str | None] = mapped_column(String(255))
    mf_recovery_codes: Mapped[list | None] = mapped_column(JSON)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> list:
        # Flask-Security-Too asks for global roles; ours are scoped memberships, checked in referral/policy/.
        return []

    def __str__(self) -> str:
        return self.name

    @property
    def status_label(self) -> str:
        if not self.active:
            return "deaktiviert"
        return "eingeladen" if self.password is None else "aktiv"

    def has_role_in(self, roles) -> bool:
        return any(m.role in roles for m in self.memberships)

    def school_ids(self, *roles: Role) -> set[int]:
        return {m.school_id for m in self.memberships if m.role in roles and m.school_id}

    def district_ids(self, *roles: Role) -> set[int]:
        return {m.district_id for m in self.memberships if m.role in roles and m.district_id}


class Membership(db.Model):
    """A role held in a scope: a school, a district, or the whole city."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "school_id", "district_id"),
        CheckConstraint(
            f"(role IN {_in(SCHOOL_ROLES)} AND school_id IS NOT NULL AND district_id IS NULL)"
            f" OR (role IN {_in(ASD_ROLES)} AND district_id IS NOT NULL AND school_id IS NULL)"
            f" OR (role IN {_in(CITY_ROLES)} AND school_id IS NULL AND district_id IS NULL)",
            name="scope_matches_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, create_constraint=True, length=20, values_callable=lambda e: [m.value for m in e])
    )
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"), index=True)

    user: Mapped[User] = relationship(back_populates="memberships")
    school: Mapped[School | None] = relationship(lazy="joined")
    district: Mapped[District | None] = relationship(lazy="joined")

    @property
    def scope_label(self) -> str:
        if self.school:
            return self.school.name
        if self.district:
            return f"Bezirk {self.district.name}"
        return "Stadt"
