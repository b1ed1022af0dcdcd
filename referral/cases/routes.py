"""Pages of the referral: the school's form and list, the ASD's inbox, and the actions of the state table."""

from __future__ import annotations

import secrets
import unicodedata
from io import BytesIO
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from .. import lifecycle
from ..accounts import sessions
from ..audit.log import record
from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm, options, yes_no
from ..organisation.models import District, School
from ..outages import DISK_FULL, unreachable
from ..policy import referrals as policy
from ..policy.roles import ASD_SIDE, SCHOOL_SIDE, holds, require_roles
from ..policy.school_side import own_school
from ..timeutil import to_local, utcnow
from ..workflow.errors import ConcurrentChange, ProcessError, Refused, lost_a_race
from ..workflow.pages import Loader, answer_refusals, carry_out_action
from . import queries, services, storage
from .forms import (
    MESSAGE_FORMS,
    AssessmentForm,
    AssignForm,
    AttachmentForm,
    ConfirmDeletionForm,
    FeedbackForm,
    InboxFilterForm,
    ReferralForm,
    TransferForm,
)
from .models import Attachment, Referral
from .process import REFERRALS, RULES, Action, State, concurrent_change_message, history_for
from .vocabulary import AssessmentResult, Measure

blueprint = Blueprint("cases", __name__)


def _find_for_action(referral_id: int, action: Action) -> Referral | None:
    statement = select(Referral).where(Referral.id == referral_id, policy.referral_scope(current_user))
    if request.method == "POST" and RULES[action].sources == {State.DRAFT}:
        # A draft's save replaces its child rows (persons, categories, …) before the version-checked
        # update of the referral. Two saves at once (autosave, a second tab, "Einreichen") would
        # deadlock or fail on stale rows; locking the referral row first makes them take turns, and
        # the second one reads what the first left (a submitted referral is no draft any more).
        statement = queries.for_writing(statement, Referral.__table__.c.id == referral_id)
    return db.session.scalar(statement)


def _transferred_away(referral_id: int) -> Refused | None:
    moved = queries.transferred_away_from(current_user, referral_id)
    return Refused(moved, url_for(".inbox")) if moved else None


def _held_by_colleague(referral: Referral, action: Action) -> str | None:
    if not policy.held_by_colleague(current_user, action, referral):
        return None
    return (
        f"Den Fall bearbeitet inzwischen {referral.assignee.name}; das können nur diese Fachkraft und die Teamleitung."
    )


def _page_of(referral: Referral) -> str:
    return url_for(".edit" if referral.state is State.DRAFT else ".show", referral_id=referral.id)


# The referral, if `current_user` may take the action on it now (see `workflow.pages.Loader`).
_for_action = Loader(
    REFERRALS,
    find=_find_for_action,
    may=lambda referral, action: policy.may_by_role(current_user, action, referral),
    page=_page_of,
    gone=_transferred_away,
    held=_held_by_colleague,
)
answer_refusals(blueprint)


@blueprint.errorhandler(StaleDataError)
def concurrent_write(error: Exception):
    """The last line of defence behind the row lock and the version check: the existing
    concurrent-change message instead of a 500. (Deadlocks and serialisation failures are
    database errors; the views that write pass them here, see `lost_a_race`.)"""
    return _lost_race((request.view_args or {}).get("referral_id"))


def _lost_race(referral_id: int | None):
    db.session.rollback()
    state = db.session.scalar(select(Referral.state).where(Referral.id == referral_id)) if referral_id else None
    message = concurrent_change_message(referral_id, current_user.id, draft=state in (None, State.DRAFT))
    if request.endpoint in ("cases.autosave", "cases.autosave_new"):
        return jsonify(saved=False, message=message), 409
    flash(message, "danger")
    if state is None:
        return redirect(url_for(".my_referrals" if holds(current_user, SCHOOL_SIDE) else ".inbox"))
    return redirect(url_for(".edit" if state is State.DRAFT else ".show", referral_id=referral_id))


