"""The coordinator's view of the audit log, the check of its chain, and each referral's access history."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import policy
from ..accounts.models import Role
from ..cases.models import Referral
from ..exports import csv_response
from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm, options
from ..organisation.models import District, School
from ..pagination import paginate
from ..timeutil import to_local
from . import chain, queries
from .forms import AuditSearchForm
from .log import ACTION_LABELS, record

blueprint = Blueprint("audit", __name__)


def _coordinator_only() -> None:
    if not current_user.has_role_in({Role.COORDINATOR}):
        abort(403)


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
def search():
    _coordinator_only()
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
def export():
    _coordinator_only()
    form = _search_form()
    record(
        "export.audit",
        object_type="audit_entry",
        object_id="*",
        fields=sorted(k for k, v in request.args.items() if v and k != "page"),
    )
    db.session.commit()
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
                entry.seq,
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
def verify():
    _coordinator_only()
    ActionForm().validate_on_submit() or abort(400)
    verdict = chain.verify()
    db.session.rollback()
    record("audit.verify", object_type="audit_entry", object_id="*", fields=["intakt" if verdict.ok else "beschädigt"])
    db.session.commit()
    if verdict.ok:
        flash(
            f"Das Protokoll ist unverändert: {verdict.checked} Einträge geprüft, die Kette ist vollständig.", "success"
        )
    else:
        flash(
            f"Das Protokoll wurde verändert: Eintrag Nr. {verdict.seq} – {verdict.problem}. "
            "Bitte sofort die Datenschutzbeauftragte und den Betrieb informieren.",
            "danger",
        )
    return redirect(url_for(".search"))


@blueprint.get("/referrals/<int:referral_id>/access")
def access_history(referral_id: int):
    """Who saw or changed this referral: for the coordinator and the ASD lead of its district."""
    referral = db.session.get(Referral, referral_id)
    allowed = referral is not None and (
        (
            current_user.has_role_in({Role.COORDINATOR})
            and db.session.scalar(
                select(Referral.id).where(Referral.id == referral_id, policy.metadata_scope(current_user))
            )
        )
        or policy.is_asd_side(current_user, referral, Role.ASD_LEAD)
    )
    if not allowed:
        abort(404)
    page = paginate(queries.for_referral(referral_id), request.args.get("page", 1, type=query_int))
    record("referral.access_history", referral)
    db.session.commit()
    return render_template(
        "audit/access.html", referral=referral, page=page, labels=ACTION_LABELS, **queries.names(page.rows)
    )
