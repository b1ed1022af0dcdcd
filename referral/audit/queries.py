"""Searching the audit log. Filters in SQL; a page needs a fixed number of queries."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import false, func, or_, select

from ..accounts.models import User
from ..cases.models import Referral
from ..extensions import db
from ..integers import id_or_none
from ..organisation.models import District, School
from ..pagination import contains
from ..timeutil import local_to_utc
from .models import AuditEntry


def search(form) -> select:
    statement = select(AuditEntry).order_by(AuditEntry.id.desc())
    if form.errors:
        return statement.where(false())
    if form.date_from.data:
        statement = statement.where(AuditEntry.at >= local_to_utc(datetime.combine(form.date_from.data, time())))
    if form.date_to.data:
        end = datetime.combine(form.date_to.data + timedelta(days=1), time())
        statement = statement.where(AuditEntry.at < local_to_utc(end))
    if form.actor.data:
        pattern = contains(form.actor.data)
        statement = statement.where(
            AuditEntry.actor_id.in_(
                select(User.id).where(
                    or_(
                        func.lower(User.name).like(pattern, escape="\\"),
                        func.lower(User.email).like(pattern, escape="\\"),
                    )
                )
            )
        )
    if form.action.data:
        statement = statement.where(AuditEntry.action == form.action.data)
    if form.case_number.data:
        ids = select(func.cast(Referral.id, db.String)).where(Referral.number == form.case_number.data.strip().upper())
        statement = statement.where(AuditEntry.object_type == "referral", AuditEntry.object_id.in_(ids))
    if (school_id := id_or_none(form.school.data)) is not None:
        statement = statement.where(AuditEntry.school_id == school_id)
    if (district_id := id_or_none(form.district.data)) is not None:
        statement = statement.where(AuditEntry.district_id == district_id)
    return statement


def for_referral(referral_id: int):
    return (
        select(AuditEntry)
        .where(AuditEntry.object_type == "referral", AuditEntry.object_id == str(referral_id))
        .order_by(AuditEntry.id.desc())
    )


def names(entries) -> dict:
    """What a page of entries refers to, each kind read in one query: case numbers, schools, districts."""
    referral_ids = {int(e.object_id) for e in entries if e.object_type == "referral" and e.object_id.isdigit()}
    numbers = (
        dict(db.session.execute(select(Referral.id, Referral.number).where(Referral.id.in_(referral_ids))).all())
        if referral_ids
        else {}
    )
    schools = dict(db.session.execute(select(School.id, School.name)).all())
    districts = dict(db.session.execute(select(District.id, District.name)).all())
    return {"numbers": numbers, "schools": schools, "districts": districts}
