"""Pages of the Fachberatung: the school's request and list, the InsoFa's pool, and the actions."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import and_, case, select
from sqlalchemy.exc import IntegrityError

from .. import lifecycle
from ..audit.log import record
from ..cases.models import Referral
from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm
from ..notifications import operations as notifications
from ..pagination import paginate
from ..policy import consultations as access
from ..policy.referrals import referral_scope
from ..policy.roles import CONSULTATION_SIDE, SCHOOL_SIDE, admits, require_roles
from ..policy.school_side import own_school
from ..timeutil import local_to_utc, to_local, utcnow
from ..workflow.errors import Refused
from ..workflow.pages import Loader, answer_refusals, carry_out_action
from . import services
from .forms import AppointmentForm, ConsultationForm, RecommendationForm
from .models import Consultation
from .process import CONSULTATIONS, ConsultationAction, ConsultationState
from .vocabulary import ConsultationUrgency, ContactWay, Recommendation

blueprint = Blueprint("consultations", __name__, url_prefix="/consultations")


@blueprint.get("/")
@require_roles(*CONSULTATION_SIDE)
def index():
    S = Consultation.state
    # Open requests first (the earliest due on top), then one's own open work, then what is done.
    order = case((S == ConsultationState.REQUESTED, 0), (S == ConsultationState.ACCEPTED, 1), else_=2)
    urgent_first = case(
        (and_(S == ConsultationState.REQUESTED, Consultation.urgency == ConsultationUrgency.URGENT), 0), else_=1
    )
    statement = (
        select(Consultation)
        .where(access.consultation_scope(current_user))
        .order_by(
            order,
            urgent_first,
            case((S == ConsultationState.REQUESTED, Consultation.accept_due_at), else_=None),
            Consultation.requested_at.desc(),
            Consultation.id.desc(),
        )
    )
    page = paginate(statement, request.args.get("page", 1, type=query_int))
    return render_template(
        "consultations/index.html",
        page=page,
        now=utcnow(),
        insofa=access.is_insofa(current_user),
        may_request=admits(current_user, "consultations.new"),
    )


@blueprint.route("/new", methods=["GET", "POST"])
@require_roles(*SCHOOL_SIDE)
def new():
    school = own_school(current_user, request.values.get("school", type=query_int))
    form = ConsultationForm()
    if request.method == "GET":
        form.contact_phone.data = current_user.phone
    elif form.validate():
        consultation = services.request(current_user, school, **form.values())
        flash(
            "Ihre Anfrage wurde an den Pool der insoweit erfahrenen Fachkräfte gesendet. Sie werden "
            "benachrichtigt, sobald eine Fachkraft sie annimmt.",
            "success",
        )
        return redirect(url_for(".show", consultation_id=consultation.id))
    return render_template(
        "consultations/form.html", form=form, school=school, invalid=request.method == "POST"
    ), 422 if request.method == "POST" else 200


def _visible(consultation_id: int) -> Consultation:
    """The consultation if `current_user` may see it; an InsoFa whose pool request went elsewhere is
    told so on the list; everyone else gets 404 whether it exists or not."""
    found = db.session.scalar(
        select(Consultation).where(Consultation.id == consultation_id, access.consultation_scope(current_user))
    )
    if found is None:
        refused = _left_the_pool(consultation_id)
        if refused is not None:
            raise refused
        abort(404)
    return found


def _left_the_pool(consultation_id: int) -> Refused | None:
    reason = access.left_the_pool(current_user, consultation_id)
    return Refused(reason, url_for(".index"), "info") if reason else None


answer_refusals(blueprint)


@blueprint.get("/<int:consultation_id>")
def show(consultation_id: int):
    consultation = _visible(consultation_id)
    # Seen here, its notifications are read too (as when the notification itself is opened).
    notifications.mark_read_for_consultation(current_user, consultation_id)
    return _page(consultation)


def _page(consultation: Consultation, appointment_form=None, recommendation_form=None, status: int = 200):
    record("consultation.view", consultation)
    if status >= 400:
        lifecycle.keep()  # the view happened, although a form came back with errors
    referral = services.referral_from(consultation)
    visible_referral = (
        referral
        if referral is not None
        and db.session.scalar(select(Referral.id).where(Referral.id == referral.id, referral_scope(current_user)))
        else None
    )
    return render_template(
        "consultations/show.html",
        c=consultation,
        now=utcnow(),
        action_form=ActionForm(),
        appointment_form=appointment_form or AppointmentForm(formdata=None, data=_appointment(consultation)),
        recommendation_form=recommendation_form or RecommendationForm(formdata=None),
        may=lambda action: access.may(current_user, ConsultationAction(action), consultation),
        school_side=access.is_school_side(current_user, consultation),
        referral=visible_referral,
        referral_started=referral is not None,
    ), status


def _appointment(consultation: Consultation) -> dict:
    if consultation.appointment_at is None:
        return {}
    return {
        "at": to_local(consultation.appointment_at).replace(tzinfo=None),
        "way": consultation.appointment_way.value if consultation.appointment_way else None,
    }


def _find(consultation_id: int, action: ConsultationAction) -> Consultation | None:
    return db.session.scalar(
        select(Consultation).where(Consultation.id == consultation_id, access.consultation_scope(current_user))
    )


# The consultation if `current_user` may take the action now: 404 if out of sight (the InsoFa whose
# pool request went elsewhere is told so), 403 outside the role, and back to the page with an
# explanation when someone else acted first (see `workflow.pages.Loader`).
_for_action = Loader(
    CONSULTATIONS,
    find=_find,
    may=lambda consultation, action: access.may_by_role(current_user, action, consultation),
    page=lambda consultation: url_for(".show", consultation_id=consultation.id),
    gone=_left_the_pool,
    tell_state=False,
)


def _done(consultation: Consultation, action: ConsultationAction, operation, **kwargs):
    consultation_id = consultation.id

    def next_page() -> str:
        visible = db.session.scalar(
            select(Consultation.id).where(Consultation.id == consultation_id, access.consultation_scope(current_user))
        )
        return url_for(".show", consultation_id=consultation_id) if visible else url_for(".index")

    return carry_out_action(
        CONSULTATIONS, action, consultation_id, lambda: operation(consultation, current_user, **kwargs), next_page
    )


@blueprint.post("/<int:consultation_id>/cancel")
def cancel(consultation_id: int):
    consultation = _for_action(consultation_id, ConsultationAction.CANCEL)
    return _done(consultation, ConsultationAction.CANCEL, services.cancel)


@blueprint.post("/<int:consultation_id>/accept")
def accept(consultation_id: int):
    consultation = _for_action(consultation_id, ConsultationAction.ACCEPT)
    return _done(consultation, ConsultationAction.ACCEPT, services.accept)


@blueprint.post("/<int:consultation_id>/appointment")
def appointment(consultation_id: int):
    consultation = _for_action(consultation_id, ConsultationAction.ARRANGE)
    form = AppointmentForm()
    if not form.validate():
        return _page(consultation, appointment_form=form, status=422)
    return _done(
        consultation,
        ConsultationAction.ARRANGE,
        services.arrange,
        at=local_to_utc(form.at.data),
        way=ContactWay(form.way.data),
    )


@blueprint.post("/<int:consultation_id>/answer")
def answer(consultation_id: int):
    consultation = _for_action(consultation_id, ConsultationAction.ANSWER)
    form = RecommendationForm()
    if form.validate() and consultation.appointment_at and consultation.appointment_at > utcnow():
        form.recommendation.errors = [
            f"Der vereinbarte Termin ({to_local(consultation.appointment_at):%d.%m.%Y, %H:%M} Uhr) liegt noch in der "
            "Zukunft. Bitte die Empfehlung nach der Beratung erfassen, oder den Termin auf den Tag der Beratung ändern."
        ]
    if form.recommendation.errors or form.errors:
        return _page(consultation, recommendation_form=form, status=422)
    return _done(
        consultation,
        ConsultationAction.ANSWER,
        services.answer,
        recommendation=Recommendation(form.recommendation.data),
        note=(form.note.data or "").strip(),
    )


@blueprint.post("/<int:consultation_id>/referral")
def start_referral(consultation_id: int):
    consultation = _for_action(consultation_id, ConsultationAction.START_REFERRAL)
    try:
        referral = services.start_referral(consultation, current_user)
        db.session.flush()  # a second click shows here, not in the request's commit
    except IntegrityError:  # a second click at the same moment: the first one's draft wins
        db.session.rollback()
        referral = services.referral_from(db.session.get(Consultation, consultation_id))
    if referral.author_id != current_user.id:
        flash("Aus dieser Fachberatung wurde bereits eine Mitteilung begonnen.", "info")
        return redirect(url_for(".show", consultation_id=consultation_id))
    flash(
        "Der Entwurf der Mitteilung wurde angelegt; die Beobachtungen aus der Fachberatung sind übernommen. "
        "Bitte ergänzen Sie die Angaben zum Kind und zur Familie.",
        "success",
    )
    return redirect(
        url_for("cases.edit", referral_id=referral.id)
        if referral.state.value == "draft"
        else url_for("cases.show", referral_id=referral.id)
    )