def _already_submitted(referral: Referral):
    """A second click (or a parallel request) of a form whose referral is already submitted."""
    flash(f"Diese Mitteilung wurde bereits eingereicht: {referral.number}. Hier ist sie.", "info")
    return redirect(url_for(".show", referral_id=referral.id))


def _done(referral: Referral, action: Action, operation, *args, **kwargs):
    """Run one domain action in one transaction and tell the user how it went."""
    referral_id = referral.id

    def next_page() -> str:
        still_visible = db.session.scalar(
            select(Referral.id).where(Referral.id == referral_id, policy.referral_scope(current_user))
        )
        if still_visible is None:  # transferred away from the user's district
            return url_for(".inbox")
        return url_for(".show", referral_id=referral_id)

    return carry_out_action(
        REFERRALS, action, referral_id, lambda: operation(referral, current_user, *args, **kwargs), next_page
    )


# --- School ---------------------------------------------------------------------------------


@blueprint.get("/referrals")
@require_roles(*SCHOOL_SIDE)
def my_referrals():
    page = queries.school_list(current_user, request.args.get("cursor"))
    return render_template("cases/my_referrals.html", page=page)


def _school_for_new_referral() -> School:
    return own_school(current_user, request.values.get("school", type=query_int))


@blueprint.route("/referrals/new", methods=["GET", "POST"])
@require_roles(*SCHOOL_SIDE)
def new():
    form = ReferralForm()
    if request.method == "POST":
        earlier = queries.referral_by_token(current_user, queries.plausible_token(form.client_token.data), lock=True)
        if earlier is not None and earlier.state is State.DRAFT:
            # Saved automatically a moment ago (or a second click): this form continues that draft.
            return _edit_form(form, earlier)
        if earlier is not None:  # a second click on the same form: don't create a second referral
            return _already_submitted(earlier)
    referral = services.new_draft(current_user, _school_for_new_referral())
    return _edit_form(form, referral)


@blueprint.post("/referrals/new/autosave")
@require_roles(*SCHOOL_SIDE)
def autosave_new():
    """The first automatic save of a new referral creates the draft (once, thanks to the form token)."""
    form = ReferralForm()
    earlier = queries.referral_by_token(current_user, queries.plausible_token(form.client_token.data), lock=True)
    if earlier is not None and earlier.state is not State.DRAFT:
        return _autosave_too_late(earlier)
    return _autosave(form, earlier or services.new_draft(current_user, _school_for_new_referral()))


@blueprint.post("/referrals/<int:referral_id>/autosave")
def autosave(referral_id: int):
    """Autosave never makes a submit fail: it waits for the draft's row lock, and if the draft was
    submitted meanwhile (another tab, the same form's button), it answers so and saves nothing."""
    try:
        referral = _for_action(referral_id, Action.EDIT)
    except Refused as refusal:
        db.session.rollback()
        submitted = db.session.scalar(
            select(Referral).where(
                Referral.id == referral_id, Referral.state != State.DRAFT, policy.referral_scope(current_user)
            )
        )
        if submitted is not None:
            return _autosave_too_late(submitted)
        return jsonify(saved=False, message=str(refusal)), 409
    return _autosave(ReferralForm(), referral)


def _autosave_too_late(referral: Referral):
    return jsonify(
        saved=False,
        message=f"Diese Mitteilung wurde bereits eingereicht: {referral.number}. "
        "Automatisches Speichern ist beendet; nichts wurde geändert.",
    ), 409


