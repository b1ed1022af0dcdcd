"""The admin's pages: accounts, districts, schools and deadlines. No case content is ever shown here.

Every change is written with an audit entry (audit/log.py) in the same transaction.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..integers import query_int
from ..accounts import services as accounts
from ..accounts.models import Membership, Role, User
from ..audit.log import ACTION_LABELS, ADMIN_ACTIONS, changed_fields, record
from ..audit.models import AuditEntry
from ..cases.forms import ActionForm
from ..cases.models import Setting
from ..cases.process import DEADLINE_DEFAULTS
from ..cases.services import deadline_settings
from ..exports import csv_response
from ..extensions import db
from ..organisation.models import District, School
from ..pagination import contains, paginate
from .forms import (
    DEADLINE_LABELS,
    DeadlinesForm,
    DistrictForm,
    InviteForm,
    MembershipForm,
    SchoolForm,
    UserForm,
    UserSearchForm,
    scope_choices,
)

blueprint = Blueprint("administration", __name__, url_prefix="/admin")


@blueprint.before_request
def admins_only():
    if not current_user.is_authenticated or not current_user.has_role_in({Role.ADMIN}):
        abort(403)


def form_page(template: str, **context):
    """A form page; after a refused POST with status 422, so that clients and tests see the refusal."""
    return render_template(template, **context), 422 if request.method == "POST" else 200


def audit(action: str, obj=None, **kwargs) -> None:
    record(action, obj, role=Role.ADMIN.value, scope="Stadt", **kwargs)


@blueprint.get("/")
def overview():
    districts = db.session.scalars(select(District).options(selectinload(District.schools)).order_by(District.name)).all()
    users_per_role = db.session.execute(
        select(Membership.role, func.count(func.distinct(Membership.user_id))).join(User).where(User.active.is_(True))
        .group_by(Membership.role)
    ).all()
    return render_template("administration/overview.html", districts=districts, users_per_role=dict(users_per_role))


# --- Accounts -------------------------------------------------------------------------------------

def _user_query(form: UserSearchForm):
    statement = select(User).order_by(func.lower(User.name), User.id)
    if form.q.data and not form.q.errors:
        pattern = contains(form.q.data)
        statement = statement.where(or_(func.lower(User.name).like(pattern, escape="\\"),
                                        func.lower(User.email).like(pattern, escape="\\")))
    status = form.status.data
    if status == "active":
        statement = statement.where(User.active.is_(True), User.password.is_not(None))
    elif status == "invited":
        statement = statement.where(User.active.is_(True), User.password.is_(None))
    elif status == "inactive":
        statement = statement.where(User.active.is_(False))
    return statement


@blueprint.get("/users")
def users():
    form = UserSearchForm(request.args)
    form.validate()
    page = paginate(_user_query(form), request.args.get("page", 1, type=query_int))
    return render_template("administration/users.html", page=page, form=form)


@blueprint.get("/users.csv")
def users_csv():
    """The account list for a periodic access review (who may see what), as German Excel opens it."""
    users = db.session.scalars(select(User).order_by(func.lower(User.name), User.id)).all()
    # Read before the commit: the file is written after the view has returned.
    rows = [[u.name, u.email, u.status_label, ", ".join(f"{m.role.label} ({m.scope_label})" for m in u.memberships),
             bool(u.tf_primary_method), u.created_at.date().isoformat()] for u in users]
    audit("export.users", object_type="user_account", object_id="*")
    db.session.commit()
    return csv_response("konten.csv", ["Name", "E-Mail", "Status", "Rollen", "Zwei-Faktor eingerichtet", "Angelegt am"], rows)


def _scoped(form):
    schools = db.session.scalars(select(School).order_by(School.name)).all()
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    form.scope.choices = scope_choices(schools, districts)
    return form


@blueprint.route("/users/invite", methods=["GET", "POST"])
def invite():
    form = _scoped(InviteForm())
    if form.validate_on_submit():
        try:
            user = accounts.invite(form.email.data, form.name.data, form.phone.data or "")
            school_id, district_id = form.scope_ids()
            membership = Membership(role=Role(form.role.data), school_id=school_id, district_id=district_id)
            user.memberships.append(membership)
            audit("user.invite", user, fields=["email", "name", "phone"])
            db.session.flush()
            audit("membership.add", user, fields=[_membership_label(membership)])
            # The mail waits in the outbox of this transaction: never a link for an account not stored.
            _send_invitation(user)
            db.session.commit()
        except accounts.AccountError as error:
            db.session.rollback()
            form.email.errors.append(str(error))
        else:
            return redirect(url_for(".user", user_id=user.id))
    return form_page("administration/invite.html", form=form)


def _send_invitation(user: User) -> None:
    accounts.send_invitation(user)
    flash(f"Die Einladung an {user.email} ist versandt. Der Link gilt 72 Stunden.", "success")


def _membership_label(membership: Membership) -> str:
    return f"{membership.role.label} – {membership.scope_label}"[:120]


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@blueprint.route("/users/<int:user_id>", methods=["GET", "POST"])
def user(user_id: int):
    account = _user_or_404(user_id)
    form = UserForm(obj=account)
    if form.validate_on_submit():
        account.name, account.phone = form.name.data.strip(), (form.phone.data or "").strip()
        fields = changed_fields(account)
        if fields:
            audit("user.update", account, fields=fields)
            db.session.commit()
            flash("Die Angaben sind gespeichert.", "success")
        return redirect(url_for(".user", user_id=account.id))
    return form_page("administration/user.html", account=account, form=form, membership_form=_scoped(MembershipForm()),
                     changes=_changes_of(account), action_labels=ACTION_LABELS)


def _changes_of(account: User) -> list[AuditEntry]:
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.object_type == "user_account", AuditEntry.object_id == str(account.id),
                                 AuditEntry.action.in_(ADMIN_ACTIONS | {"login.success", "login.failure", "logout"}))
        .order_by(AuditEntry.seq.desc()).limit(20)).all()


@blueprint.post("/users/<int:user_id>/memberships")
def add_membership(user_id: int):
    account = _user_or_404(user_id)
    form = _scoped(MembershipForm())
    if form.validate_on_submit():
        school_id, district_id = form.scope_ids()
        role = Role(form.role.data)
        exists = any(m.role == role and m.school_id == school_id and m.district_id == district_id for m in account.memberships)
        if exists:
            flash("Diese Rolle hat das Konto bereits.", "info")
            return redirect(url_for(".user", user_id=account.id))
        membership = Membership(role=role, school_id=school_id, district_id=district_id)
        account.memberships.append(membership)
        db.session.flush()
        audit("membership.add", account, fields=[_membership_label(membership)])
        try:
            db.session.commit()
        except IntegrityError:  # the same role was added at the same moment by another request
            db.session.rollback()
            flash("Diese Rolle hat das Konto bereits.", "info")
        else:
            flash(f"Rolle „{role.label}“ hinzugefügt.", "success")
        return redirect(url_for(".user", user_id=account.id))
    return form_page("administration/user.html", account=account, form=UserForm(obj=account), membership_form=form,
                     changes=_changes_of(account), action_labels=ACTION_LABELS)


@blueprint.post("/users/<int:user_id>/memberships/<int:membership_id>/delete")
def remove_membership(user_id: int, membership_id: int):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    membership = next((m for m in account.memberships if m.id == membership_id), None) or abort(404)
    if account.id == current_user.id and membership.role is Role.ADMIN:
        flash("Die eigene Administrationsrolle kann nicht entfernt werden (sonst verwaltet niemand mehr die Konten).", "danger")
        return redirect(url_for(".user", user_id=account.id))
    label = _membership_label(membership)
    account.memberships.remove(membership)
    audit("membership.remove", account, fields=[label])
    db.session.commit()
    flash(f"Rolle „{membership.role.label}“ ({membership.scope_label}) entfernt.", "success")
    return redirect(url_for(".user", user_id=account.id))


def _account_action(user_id: int, action: str, change, message: str, refuse_self: str | None = None):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    if refuse_self and account.id == current_user.id:
        flash(refuse_self, "danger")
        return redirect(url_for(".user", user_id=account.id))
    change(account)
    audit(action, account, fields=changed_fields(account))
    db.session.commit()
    flash(message.format(name=account.name), "success")
    return redirect(url_for(".user", user_id=account.id))


@blueprint.post("/users/<int:user_id>/deactivate")
def deactivate(user_id: int):
    return _account_action(user_id, "user.deactivate", accounts.deactivate,
                           "{name} ist deaktiviert und sofort abgemeldet. Die Mitteilungen bleiben bei der Schule.",
                           refuse_self="Das eigene Konto kann nicht deaktiviert werden.")


@blueprint.post("/users/<int:user_id>/reactivate")
def reactivate(user_id: int):
    return _account_action(user_id, "user.reactivate", accounts.reactivate, "{name} ist wieder aktiv.")


@blueprint.post("/users/<int:user_id>/reset-2fa")
def reset_two_factor(user_id: int):
    return _account_action(user_id, "user.reset_two_factor", accounts.reset_two_factor,
                           "Die Zwei-Faktor-Anmeldung von {name} ist zurückgesetzt; bei der nächsten Anmeldung wird sie neu eingerichtet.")


@blueprint.post("/users/<int:user_id>/end-sessions")
def end_sessions(user_id: int):
    return _account_action(user_id, "user.end_sessions", accounts.end_sessions,
                           "Alle Sitzungen von {name} sind beendet.", refuse_self="Die eigenen Sitzungen beenden Sie mit „Abmelden“.")


@blueprint.post("/users/<int:user_id>/invite-again")
def invite_again(user_id: int):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    if account.password is not None or not account.active:
        flash("Dieses Konto hat schon ein Passwort oder ist deaktiviert; eine Einladung ist nicht nötig.", "info")
        return redirect(url_for(".user", user_id=account.id))
    accounts.end_sessions(account)  # earlier links die: the token names the uniquifier
    audit("user.invite_again", account, fields=[])
    _send_invitation(account)
    db.session.commit()
    return redirect(url_for(".user", user_id=account.id))


# --- Districts and schools ------------------------------------------------------------------------

@blueprint.get("/districts")
def districts():
    rows = db.session.execute(
        select(District, func.count(School.id)).outerjoin(School).group_by(District.id).order_by(District.name)).all()
    return render_template("administration/districts.html", rows=rows)


UNIQUE_WORDS = {"name": "Namen", "code": "Kürzel"}


def _taken(model, obj, form, names: tuple[str, ...], article: str) -> bool:
    """Names and codes are unique: say so at the field, before the database has to refuse."""
    taken = False
    for name in names:
        value = getattr(form, name).data
        clash = db.session.scalar(select(model.id).where(getattr(model, name) == value, model.id != (obj.id or 0)))
        if clash is not None:
            getattr(form, name).errors.append(f"{article} mit diesem {UNIQUE_WORDS[name]} gibt es bereits.")
            taken = True
    return taken


def _save(form, obj, kind: str, label: str):
    """Store the form in `obj`; a name or code that exists already goes back to the form."""
    is_new = obj.id is None
    form.populate_obj(obj)
    if is_new:
        db.session.add(obj)
    fields = changed_fields(obj)
    try:
        db.session.flush()
    except IntegrityError:  # the same name, typed at the same moment by someone else
        db.session.rollback()
        form.name.errors.append(f"{label} mit diesem Namen gibt es bereits.")
        return False
    if fields:
        audit(f"{kind}.{'create' if is_new else 'update'}", obj, fields=fields)
    db.session.commit()
    flash(f"„{obj.name}“ ist gespeichert.", "success")
    return True


@blueprint.route("/districts/new", methods=["GET", "POST"], defaults={"district_id": None})
@blueprint.route("/districts/<int:district_id>", methods=["GET", "POST"])
def district(district_id: int | None):
    obj = District() if district_id is None else (db.session.get(District, district_id) or abort(404))
    form = DistrictForm(obj=obj)
    if form.validate_on_submit():
        for name in ("duty_hours", "inbox_email"):
            getattr(form, name).data = getattr(form, name).data or ""
        if not _taken(District, obj, form, ("name", "code"), "Einen Bezirk") and _save(form, obj, "district", "Einen Bezirk"):
            return redirect(url_for(".districts"))
    return form_page("administration/district.html", form=form, district=obj)


@blueprint.get("/schools")
def schools():
    rows = db.session.scalars(select(School).options(selectinload(School.district)).order_by(School.name)).all()
    return render_template("administration/schools.html", schools=rows)


@blueprint.route("/schools/new", methods=["GET", "POST"], defaults={"school_id": None})
@blueprint.route("/schools/<int:school_id>", methods=["GET", "POST"])
def school(school_id: int | None):
    obj = School() if school_id is None else (db.session.get(School, school_id) or abort(404))
    form = SchoolForm(obj=obj)
    form.district_id.choices = [("", "– bitte wählen –")] + [
        (d.id, d.name) for d in db.session.scalars(select(District).order_by(District.name))]
    if form.validate_on_submit():
        for name in ("phone", "email", "address"):
            getattr(form, name).data = getattr(form, name).data or ""
        if not _taken(School, obj, form, ("name",), "Eine Schule") and _save(form, obj, "school", "Eine Schule"):
            return redirect(url_for(".schools"))
    return form_page("administration/school.html", form=form, school=obj)


# --- Deadlines ------------------------------------------------------------------------------------

@blueprint.route("/deadlines", methods=["GET", "POST"])
def deadlines():
    current = deadline_settings()
    form = DeadlinesForm(data=current)
    if form.validate_on_submit():
        changed = [key for key in DEADLINE_DEFAULTS if getattr(form, key).data != current[key]]
        for key in changed:
            setting = db.session.get(Setting, key) or Setting(key=key)
            setting.value = getattr(form, key).data
            db.session.add(setting)
        if changed:
            audit("settings.update", object_type="setting", object_id="deadlines", fields=changed)
            db.session.commit()
            flash("Die Fristen sind gespeichert. Sie gelten für Mitteilungen, die ab jetzt eingehen.", "success")
        return redirect(url_for(".deadlines"))
    return form_page("administration/deadlines.html", form=form, labels=DEADLINE_LABELS, defaults=DEADLINE_DEFAULTS)


# --- Record of changes ----------------------------------------------------------------------------

@blueprint.get("/changes")
def changes():
    statement = (select(AuditEntry).where(AuditEntry.action.in_(ADMIN_ACTIONS))
                 .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))
    page = paginate(statement, request.args.get("page", 1, type=query_int))
    return render_template("administration/changes.html", page=page, action_labels=ACTION_LABELS)
