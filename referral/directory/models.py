from __future__ import annotations

import enum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..organisation.models import School


class ContactKind(enum.StrEnum):
    SCHOOL_LEAD = "school_lead"
    SCHOOL_SOCIAL_WORK = "school_social_work"
    CHILD_PROTECTION = "child_protection"
    ASD_CONTACT = "asd_contact"
    INSOFA = "insofa"

    @property
    def label(self) -> str:
        return {
            ContactKind.SCHOOL_LEAD: "Schulleitung",
            ContactKind.SCHOOL_SOCIAL_WORK: "Schulsozialarbeit",
            ContactKind.CHILD_PROTECTION: "Ansprechperson Kinderschutz der Schule",
            ContactKind.ASD_CONTACT: "Ansprechperson im ASD für diese Schule",
            ContactKind.INSOFA: "Insoweit erfahrene Fachkraft (InsoFa-Pool)",
        }[self]


SCHOOL_KINDS = (ContactKind.SCHOOL_LEAD, ContactKind.SCHOOL_SOCIAL_WORK, ContactKind.CHILD_PROTECTION)


class Contact(db.Model):
    """A person to call. School contacts and the ASD contact belong to a school; the pool to the city."""

    __tablename__ = "contact"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'insofa' AND school_id IS NULL) OR (kind <> 'insofa' AND school_id IS NOT NULL)",
            name="scope_matches_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ContactKind] = mapped_column(
        Enum(
            ContactKind,
            native_enum=False,
            create_constraint=True,
            length=30,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    reachable: Mapped[str] = mapped_column(String(200), default="")

    school: Mapped[School | None] = relationship(lazy="joined")