def _autosave(form: ReferralForm, referral: Referral):
    """Save the draft as typed, without a page load; the answer is JSON for referral-form.js."""
    if not form.validate():
        db.session.rollback()
        count = len(form.error_items())
        return jsonify(
            saved=False,
            message=f"Automatisches Speichern pausiert: {count} Angabe{'n' if count != 1 else ''} "
            "bitte prüfen (erscheint beim Speichern an den Feldern).",
        ), 422
    form.store(referral)
    referral_id = referral.id
    if referral.id is None:
        referral.client_token = queries.plausible_token(form.client_token.data)
    try:
        services.save_draft(referral, current_user)
        db.session.flush()  # a lost race shows here, not in the request's commit
    except services.FormAlreadySent as sent:  # the same form's other request created the draft first
        db.session.rollback()
        earlier = queries.referral_by_token(current_user, sent.token, lock=True)
        if earlier is None:
            raise
        if earlier.state is not State.DRAFT:
            return _autosave_too_late(earlier)
        return _autosave(form, earlier)
    except ProcessError as error:
        db.session.rollback()
        return jsonify(saved=False, message=str(error)), 409
    except DBAPIError as error:
        if not lost_a_race(error):
            raise
        return _lost_race(referral_id)
    return jsonify(
        saved=True,
        at=to_local(utcnow()).strftime("%H:%M:%S"),
        edit_url=url_for(".edit", referral_id=referral.id),
        autosave_url=url_for(".autosave", referral_id=referral.id),
    )


@blueprint.route("/referrals/<int:referral_id>/edit", methods=["GET", "POST"])
def edit(referral_id: int):
    return _edit_form(ReferralForm(), _for_action(referral_id, Action.EDIT))


def _edit_form(form: ReferralForm, referral: Referral):
    if request.method == "GET":
        form.load(referral)
        form.client_token.data = secrets.token_urlsafe(24)
        return _render_form(form, referral)
    if form.add_person.data:
        if not form.may_add_person():
            form.persons.errors = [f"Höchstens {len(form.persons)} Personen; weitere bitte in der Beschreibung nennen."]
            return _render_form(form, referral, invalid=True)
        form.persons.append_entry()
        return _render_form(form, referral, focus=f"persons-{len(form.persons) - 1}-kind")
    if not form.validate():
        return _render_form(form, referral, invalid=True)
    form.store(referral)
    if referral.id is None:
        referral.client_token = queries.plausible_token(form.client_token.data)
    upload = form.attachment.data if form.upload.data else None
    referral_id = referral.id
    try:
        if form.submit.data:
            services.submit(referral, current_user)
        else:
            services.save_draft(referral, current_user)
            if upload:
                services.add_attachment(referral, current_user, upload.filename or "", upload.read())
        db.session.flush()  # a lost race shows here, not in the request's commit
    except services.FormAlreadySent as sent:  # a parallel request of this form created the referral first
        db.session.rollback()
        earlier = queries.referral_by_token(current_user, sent.token, lock=True)
        if earlier is None:
            raise
        if earlier.state is State.DRAFT:  # e.g. its autosave: this request goes on with that draft
            return _edit_form(form, earlier)
        return _already_submitted(earlier)
    except services.IncompleteReferral as error:
        db.session.rollback()
        form.show_problems(error.problems)
        return _render_form(form, referral, invalid=True)
    except ProcessError as error:
        db.session.rollback()
        field = form.attachment if upload else None
        if field is not None:
            field.errors = [str(error)]
        else:
            flash(str(error), "danger")
        return _render_form(form, referral, invalid=True)
    except Exception as error:
        db.session.rollback()
        if lost_a_race(error):
            return _lost_race(referral_id)
        if upload and _storing_failed(error):
            # Nothing of this request stays (rolled back); what was typed is shown again.
            form.attachment.errors = [storage.failure_message(error) + storage.TYPED_KEPT]
            return _render_form(form, referral, invalid=True)
        raise
    if form.submit.data:
        flash(f"Die Mitteilung {referral.number} wurde an den ASD übermittelt.", "success")
        return redirect(url_for(".show", referral_id=referral.id))
    if upload:
        flash("Der Entwurf wurde gespeichert und der Anhang hinzugefügt.", "success")
        return redirect(url_for(".edit", referral_id=referral.id) + "#anhaenge")
    if request.form.get("session_ending") == "1":
        return sessions.end_with_saved_draft(url_for(".edit", referral_id=referral.id))
    flash("Der Entwurf wurde gespeichert. Sie können ihn später fortsetzen.", "success")
    return redirect(url_for(".edit", referral_id=referral.id))


