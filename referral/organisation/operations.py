"""Operations on the city's organisation: districts, schools and the deadlines in force.

As in accounts/operations.py: check, change, write the audit entry, flush; never commit or roll back.
If an operation raises, the caller rolls back (after a refused flush the session needs it).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.operations import Actor
from ..audit.log import changed_fields, record
from ..extensions import db
from .models import District, School

UNIQUE_WORDS = {"name": "Namen", "code": "Kürzel"}
DISTRICT_FIELDS = ("name", "code", "duty_phone", "duty_hours", "inbox_email", "model_project")
SCHOOL_FIELDS = ("name", "district_id", "phone", "email", "address")


class Taken(ValueError):
    """A name or code exists already; `errors` maps each field to its German message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(" ".join(errors.values()))
        self.errors = errors


def _clashes(model, obj, values: dict, names: tuple[str, ...], article: str) -> dict[str, str]:
    errors = {}
    for name in names:
        clash = db.session.scalar(
            select(model.id).where(getattr(model, name) == values[name], model.id != (obj.id or 0))
        )
        if clash is not None:
            errors[name] = f"{article} mit diesem {UNIQUE_WORDS[name]} gibt es bereits."
    return errors


def _save(actor: Actor, obj, kind: str, values: dict, unique: tuple[str, ...], article: str):
    errors = _clashes(type(obj), obj, values, unique, article)
    if errors:
        raise Taken(errors)
    is_new = obj.id is None
    for name, value in values.items():
        setattr(obj, name, value)
    if is_new:
        db.session.add(obj)
    fields = changed_fields(obj)
    try:
        db.session.flush()
    except IntegrityError as error:  # the same name, typed at the same moment by someone else
        raise Taken({"name": f"{article} mit diesem Namen gibt es bereits."}) from error
    if fields:
        record(
            f"{kind}.{'create' if is_new else 'update'}",
            obj,
            fields=fields,
            role=actor.role,
            scope=actor.scope,
            actor=actor.user,
        )
    return obj


def save_district(actor: Actor, district: District | None, **values) -> District:
    """Create (district None) or change a district; `values` are DISTRICT_FIELDS."""
    return _save(
        actor,
        district or District(),
        "district",
        {k: values[k] for k in DISTRICT_FIELDS},
        ("name", "code"),
        "Einen Bezirk",
    )


def save_school(actor: Actor, school: School | None, **values) -> School:
    return _save(actor, school or School(), "school", {k: values[k] for k in SCHOOL_FIELDS}, ("name",), "Eine Schule")


def set_deadlines(actor: Actor, values: dict[str, int]) -> list[str]:
    """The deadlines for referrals that come in from now on; returns the names of those changed."""
    from ..kernel.settings import DEADLINE_DEFAULTS, Setting, deadline_settings

    current = deadline_settings()
    changed = [key for key in DEADLINE_DEFAULTS if values[key] != current[key]]
    for key in changed:
        setting = db.session.get(Setting, key) or Setting(key=key)
        setting.value = values[key]
        db.session.add(setting)
    if changed:
        record(
            "settings.update",
            object_type="setting",
            object_id="deadlines",
            fields=changed,
            role=actor.role,
            scope=actor.scope,
            actor=actor.user,
        )
        db.session.flush()
    return changed
