"""Jinja filters and globals: German dates in Berlin time, and the policy for templates."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app

from .timeutil import to_local, utcnow


def local_datetime(value: datetime | None) -> str:
    return to_local(value).strftime("%d.%m.%Y, %H:%M Uhr") if value else "–"


def local_date(value: date | datetime | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = to_local(value).date()
    return value.strftime("%d.%m.%Y")


def deadline(value: datetime | None) -> str:
    """Deadlines end at midnight: show "Ende 23.11.2026" rather than "24.11.2026, 00:00 Uhr"."""
    if value is None:
        return "–"
    local = to_local(value)
    if (local.hour, local.minute) == (0, 0):
        return "Ende " + (local - timedelta(days=1)).strftime("%d.%m.%Y")
    return local.strftime("%d.%m.%Y, %H:%M Uhr")


def yes_no(value: bool | None) -> str:
    return {True: "ja", False: "nein"}.get(value, "keine Angabe")


FIELD_LABELS = {
    "name": "Name",
    "phone": "Telefon",
    "email": "E-Mail-Adresse",
    "active": "aktiv",
    "password": "Passwort",
    "fs_uniquifier": "Sitzungen",
    "tf_primary_method": "Zwei-Faktor",
    "tf_totp_secret": "Zwei-Faktor-Schlüssel",
    "mf_recovery_codes": "Wiederherstellungscodes",
    "code": "Kürzel",
    "duty_phone": "Bereitschaftstelefon",
    "duty_hours": "Erreichbarkeit",
    "inbox_email": "Posteingang",
    "district_id": "Bezirk",
    "districts": "Bezirke",
    "scopes": "Berechtigungen",
    "secret_hash": "Schlüssel",
    "revoked_at": "widerrufen",
    "webhook_url": "Webhook-Adresse",
    "webhook_secret": "Webhook-Schlüssel",
    "case_reference": "Aktenzeichen",
    "address": "Anschrift",
    "ack_acute_hours": "Eingangsbestätigung akut",
    "ack_working_days": "Eingangsbestätigung",
    "feedback_working_days": "Rückmeldung",
    "consultation_accept_working_days": "Annahme Fachberatung",
    "retention_days": "Löschfrist",
    "draft_retention_days": "Löschfrist Entwürfe",
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def age(since: datetime) -> str:
    """'3 Tage', '5 Std.': how long ago, for the district overview."""
    from .timeutil import utcnow

    hours = max(0, int((utcnow() - since).total_seconds() // 3600))
    return f"{hours // 24} Tag{'e' if hours // 24 != 1 else ''}" if hours >= 48 else f"{hours} Std."


def register(app) -> None:
    from .cases.process import RULES, Action, State
    from .cases.vocabulary import BodySide, Category, SchoolActionKind, regions_for

    body_labels = {f"{s.value}:{r.value}": f"{s.label}: {r.label}" for s in BodySide for r in regions_for(s)}
    app.jinja_env.filters.update(
        local_datetime=local_datetime,
        local_date=local_date,
        deadline=deadline,
        yes_no=yes_no,
        reject_page=reject_page,
        filesize=filesize,
        field_label=field_label,
    )
    from flask_login import current_user

    from .directory.routes import asd_contacts
    from .guide.operations import unseen as guide_unseen
    from .guide.sections import FORM_SECTIONS
    from .kernel.settings import deadline_settings
    from .kernel.wording import configured, counted
    from .policy.navigation import navigation
    from .policy.school_side import sees_whole_school
    from .retention import purge_date

    app.jinja_env.filters["counted"] = counted
    app.jinja_env.globals.update(
        deadline_settings=deadline_settings,
        # A global, not a context variable: imported macros see it too. Needs no database (error pages).
        configured=lambda: configured(current_app.config),
        age=age,
        purge_date=purge_date,
        asd_contacts=asd_contacts,
        # Is there a version of the guide the signed-in user has not seen yet? (start pages' notice)
        guide_form_sections=FORM_SECTIONS,
        guide_unseen=lambda: current_user.is_authenticated and guide_unseen(current_user),
        utcnow=utcnow,
        navigation=navigation,
        sees_whole_school=sees_whole_school,
        Action=Action,
        State=State,
        RULES=RULES,
        category_help=lambda code: Category(code).help,
        body_labels=body_labels,
        allowed_marks=set(body_labels),
        action_kinds={k.value: k for k in SchoolActionKind},
    )


def filesize(size: int) -> str:
    if size < 1024:
        return f"{size} Byte"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")


def reject_page(args: dict) -> dict:
    """Query arguments without `page`, to build the links to other pages."""
    return {k: v for k, v in args.items() if k != "page"}