def _render_form(form: ReferralForm, referral: Referral, invalid: bool = False, focus: str | None = None):
    if request.method == "POST":
        # Nothing typed reaches the database; show the draft as stored, and hold no lock while rendering.
        db.session.rollback()
    elif referral.id is not None:
        record("referral.view", referral)
    page = render_template(
        "cases/form.html",
        form=form,
        referral=referral,
        school=referral.school,
        invalid=invalid,
        focus=focus,
        action_form=ActionForm(),
    )
    return page, (422 if invalid else 200)


@blueprint.route("/referrals/<int:referral_id>/delete", methods=["GET", "POST"])
def delete(referral_id: int):
    """GET asks for confirmation; only the confirmed POST deletes (one click must not lose a draft)."""
    referral = _for_action(referral_id, Action.DELETE)
    form = ConfirmDeletionForm()
    if request.method == "GET":
        return render_template("cases/confirm_delete.html", referral=referral, form=form, attachment=None)
    if not form.validate():
        abort(400)
    if not form.is_confirmed():
        flash(
            "Der Entwurf wurde nicht gelöscht: Bitte bestätigen Sie das Löschen mit „Ja, endgültig löschen“.", "danger"
        )
        return redirect(url_for(".delete", referral_id=referral_id))
    try:
        services.delete_draft(referral, current_user)
        db.session.flush()
    except ProcessError as error:
        raise Refused(str(error), url_for(".my_referrals")) from error
    flash(RULES[Action.DELETE].done, "success")
    return redirect(url_for(".my_referrals"))


@blueprint.post("/referrals/<int:referral_id>/attachments")
def upload(referral_id: int):
    """Attachments sent later, with a submitted referral (drafts upload with the form)."""
    referral = _for_action(referral_id, Action.ADDENDUM)
    form = AttachmentForm()
    if not form.validate():
        return show(referral_id, forms={"attachment": form})
    try:
        services.add_attachment(referral, current_user, form.file.data.filename or "", form.file.data.read())
        db.session.flush()
    except ProcessError as error:
        db.session.rollback()
        form.file.errors = [str(error)]
        return show(referral_id, forms={"attachment": form})
    except Exception as error:
        db.session.rollback()
        if lost_a_race(error) or not _storing_failed(error):
            raise
        form.file.errors = [storage.failure_message(error)]
        return show(referral_id, forms={"attachment": form})
    flash("Der Anhang wurde hinzugefügt.", "success")
    return redirect(url_for(".show", referral_id=referral_id) + "#anhaenge")


@blueprint.get("/referrals/<int:referral_id>/attachments/<int:attachment_id>")
def download(referral_id: int, attachment_id: int):
    referral = policy.referral_or_404(referral_id)
    attachment = db.session.scalar(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.referral_id == referral.id)
    )
    if attachment is None:
        abort(404)
    try:
        content = storage.open_content(attachment)
    except storage.ContentMissing as missing:
        current_app.logger.error("Attachment %s not served: %s", attachment.id, missing)
        flash(
            f"Der Anhang „{attachment.filename}“ kann gerade nicht geöffnet werden: Sein Inhalt ist nicht "
            "lesbar gespeichert. Bitte wenden Sie sich an die Administration.",
            "danger",
        )
        return redirect(url_for(".show", referral_id=referral.id))
    record("attachment.download", referral, fields=[f"attachment {attachment.id}"])
    # Streamed chunk by chunk; the request context (and its database session) lives until the last one.
    response = Response(stream_with_context(iter(content)), mimetype=attachment.content_type)
    response.content_length = attachment.size
    response.headers.set("Content-Disposition", "attachment", **_download_name(attachment.filename))
    return response


