"""The coordinator's evaluation (page, printable page, CSV) and the ASD lead's district overview."""

from __future__ import annotations

import click
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..audit.log import record
from ..exports import csv_response
from ..extensions import db
from ..integers import query_int
from ..organisation.models import District, School
from ..policy.roles import ASD_LEAD, COORDINATION, require_roles
from ..timeutil import to_local, utcnow
from . import aggregates, figures, overview, periods, report
from .forms import EvaluationFilterForm

blueprint = Blueprint("evaluation", __name__)


def _filters():
    """The filter form bound to the query string; when it is valid, also the period, the previous
    period and the scopes it asks for (an invalid filter shows no figures at all)."""
    form = EvaluationFilterForm(request.args)
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    schools = db.session.execute(
        select(School.id, School.name, District.name).join(District).order_by(District.name, School.name)
    ).all()
    form.district.choices = [(0, "alle Bezirke")] + [
        (d.id, d.name + (" (Modellprojekt)" if d.model_project else "")) for d in districts
    ]
    form.school.choices = [(0, "alle Schulen")] + [(i, f"{name} ({district})") for i, name, district in schools]
    if request.args and not form.validate():
        return form, None
    district_of = {
        school_id: district_id
        for school_id, district_id in db.session.execute(select(School.id, School.district_id)).all()
    }
    if form.district.data and form.school.data and district_of.get(form.school.data) != form.district.data:
        form.school.errors = [*form.school.errors, "Diese Schule gehört nicht zum gewählten Bezirk."]
        return form, None
    kind = form.period.data or "school_year"
    if kind == "free":
        period = periods.free(form.first.data, form.last.data)
    else:
        period = periods.containing(kind, form.day.data or to_local(utcnow()).date())
    previous = periods.before(kind, period)
    district_ids = (form.district.data,) if form.district.data else None
    scope = figures.Scope(period.start, period.end, district_ids=district_ids, school_id=form.school.data or None)
    previous_scope = figures.Scope(previous.start, previous.end, district_ids, form.school.data or None)
    return form, (period, previous, scope, previous_scope)


def _report(with_charts: bool = True):
    form, chosen = _filters()
    if chosen is None:
        return form, None, []
    period, previous, scope, previous_scope = chosen
    return (
        form,
        period,
        report.build(scope, previous_scope, utcnow(), period.label, previous.label, with_charts=with_charts),
    )


@blueprint.get("/coordination/evaluation")
@require_roles(*COORDINATION)
def index():
    form, period, tables = _report()
    return render_template(
        "evaluation/index.html",
        form=form,
        period=period,
        tables=tables,
        printing=False,
        query=request.query_string.decode(),
    )


@blueprint.get("/coordination/evaluation/print")
@require_roles(*COORDINATION)
def printable():
    form, period, tables = _report()
    if period is None:  # the page shows what is wrong with the filter
        return redirect(url_for(".index", **request.args))
    record("evaluation.print", object_type="evaluation", object_id=period.label, fields=sorted(request.args))
    return render_template(
        "evaluation/print.html", form=form, period=period, tables=tables, printing=True, generated=utcnow()
    )


@blueprint.get("/coordination/evaluation.csv")
@require_roles(*COORDINATION)
def export():
    form, period, tables = _report(with_charts=False)
    if period is None:
        return redirect(url_for(".index", **request.args))
    record("export.evaluation", object_type="evaluation", object_id=period.label, fields=sorted(request.args))

    choices = {"district": dict(form.district.choices), "school": dict(form.school.choices)}

    def rows():
        # What the file is about, so that it stays understandable on its own.
        yield ["Auswertung", "Zeitraum", period.label, f"{period.first:%d.%m.%Y}–{period.last:%d.%m.%Y}", ""]
        yield ["Auswertung", "Bezirk", choices["district"][form.district.data or 0], "", ""]
        yield ["Auswertung", "Schule", choices["school"][form.school.data or 0], "", ""]
        yield ["Auswertung", "erstellt", to_local(utcnow()).strftime("%d.%m.%Y %H:%M"), "", ""]
        for table in (t for t in tables if t.in_csv):
            for row in table.rows:
                for column, cell in zip(table.header[1:], row[1:], strict=True):
                    yield [table.title, row[0], column, *csv_value(cell)]

    return csv_response(
        f"auswertung-{period.first:%Y-%m-%d}-{period.last:%Y-%m-%d}.csv",
        ["Tabelle", "Zeile", "Spalte", "Wert", "Einheit"],
        rows(),
    )


def csv_value(cell) -> tuple[str, str]:
    """A number as German Excel reads it ("11,7"), its unit in a column of its own."""
    text = str(cell)
    for unit in (" %", " Std.", " Arbeitstage", " Tage"):
        if text.endswith(unit) and text[: -len(unit)].replace(",", "").isdigit():
            return text[: -len(unit)], unit.strip()
    return text, ""


@blueprint.get("/district-overview")
@require_roles(*ASD_LEAD)
def district_overview():
    district_ids = sorted(current_user.district_ids(*ASD_LEAD))
    wanted = request.args.get("district", type=query_int)
    district = db.session.get(District, wanted if wanted in district_ids else district_ids[0])
    return render_template(
        "evaluation/district.html",
        district=district,
        data=overview.for_district(district.id, utcnow()),
        districts=db.session.scalars(
            select(District).where(District.id.in_(district_ids)).order_by(District.name)
        ).all(),
    )


@blueprint.cli.command("refresh")
@click.option("--all", "everything", is_flag=True, help="Alles neu berechnen, nicht nur geänderte Monate.")
def refresh_command(everything: bool) -> None:
    """Update the evaluation's monthly aggregates (after a bulk load or restore: --all)."""
    taken = aggregates.refresh_everything() if everything else aggregates.refresh()
    db.session.commit()
    click.echo(f"Auswertung aktualisiert ({taken} Änderungsvermerke verarbeitet).")
