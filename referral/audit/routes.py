"""The coordinator's view of the audit log, the check of its chain, and each referral's access history."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..cases.models import Referral
from ..exports import csv_response
from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm, options
from ..organisation.models import District, School
from ..pagination import paginate
from ..policy.referrals import may_see_access_history
from ..policy.roles import COORDINATION, require_roles
from ..timeutil import to_local
from . import chain, queries
from .forms import AuditSearchForm
from .log import ACTION_LABELS, record

blueprint = Blueprint("audit", __name__)


def _search_form() -> AuditSearchForm:
    form = AuditSearchForm(request.args)
    form.school.choices = options(
        [("", "alle")]
        + [(str(i), n) for i, n in db.session.execute(select(School.id, School.name).order_by(School.name))]
    )
    form.district.choices = options(
        [("", "alle")]
        + [(str(i), n) for i, n in db.session.execute(select(District.id, District.name).order_by(District.name))]
    )
    form.validate()
    return form


@blueprint.get("/coordination/audit")
@require_roles(*COORDINATION)
def search():
    form = _search_form()
    page = paginate(queries.search(form), request.args.get("page", 1, type=query_int))
    return render_template(
        "audit/search.html",
        form=form,
        page=page,
        labels=ACTION_LABELS,
        action_form=ActionForm(),
        **queries.names(page.rows),
    )


@blueprint.get("/coordination/audit.csv")
@require_roles(*COORDINATION)
def export():
    form = _search_form()
    record(
        "export.audit",
        object_type="audit_entry",
        object_id="*",
        fields=sorted(k for k, v in request.args.items() if v and k != "page"),
    )
    statement = queries.search(form).execution_options(yield_per=1000)
    named = queries.names([])

    def rows():
        for entry in db.session.scalars(statement):
            yield [
                to_local(entry.at).strftime("%d.%m.%Y %H:%M:%S"),
                entry.actor.name if entry.actor else "",
                entry.actor.email if entry.actor else "",
                entry.actor_role,
                entry.actor_scope,
                ACTION_LABELS.get(entry.action, entry.action),
                entry.object_type,
                entry.object_id,
                named["schools"].get(entry.school_id, ""),
                named["districts"].get(entry.district_id, ""),
                ", ".join(entry.fields or []),
                entry.request_id,
                entry.id,
                entry.hash,
            ]

    return csv_response(
        "protokoll.csv",
        [
            "Zeit",
            "Person",
            "E-Mail",
            "Rolle",
            "Zuständigkeit",
            "Aktion",
            "Objektart",
            "Objekt",
            "Schule",
            "Bezirk",
            "Geänderte Felder",
            "Anfrage",
            "Nr.",
            "Prüfsumme",
        ],
        rows(),
    )


@blueprint.post("/coordination/audit/verify")
@require_roles(*COORDINATION)
def verify():
    ActionForm().validate_on_submit() or abort(400)
    verdict = chain.verify()
    db.session.rollback()
    record("audit.verify", object_type="audit_entry", object_id="*", fields=["intakt" if verdict.ok else "beschädigt"])
    if verdict.ok:
        flash(
            f"Das Protokoll ist unverändert: {verdict.checked} Einträge geprüft, die Kette ist vollständig"
            + (f" ({verdict.unsealed} neue noch nicht versiegelt)." if verdict.unsealed else "."),
            "success",
        )
    else:
        flash(
            f"Das Protokoll wurde verändert: {verdict.stelle} – {verdict.problem}. "
            "Bitte sofort die Datenschutzbeauftragte und den Betrieb informieren.",
            "danger",
        )
    return redirect(url_for(".search"))


@blueprint.get("/referrals/<int:referral_id>/access")
def access_history(referral_id: int):
    """Who saw or changed this referral: for the coordinator and the ASD lead of its district."""
    referral = db.session.get(Referral, referral_id)
    if referral is None or not may_see_access_history(current_user, referral):
        abort(404)
    page = paginate(queries.for_referral(referral_id), request.args.get("page", 1, type=query_int))
    record("referral.access_history", referral)
    return render_template(
        "audit/access.html", referral=referral, page=page, labels=ACTION_LABELS, **queries.names(page.rows)
    )