def _download_name(name: str) -> dict[str, str]:
    """The file name for Content-Disposition as send_file gives it (RFC 6266 with an ASCII fallback)."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        return {"filename": simple, "filename*": "UTF-8''" + quote(name, safe="!#$&+-.^_`|~")}
    return {"filename": name}


def _storing_failed(error: Exception) -> bool:
    """A database error while writing (a full disk, a rejected value) or a file that could not be read;
    an unreachable database is an outage with its own page (outages.py)."""
    return isinstance(error, (SQLAlchemyError, OSError)) and unreachable(error) in (None, DISK_FULL)


@blueprint.get("/referrals/<int:referral_id>/pdf")
def pdf(referral_id: int):
    """The referral for the reader's own files: the ASD's case software, the school's records."""
    from .pdf import NotMade, render

    referral = policy.referral_or_404(referral_id)
    if referral.state is State.DRAFT:
        abort(404)
    asd_side = policy.is_asd_side(current_user, referral)
    try:
        data = render(
            referral,
            asd_side=asd_side,
            may_read_feedback=policy.may_read_feedback(current_user, referral),
            history=history_for(referral, asd_side=asd_side),
        )
    except NotMade as not_made:
        current_app.logger.error("PDF of referral %s not made: %s", referral.id, not_made.for_the_log)
        flash(not_made.for_the_user, "danger")
        return redirect(url_for(".show", referral_id=referral.id))
    record("referral.export_pdf", referral)
    return send_file(
        BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=f"Mitteilung-{referral.number}.pdf"
    )


@blueprint.route("/referrals/<int:referral_id>/attachments/<int:attachment_id>/delete", methods=["GET", "POST"])
def delete_attachment(referral_id: int, attachment_id: int):
    """GET asks for confirmation; only the confirmed POST removes the attachment."""
    referral = _for_action(referral_id, Action.EDIT)
    attachment = db.session.scalar(
        select(Attachment).where(Attachment.id == attachment_id, Attachment.referral_id == referral.id)
    )
    if attachment is None:
        abort(404)
    form = ConfirmDeletionForm()
    if request.method == "GET":
        return render_template("cases/confirm_delete.html", referral=referral, form=form, attachment=attachment)
    if not form.validate():
        abort(404)
    if not form.is_confirmed():
        flash(
            f"Der Anhang „{attachment.filename}“ wurde nicht entfernt: Bitte bestätigen Sie das Entfernen "
            "mit „Ja, endgültig entfernen“.",
            "danger",
        )
        return redirect(url_for(".delete_attachment", referral_id=referral_id, attachment_id=attachment_id))
    referral.attachments.remove(attachment)
    services.save_draft(referral, current_user)
    db.session.flush()
    flash("Der Anhang wurde entfernt.", "success")
    return redirect(url_for(".edit", referral_id=referral_id) + "#anhaenge")


@blueprint.post("/referrals/<int:referral_id>/answer")
def answer(referral_id: int):
    return _message_action(referral_id, Action.ANSWER, services.answer)


@blueprint.post("/referrals/<int:referral_id>/addendum")
def addendum(referral_id: int):
    return _message_action(referral_id, Action.ADDENDUM, services.add_addendum)


def _message_action(referral_id: int, action: Action, operation):
    referral = _for_action(referral_id, action)
    form = MESSAGE_FORMS[action.value](prefix=action.value)
    if not form.validate():
        return show(referral_id, forms={action.value: form})
    return _done(referral, action, operation, form.body.data)


# --- Everyone who may read the referral ----------------------------------------------------


