"""The numbers the guide quotes, read where the process reads them: the deadlines from the settings
(kernel/settings.py), the attachment limit from the configuration, the duty phones from the districts
and the contacts from the directory. Never typed into the guide's text (issue 17)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..directory.models import Contact, ContactKind
from ..extensions import db
from ..kernel.settings import DEADLINE_DEFAULTS, deadline_settings
from ..kernel.wording import counted, megabytes
from ..organisation.models import District, School
from ..policy.roles import ASD_SIDE, SCHOOL_SIDE

if TYPE_CHECKING:
    from ..accounts.models import User


def placeholder_values(settings: Mapping[str, int], config: Mapping[str, Any]) -> dict[str, str]:
    """The placeholders the editor offers, with their current values. Dative, to follow "innerhalb von"."""
    return {
        "Frist Eingangsbestätigung akut": counted(settings["ack_acute_hours"], "Stunde", "Stunden"),
        "Frist Eingangsbestätigung": counted(settings["ack_working_days"], "Arbeitstag", "Arbeitstagen"),
        "Frist Rückmeldung": counted(settings["feedback_working_days"], "Arbeitstag", "Arbeitstagen"),
        "Frist Fachberatung": counted(settings["consultation_accept_working_days"], "Arbeitstag", "Arbeitstagen"),
        "Löschfrist": counted(settings["retention_days"], "Tag", "Tagen"),
        "Größe Anhänge": megabytes(config["MAX_ATTACHMENT_BYTES"]),
    }


PLACEHOLDERS: tuple[str, ...] = tuple(placeholder_values(DEADLINE_DEFAULTS, {"MAX_ATTACHMENT_BYTES": 0}))


@dataclass
class GuideFacts:
    """What the facts boxes show to one user: their own districts and schools; all districts to the
    city-wide roles (coordinator, admin, InsoFa)."""

    values: dict[str, str]  # the placeholders' values
    districts: list[District]
    pool: list[Contact]
    asd_contacts: list[Contact] = field(default_factory=list)  # for the user's own school(s)
    schools: list[School] = field(default_factory=list)  # the user's own school(s)


def facts_for(user: User, config: Mapping[str, Any]) -> GuideFacts:
    """Three or four queries, however many districts and contacts there are."""
    school_ids = user.school_ids(*SCHOOL_SIDE)
    district_ids = user.district_ids(*ASD_SIDE)
    city_wide = any(m.school_id is None and m.district_id is None for m in user.memberships)
    schools: list[School] = []
    if school_ids:
        schools = list(db.session.scalars(select(School).where(School.id.in_(school_ids)).order_by(School.name)))
        district_ids |= {school.district_id for school in schools}
    statement = select(District).order_by(District.name)
    if not city_wide:
        statement = statement.where(District.id.in_(district_ids))
    districts = list(db.session.scalars(statement))
    contacts = list(
        db.session.scalars(
            select(Contact)
            .where(
                (Contact.kind == ContactKind.INSOFA)
                | ((Contact.kind == ContactKind.ASD_CONTACT) & Contact.school_id.in_(school_ids))
            )
            .order_by(Contact.name)
        )
    )
    return GuideFacts(
        values=placeholder_values(deadline_settings(), config),
        districts=districts,
        pool=[contact for contact in contacts if contact.kind == ContactKind.INSOFA],
        asd_contacts=[contact for contact in contacts if contact.kind == ContactKind.ASD_CONTACT],
        schools=schools,
    )
