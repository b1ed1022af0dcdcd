"""The coordinator's evaluation (page, printable page, CSV) and the ASD lead's district overview."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..audit.log import record
from ..exports import csv_response
from ..extensions import db
from ..organisation.models import District, School
from ..timeutil import to_local, utcnow
from . import figures, overview, periods, report
from .forms import EvaluationFilterForm

blueprint = Blueprint("evaluation", __name__)


def _coordinator() -> None:
    if not current_user.has_role_in({Role.COORDINATOR}):
        abort(403)


def _filters():
    """The filter form bound to the query string, and the period, previous period and scope it asks for."""
    form = EvaluationFilterForm(request.args)
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    schools = db.session.execute(select(School.id, School.name, District.name).join(District)
                                 .order_by(District.name, School.name)).all()
    form.district.choices = [(0, "alle Bezirke")] + [(d.id, d.name + (" (Modellprojekt)" if d.model_project else ""))
                                                     for d in districts]
    form.school.choices = [(0, "alle Schulen")] + [(i, f"{name} ({district})") for i, name, district in schools]
    valid = form.validate() if request.args else True
    today = to_local(utcnow()).date()
    kind = form.period.data if valid and form.period.data else "school_year"
    if kind == "free" and valid:
        period = periods.free(form.first.data, form.last.data)
    else:
        period = periods.containing(kind if kind != "free" else "school_year", (form.day.data if valid else None) or today)
    previous = periods.before(kind, period)
    district_id = form.district.data if valid and form.district.data else None
    school_id = form.school.data if valid and form.school.data else None
    scope = figures.Scope(period.start, period.end, district_ids=(district_id,) if district_id else None,
                          school_id=school_id)
    previous_scope = figures.Scope(previous.start, previous.end, scope.district_ids, school_id)
    return form, period, previous, scope, previous_scope


def _report(with_charts: bool = True):
    form, period, previous, scope, previous_scope = _filters()
    tables = report.build(scope, previous_scope, utcnow(), period.label, previous.label, with_charts=with_charts)
    return form, period, tables


@blueprint.get("/coordination/evaluation")
def index():
    _coordinator()
    form, period, tables = _report()
    return render_template("evaluation/index.html", form=form, period=period, tables=tables, printing=False,
                           query=request.query_string.decode())


@blueprint.get("/coordination/evaluation/print")
def printable():
    _coordinator()
    form, period, tables = _report()
    record("evaluation.print", object_type="evaluation", object_id=period.label, fields=sorted(request.args))
    db.session.commit()
    return render_template("evaluation/print.html", form=form, period=period, tables=tables, printing=True,
                           generated=utcnow())


@blueprint.get("/coordination/evaluation.csv")
def export():
    _coordinator()
    form, period, tables = _report(with_charts=False)
    record("export.evaluation", object_type="evaluation", object_id=period.label, fields=sorted(request.args))
    db.session.commit()

    def rows():
        for table in tables:
            for row in table.rows:
                for column, cell in zip(table.header[1:], row[1:]):
                    yield [table.title, row[0], column, cell]

    return csv_response(f"auswertung-{period.first:%Y-%m-%d}-{period.last:%Y-%m-%d}.csv",
                        ["Tabelle", "Zeile", "Spalte", "Wert"], rows())


@blueprint.get("/district-overview")
def district_overview():
    if not current_user.has_role_in({Role.ASD_LEAD}):
        abort(403)
    district_ids = sorted(current_user.district_ids(Role.ASD_LEAD))
    wanted = request.args.get("district", type=int)
    district = db.session.get(District, wanted if wanted in district_ids else district_ids[0])
    return render_template("evaluation/district.html", district=district, data=overview.for_district(district.id, utcnow()),
                           districts=db.session.scalars(select(District).where(District.id.in_(district_ids))
                                                        .order_by(District.name)).all())