@blueprint.get("/referrals/<int:referral_id>")
def show(referral_id: int, forms: dict | None = None):
    if forms:  # a form came back: whatever its request began is undone, its errors are shown
        db.session.rollback()
    referral = policy.referral_or_404(referral_id)
    if referral.state is State.DRAFT:
        return redirect(url_for(".edit", referral_id=referral_id))
    forms = forms or {}
    asd_side = policy.is_asd_side(current_user, referral)
    context = {
        "referral": referral,
        "action_form": ActionForm(),
        "Action": Action,
        "school_side": policy.is_school_side(current_user, referral),
        "asd_side": asd_side,
        "may_read_feedback": policy.may_read_feedback(current_user, referral),
        "may_see_access_history": policy.may_see_access_history(current_user, referral),
        "may": lambda action: policy.may(current_user, action, referral),
        "failed": next(iter(forms.values()), None),
    }
    for action in (Action.ANSWER, Action.ADDENDUM, Action.ASK):
        context[f"{action.value}_form"] = forms.get(action.value) or MESSAGE_FORMS[action.value](
            formdata=None, prefix=action.value
        )
    context["attachment_form"] = forms.get("attachment") or AttachmentForm(formdata=None)
    if asd_side:
        context["transfer_form"] = forms.get("transfer") or TransferForm(formdata=None)
        context["transfer_form"].to_district.offer(_other_districts(referral))
        context["assign_form"] = forms.get("assign") or AssignForm(formdata=None)
        context["assign_form"].assignee.offer((u.id, u.name) for u in services.district_staff(referral.district_id))
        context["same_child"] = queries.earlier_about_the_same_child(referral)
    context["history"] = history_for(referral, asd_side=asd_side)
    context["new_since"] = queries.mark_seen(current_user, referral)
    record("referral.view", referral)  # no lock taken: the entry joins the chain at the request's commit
    if forms:
        lifecycle.keep()  # the view happened, although the form came back with errors
    return render_template("cases/show.html", **context), (422 if forms else 200)


def _other_districts(referral: Referral):
    districts = db.session.scalars(select(District).where(District.id != referral.district_id).order_by(District.name))
    return [(d.id, d.name) for d in districts]


# --- ASD ------------------------------------------------------------------------------------


@blueprint.get("/inbox")
@require_roles(*ASD_SIDE)
def inbox():
    filters = InboxFilterForm(request.args)
    filters.state.choices = options(
        [("open", "alle offenen"), ("all", "alle")] + [(s.value, s.label) for s in State if s is not State.DRAFT]
    )
    assignee_id = request.args.get("assignee", type=query_int)
    # A lead of several districts comes from one district's overview: only that district's referrals.
    wanted = request.args.get("district", type=query_int)
    district = db.session.get(District, wanted) if wanted in current_user.district_ids(*ASD_SIDE) else None
    staff = (
        {u.id: u for d in current_user.district_ids(*ASD_SIDE) for u in services.district_staff(d)}
        if assignee_id
        else {}
    )
    assignee_id = assignee_id if assignee_id in staff else None  # only colleagues of one's own district
    page = queries.inbox(
        current_user,
        state=filters.state.data or "open",
        overdue_only=bool(filters.overdue.data),
        cursor=request.args.get("cursor"),
        assignee_id=assignee_id,
        district_id=district.id if district else None,
    )
    assignee = staff.get(assignee_id)
    return render_template("cases/inbox.html", page=page, filters=filters, assignee=assignee, district=district)


@blueprint.post("/referrals/<int:referral_id>/acknowledge")
def acknowledge(referral_id: int):
    return _button(referral_id, Action.ACKNOWLEDGE, services.acknowledge)


@blueprint.post("/referrals/<int:referral_id>/take-over")
def take_over(referral_id: int):
    return _button(referral_id, Action.TAKE_OVER, services.take_over)


@blueprint.post("/referrals/<int:referral_id>/close")
def close(referral_id: int):
    return _button(referral_id, Action.CLOSE, services.close)


def _button(referral_id: int, action: Action, operation):
    referral = _for_action(referral_id, action)
    if not ActionForm().validate():
        abort(400)
    return _done(referral, action, operation)


