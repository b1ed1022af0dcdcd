"""Pages of the Fachberatung: the school's request and list, the InsoFa's pool, and the actions."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import and_, case, select, update
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Role
from ..actions import carry_out
from ..audit.log import record
from ..cases.models import Referral
from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm
from ..notifications.models import Notification
from ..pagination import paginate
from ..policy import own_school, referral_scope
from ..timeutil import local_to_utc, to_local, utcnow
from . import access, services
from .forms import AppointmentForm, ConsultationForm, RecommendationForm
from .models import Consultation
from .process import RULES, ConsultationAction, ConsultationState, refusal
from .vocabulary import ConsultationUrgency, ContactWay, Recommendation

blueprint = Blueprint("consultations", __name__, url_prefix="/consultations")
SCHOOL_SIDE = {Role.TEACHER, Role.SCHOOL_LEAD}


def _require(*roles: Role) -> None:
    if not current_user.has_role_in(set(roles)):
        abort(403)


@blueprint.get("/")
def index():
    _require(Role.TEACHER, Role.SCHOOL_LEAD, Role.INSOFA)
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
    return render_template("consultations/index.html", page=page, now=utcnow(), insofa=access.is_insofa(current_user))


@blueprint.route("/new", methods=["GET", "POST"])
def new():
    _require(Role.TEACHER, Role.SCHOOL_LEAD)
    school = own_school(current_user, request.values.get("school", type=query_int))
    form = ConsultationForm()
    if request.method == "GET":
        form.contact_phone.data = current_user.phone
    elif form.validate():
        consultation = services.request(current_user, school, **form.values())
        db.session.commit()
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
        reason = access.left_the_pool(current_user, consultation_id)
        if reason:
            raise LeftThePool(reason)
        abort(404)
    return found


class LeftThePool(Exception):
    pass


@blueprint.errorhandler(LeftThePool)
def left_the_pool(error: LeftThePool):
    db.session.rollback()
    flash(str(error), "info")
    return redirect(url_for(".index"))


@blueprint.get("/<int:consultation_id>")
def show(consultation_id: int):
    consultation = _visible(consultation_id)
    # Seen here, its notifications are read too (as when the notification itself is opened).
    db.session.execute(
        update(Notification)
        .where(
            Notification.user_id == current_user.id,
            Notification.consultation_id == consultation_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
    return _page(consultation)


def _page(consultation: Consultation, appointment_form=None, recommendation_form=None, status: int = 200):
    record("consultation.view", consultation)
    db.session.commit()
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


def _for_action(consultation_id: int, action: ConsultationAction) -> Consultation:
    """The consultation if `current_user` may take `action` now; 404 if out of sight, 403 outside the
    role, and back to the page with an explanation when someone else acted first."""
    consultation = _visible(consultation_id)
    if not access.may_by_role(current_user, action, consultation):
        abort(403)
    if consultation.state not in RULES[action].sources:
        raise Moved(consultation, refusal(action, consultation.state))
    return consultation


class Moved(Exception):
    def __init__(self, consultation: Consultation, message: str):
        super().__init__(message)
        self.consultation_id = consultation.id
        self.state = consultation.state


@blueprint.errorhandler(Moved)
def moved(error: Moved):
    db.session.rollback()
    flash(str(error), "danger")
    return redirect(url_for(".show", consultation_id=error.consultation_id))


def _done(consultation: Consultation, action: ConsultationAction, operation, **kwargs):
    consultation_id = consultation.id
    carry_out(
        lambda: operation(consultation, current_user, **kwargs),
        RULES[action].done,
        lambda: db.session.scalar(select(Consultation.state).where(Consultation.id == consultation_id)),
    )
    visible = db.session.scalar(
        select(Consultation.id).where(Consultation.id == consultation_id, access.consultation_scope(current_user))
    )
    return redirect(url_for(".show", consultation_id=consultation_id) if visible else url_for(".index"))


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
        db.session.commit()
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
