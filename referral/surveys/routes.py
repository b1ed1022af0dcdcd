"""The survey pages: answering (one screen), and the coordinator's quarterly rounds and free text."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..audit.log import record
from ..cases.models import Referral
from ..extensions import db
from ..kernel.forms import options
from ..organisation.models import District
from ..policy.navigation import start_endpoint
from ..policy.referrals import referral_scope
from ..policy.roles import ASD_SIDE, COORDINATION, SCHOOL_SIDE, require_roles
from ..timeutil import utcnow
from . import services
from .forms import RoundForm, survey_form
from .models import SurveyRound
from .services import AlreadyDone, Invitation, RoundExists, quarter_label

blueprint = Blueprint("surveys", __name__, url_prefix="/umfrage")

# The same words whether answered or declined: not even the session's flash tells the two apart.
DONE = "Vielen Dank. Diese Umfrage ist erledigt und wird Ihnen nicht mehr angezeigt."
NOT_OPEN = "Diese Umfrage ist nicht (mehr) offen: Sie haben sie bereits beantwortet oder nicht teilgenommen."


@blueprint.app_template_global()
def survey_invitations() -> list[Invitation]:
    """The open invitations of the signed-in user (start pages)."""
    return services.open_invitations(current_user, utcnow())


@blueprint.app_template_global()
def survey_for(referral: Referral) -> Invitation | None:
    """The open invitation about this referral (its page), if any."""
    if not services.may_be_invited(current_user, referral):
        return None
    return services.referral_invitation(current_user, referral.id, utcnow())


def _survey(invitation: Invitation, back: str):
    form = survey_form(invitation.questions)
    if request.method == "POST":
        declined = request.form.get("choice") == "decline"
        if declined or form.validate():
            comment = form.comment.data if "comment" in form else ""
            try:
                services.answer(
                    current_user, invitation, None if declined else form.values(invitation.questions), comment or ""
                )
            except AlreadyDone:
                flash(NOT_OPEN, "info")
                return redirect(back)
            flash(DONE, "success")
            return redirect(back)
    invalid = request.method == "POST"
    return render_template(
        "surveys/answer.html", form=form, invitation=invitation, back=back, invalid=invalid
    ), 422 if invalid else 200


@blueprint.route("/mitteilung/<int:referral_id>", methods=["GET", "POST"])
def referral_survey(referral_id: int):
    """After the feedback (the author, the school lead) and after closing (the assigned ASD worker)."""
    referral = db.session.scalar(select(Referral).where(Referral.id == referral_id, referral_scope(current_user)))
    if referral is None:
        abort(404)
    if not services.may_be_invited(current_user, referral):
        abort(403)
    back = url_for("cases.show", referral_id=referral.id)
    invitation = services.referral_invitation(current_user, referral.id, utcnow())
    if invitation is None:
        flash(NOT_OPEN, "info")
        return redirect(back)
    return _survey(invitation, back)


@blueprint.route("/quartal", methods=["GET", "POST"])
@require_roles(*(SCHOOL_SIDE | ASD_SIDE))
def quarterly():
    """The quarter's survey, for the school and ASD staff of the districts the coordinator chose."""
    now = utcnow()
    invitation = services.round_invitation(current_user, now)
    if invitation is None:
        if not services.in_round(current_user, now):
            abort(404)
        flash(NOT_OPEN, "info")
        return redirect(_start())
    return _survey(invitation, _start())


def _start() -> str:
    """Back to one's start page (where the invitation was shown)."""
    return url_for(start_endpoint(current_user) or "home.index")


@blueprint.route("/runden", methods=["GET", "POST"])
@require_roles(*COORDINATION)
def rounds():
    now = utcnow()
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    form = RoundForm()
    form.districts.choices = options(
        [(d.id, d.name + (" (Modellprojekt)" if d.model_project else "")) for d in districts]
    )
    if request.method == "POST" and form.validate():
        try:
            services.open_round(current_user, [d for d in districts if d.id in form.districts.data], now)
        except RoundExists:
            db.session.rollback()
            flash("Für dieses Quartal ist bereits eine Umfrage geöffnet.", "info")
            return redirect(url_for(".rounds"))
        flash(
            "Die Quartalsumfrage ist geöffnet: die Schulen und ASD-Fachkräfte der gewählten Bezirke sehen die "
            "Einladung in der Anwendung, bis sie geantwortet oder abgelehnt haben.",
            "success",
        )
        return redirect(url_for(".rounds"))
    invalid = request.method == "POST"
    return render_template(
        "surveys/rounds.html",
        form=form,
        current=services.current_round(now),
        quarter=quarter_label(services.quarter_of(now)),
        past=db.session.scalars(select(SurveyRound).order_by(SurveyRound.quarter.desc()).limit(12)).all(),
        quarter_label=quarter_label,
        invalid=invalid,
    ), 422 if invalid else 200


@blueprint.get("/runden/<int:round_id>/freitext")
@require_roles(*COORDINATION)
def comments(round_id: int):
    """The round's free-text answers, per district only from MIN_GROUP on, in random order; recorded."""
    found = db.session.get(SurveyRound, round_id)
    if found is None:
        abort(404)
    batches = services.comment_batches(found.quarter)
    record(
        "survey.read_comments",
        object_type="survey_round",
        object_id=found.quarter,
        fields=[b.district for b in batches if b.texts is not None],
    )
    return render_template(
        "surveys/comments.html",
        round=found,
        batches=batches,
        quarter=quarter_label(found.quarter),
        minimum=services.MIN_GROUP,
    )