@blueprint.post("/referrals/<int:referral_id>/assign")
def assign(referral_id: int):
    state = db.session.scalar(select(Referral.state).where(Referral.id == referral_id))
    referral = _for_action(referral_id, Action.ASSIGN if state is State.ACKNOWLEDGED else Action.REASSIGN)
    staff = services.district_staff(referral.district_id)
    form = AssignForm()
    form.assignee.offer((u.id, u.name) for u in staff)
    if not form.validate():
        return show(referral_id, forms={"assign": form})
    assignee = next(u for u in staff if u.id == form.assignee.data)
    action = Action.ASSIGN if referral.state is State.ACKNOWLEDGED else Action.REASSIGN
    return _done(referral, action, services.assign, assignee, staff)


@blueprint.post("/referrals/<int:referral_id>/ask")
def ask(referral_id: int):
    return _message_action(referral_id, Action.ASK, services.ask)


@blueprint.post("/referrals/<int:referral_id>/transfer")
def transfer(referral_id: int):
    referral = _for_action(referral_id, Action.TRANSFER)
    form = TransferForm()
    form.to_district.offer(_other_districts(referral))
    if not form.validate():
        return show(referral_id, forms={"transfer": form})
    return _done(
        referral, Action.TRANSFER, services.transfer, db.session.get(District, form.to_district.data), form.reason.data
    )


@blueprint.route("/referrals/<int:referral_id>/assessment", methods=["GET", "POST"])
def assessment(referral_id: int):
    referral = _for_action(referral_id, Action.RECORD_ASSESSMENT)
    staff = services.district_staff(referral.district_id)
    form = AssessmentForm()
    form.specialists.choices = options((u.id, u.name) for u in staff)
    if request.method == "GET" and referral.assessment:
        current = referral.assessment
        form.result.data = current.result.value
        form.specialists.data = [u.id for u in current.specialists]
        form.other_specialists.data = current.other_specialists
        form.school_involved.data = "yes" if current.school_involved else "no"
        form.measures.data = [m.value for m in current.measure_codes]
    if form.validate_on_submit():
        try:
            services.record_assessment(
                referral,
                current_user,
                result=AssessmentResult(form.result.data),
                specialists=[u for u in staff if u.id in form.specialists.data],
                other_specialists="\n".join(form.other_specialist_names()),
                school_involved=yes_no(form.school_involved.data),
                measures=[Measure(m) for m in form.measures.data],
            )
            db.session.flush()
        except ConcurrentChange as error:
            raise Refused(str(error), url_for(".show", referral_id=referral_id)) from error
        except ProcessError as error:  # what the form cannot know: the rules of the process
            db.session.rollback()
            form.specialists.errors = [str(error)]
        else:
            flash(RULES[Action.RECORD_ASSESSMENT].done, "success")
            return redirect(url_for(".show", referral_id=referral_id))
    _viewed(referral, form)
    return render_template("cases/assessment.html", referral=referral, form=form), (422 if form.errors else 200)


@blueprint.route("/referrals/<int:referral_id>/feedback", methods=["GET", "POST"])
def feedback(referral_id: int):
    referral = _for_action(referral_id, Action.GIVE_FEEDBACK)
    form = FeedbackForm()
    if request.method == "GET":
        form.contact_name.data = (referral.assignee or current_user).name
        form.contact_phone.data = (referral.assignee or current_user).phone
    if form.validate_on_submit():
        return _done(referral, Action.GIVE_FEEDBACK, services.give_feedback, **form.values())
    _viewed(referral, form)
    return render_template("cases/feedback.html", referral=referral, form=form), (422 if form.errors else 200)


def _viewed(referral: Referral, form) -> None:
    """A page showing the referral's content: the view is recorded, also when a form comes back."""
    if form.errors:
        db.session.rollback()  # a refused form leaves nothing behind
        lifecycle.keep()
    record("referral.view", referral, fields=[request.endpoint or ""])
