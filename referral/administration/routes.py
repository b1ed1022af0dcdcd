"""The admin's pages: accounts, districts, schools and deadlines. No case content is ever shown here.

Every change goes through an operation (accounts/operations.py, organisation/operations.py) that
writes its audit entry in the same transaction; the view commits when the operation succeeded.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..accounts import operations as accounts
from ..accounts.models import Membership, Role, User
from ..audit.log import ACTION_LABELS, ADMIN_ACTIONS, record
from ..audit.models import AuditEntry
from ..exports import csv_response
from ..extensions import db
from ..integers import query_int
from ..jobs import schedule
from ..kernel.forms import ActionForm
from ..kernel.settings import DEADLINE_DEFAULTS, deadline_settings
from ..kernel.wording import configured
from ..organisation import operations as organisation
from ..organisation.models import District, School
from ..pagination import contains, paginate
from ..policy.roles import ADMINISTRATION, require_roles
from ..signon import identities as sign_on
from ..timeutil import utcnow
from .forms import (
    DEADLINE_LABELS,
    DeadlinesForm,
    DistrictForm,
    InviteForm,
    MembershipForm,
    SchoolForm,
    SignOnLinkForm,
    UserForm,
    UserSearchForm,
    scope_choices,
)

blueprint = Blueprint("administration", __name__, url_prefix="/admin")


@blueprint.before_request
@require_roles(*ADMINISTRATION)
def admins_only() -> None:
    """Every page of the blueprint is the admin's."""


def form_page(template: str, **context):
    """A form page; after a refused POST with status 422, so that clients and tests see the refusal."""
    return render_template(template, **context), 422 if request.method == "POST" else 200


def audit(action: str, obj=None, **kwargs) -> None:
    """Reading with an entry (the account list export); every change is recorded by its operation."""
    record(action, obj, role=Role.ADMIN.value, scope="Stadt", **kwargs)


@blueprint.get("/")
def overview():
    districts = db.session.scalars(
        select(District).options(selectinload(District.schools)).order_by(District.name)
    ).all()
    users_per_role = db.session.execute(
        select(Membership.role, func.count(func.distinct(Membership.user_id)))
        .join(User)
        .where(User.active.is_(True))
        .group_by(Membership.role)
    ).all()
    job_problems = sum(1 for entry in schedule.status(runs_per_job=3) if entry.problem)
    return render_template(
        "administration/overview.html",
        districts=districts,
        users_per_role=dict(users_per_role),
        job_problems=job_problems,
    )


# --- Accounts -------------------------------------------------------------------------------------


def _user_query(form: UserSearchForm):
    statement = select(User).order_by(func.lower(User.name), User.id)
    if form.q.data and not form.q.errors:
        pattern = contains(form.q.data)
        statement = statement.where(
            or_(func.lower(User.name).like(pattern, escape="\\"), func.lower(User.email).like(pattern, escape="\\"))
        )
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
    rows = [
        [
            u.name,
            u.email,
            u.status_label,
            ", ".join(f"{m.role.label} ({m.scope_label})" for m in u.memberships),
            bool(u.tf_primary_method),
            u.created_at.date().isoformat(),
        ]
        for u in users
    ]
    audit("export.users", object_type="user_account", object_id="*")
    return csv_response(
        "konten.csv", ["Name", "E-Mail", "Status", "Rollen", "Zwei-Faktor eingerichtet", "Angelegt am"], rows
    )


def _scoped(form):
    schools = db.session.scalars(select(School).order_by(School.name)).all()
    districts = db.session.scalars(select(District).order_by(District.name)).all()
    form.scope.choices = scope_choices(schools, districts)
    return form


def _actor() -> accounts.Actor:
    return accounts.Actor.admin(current_user._get_current_object())


def _scope_objects(form) -> tuple[School | None, District | None]:
    school_id, district_id = form.scope_ids()
    return (
        db.session.get(School, school_id) if school_id else None,
        db.session.get(District, district_id) if district_id else None,
    )


@blueprint.route("/users/invite", methods=["GET", "POST"])
def invite():
    form = _scoped(InviteForm())
    if form.validate_on_submit():
        try:
            user = accounts.invite(
                _actor(),
                form.email.data,
                form.name.data,
                form.phone.data or "",
                Role(form.role.data),
                *_scope_objects(form),
            )
            db.session.flush()  # a conflict shows here, not in the request's commit
        except accounts.AccountError as error:
            db.session.rollback()
            form.email.errors.append(str(error))
        else:
            _invitation_sent(user)
            return redirect(url_for(".user", user_id=user.id))
    return form_page("administration/invite.html", form=form)


def _invitation_sent(user: User) -> None:
    valid = configured(current_app.config)["invitation_valid"]
    flash(f"Die Einladung an {user.email} ist versandt. Der Link gilt {valid}.", "success")


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@blueprint.route("/users/<int:user_id>", methods=["GET", "POST"])
def user(user_id: int):
    account = _user_or_404(user_id)
    form = UserForm(obj=account)
    if form.validate_on_submit():
        if accounts.update(_actor(), account, form.name.data, form.phone.data or ""):
            flash("Die Angaben sind gespeichert.", "success")
        return redirect(url_for(".user", user_id=account.id))
    return _user_page(account, form=form)


def _user_page(account: User, form=None, membership_form=None, sign_on_form=None):
    providers = current_app.config["OIDC_PROVIDERS"]
    return form_page(
        "administration/user.html",
        account=account,
        form=form or UserForm(obj=account),
        membership_form=membership_form or _scoped(MembershipForm()),
        sign_on_form=sign_on_form or SignOnLinkForm(providers.values()),
        identities=sign_on.of_user(account),
        provider_labels={p.issuer: p.label for p in providers.values()},
        changes=_changes_of(account),
        action_labels=ACTION_LABELS,
        removable=lambda membership: accounts.may_remove_membership(current_user, account, membership),
    )


@blueprint.post("/users/<int:user_id>/sign-on")
def link_sign_on(user_id: int):
    account = _user_or_404(user_id)
    providers = current_app.config["OIDC_PROVIDERS"]
    form = SignOnLinkForm(providers.values())
    if form.validate_on_submit():
        try:
            sign_on.link_by_admin(_actor(), providers[form.provider.data], account, form.subject.data)
        except sign_on.Refused as refusal:
            form.subject.errors.append(str(refusal))
        except IntegrityError:  # the same identity was linked at the same moment by another request
            db.session.rollback()
            form.subject.errors.append("Diese Kennung ist inzwischen schon mit einem Konto verbunden.")
        else:
            flash(f"{account.name} ist mit dem Anmeldedienst verbunden.", "success")
            return redirect(url_for(".user", user_id=account.id))
    return _user_page(account, sign_on_form=form)


@blueprint.post("/users/<int:user_id>/sign-on/<int:identity_id>/delete")
def unlink_sign_on(user_id: int, identity_id: int):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    identity = next((i for i in sign_on.of_user(account) if i.id == identity_id), None) or abort(404)
    providers = {p.issuer: p for p in current_app.config["OIDC_PROVIDERS"].values()}
    sign_on.unlink(_actor(), identity, providers.get(identity.issuer))
    flash(f"Die Verbindung von {account.name} zum Anmeldedienst ist gelöst; die Person ist abgemeldet.", "success")
    return redirect(url_for(".user", user_id=account.id))


def _changes_of(account: User) -> list[AuditEntry]:
    return db.session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.object_type == "user_account",
            AuditEntry.object_id == str(account.id),
            AuditEntry.action.in_(ADMIN_ACTIONS | {"login.success", "login.failure", "logout"}),
        )
        .order_by(AuditEntry.id.desc())
        .limit(20)
    ).all()


@blueprint.post("/users/<int:user_id>/memberships")
def add_membership(user_id: int):
    account = _user_or_404(user_id)
    form = _scoped(MembershipForm())
    if form.validate_on_submit():
        role = Role(form.role.data)
        try:
            accounts.add_membership(_actor(), account, role, *_scope_objects(form))
            db.session.flush()  # a conflict shows here, not in the request's commit
        except accounts.Refused as refusal:
            flash(str(refusal), "info")
        except IntegrityError:  # the same role was added at the same moment by another request
            db.session.rollback()
            flash("Diese Rolle hat das Konto bereits.", "info")
        else:
            flash(f"Rolle „{role.label}“ hinzugefügt.", "success")
        return redirect(url_for(".user", user_id=account.id))
    return _user_page(account, membership_form=form)


@blueprint.post("/users/<int:user_id>/memberships/<int:membership_id>/delete")
def remove_membership(user_id: int, membership_id: int):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    membership = next((m for m in account.memberships if m.id == membership_id), None) or abort(404)
    try:
        accounts.remove_membership(_actor(), account, membership)
    except accounts.Refused as refusal:
        flash(str(refusal), "danger")
        return redirect(url_for(".user", user_id=account.id))
    flash(f"Rolle „{membership.role.label}“ ({membership.scope_label}) entfernt.", "success")
    return redirect(url_for(".user", user_id=account.id))


def _account_action(user_id: int, operation, message: str):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    try:
        operation(_actor(), account)
    except accounts.Refused as refusal:
        flash(str(refusal), "danger")
        return redirect(url_for(".user", user_id=account.id))
    flash(message.format(name=account.name), "success")
    return redirect(url_for(".user", user_id=account.id))


@blueprint.post("/users/<int:user_id>/deactivate")
def deactivate(user_id: int):
    return _account_action(
        user_id,
        accounts.deactivate,
        "{name} ist deaktiviert und sofort abgemeldet. Die Mitteilungen bleiben bei der Schule.",
    )


@blueprint.post("/users/<int:user_id>/reactivate")
def reactivate(user_id: int):
    return _account_action(user_id, accounts.reactivate, "{name} ist wieder aktiv.")


@blueprint.post("/users/<int:user_id>/reset-2fa")
def reset_two_factor(user_id: int):
    return _account_action(
        user_id,
        accounts.reset_two_factor,
        "Die Zwei-Faktor-Anmeldung von {name} ist zurückgesetzt; bei der nächsten Anmeldung wird sie neu eingerichtet.",
    )


@blueprint.post("/users/<int:user_id>/end-sessions")
def end_sessions(user_id: int):
    return _account_action(user_id, accounts.end_sessions, "Alle Sitzungen von {name} sind beendet.")


@blueprint.post("/users/<int:user_id>/invite-again")
def invite_again(user_id: int):
    account = _user_or_404(user_id)
    ActionForm().validate_on_submit() or abort(400)
    try:
        accounts.invite_again(_actor(), account)
    except accounts.Refused as refusal:
        flash(str(refusal), "info")
        return redirect(url_for(".user", user_id=account.id))
    _invitation_sent(account)
    return redirect(url_for(".user", user_id=account.id))


# --- Districts and schools ------------------------------------------------------------------------


@blueprint.get("/districts")
def districts():
    rows = db.session.execute(
        select(District, func.count(School.id)).outerjoin(School).group_by(District.id).order_by(District.name)
    ).all()
    return render_template("administration/districts.html", rows=rows)


def _save(form, save, obj, **values) -> bool:
    """Store the form through the operation `save`; a name or code that exists already goes back to the form."""
    try:
        saved = save(_actor(), obj, **values)
    except organisation.Taken as taken:
        db.session.rollback()
        for name, message in taken.errors.items():
            getattr(form, name).errors.append(message)
        return False
    flash(f"„{saved.name}“ ist gespeichert.", "success")
    return True


def _values(form, names) -> dict:
    return {name: getattr(form, name).data for name in names}


@blueprint.route("/districts/new", methods=["GET", "POST"], defaults={"district_id": None})
@blueprint.route("/districts/<int:district_id>", methods=["GET", "POST"])
def district(district_id: int | None):
    obj = District() if district_id is None else (db.session.get(District, district_id) or abort(404))
    form = DistrictForm(obj=obj)
    if form.validate_on_submit():
        for name in ("duty_hours", "inbox_email"):
            getattr(form, name).data = getattr(form, name).data or ""
        if _save(
            form, organisation.save_district, obj if obj.id else None, **_values(form, organisation.DISTRICT_FIELDS)
        ):
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
        (d.id, d.name) for d in db.session.scalars(select(District).order_by(District.name))
    ]
    if form.validate_on_submit():
        for name in ("phone", "email", "address"):
            getattr(form, name).data = getattr(form, name).data or ""
        if _save(form, organisation.save_school, obj if obj.id else None, **_values(form, organisation.SCHOOL_FIELDS)):
            return redirect(url_for(".schools"))
    return form_page("administration/school.html", form=form, school=obj)


# --- Deadlines ------------------------------------------------------------------------------------


@blueprint.route("/deadlines", methods=["GET", "POST"])
def deadlines():
    current = deadline_settings()
    form = DeadlinesForm(data=current)
    if form.validate_on_submit():
        if organisation.set_deadlines(_actor(), _values(form, DEADLINE_DEFAULTS)):
            flash("Die Fristen sind gespeichert. Sie gelten für Mitteilungen, die ab jetzt eingehen.", "success")
        return redirect(url_for(".deadlines"))
    return form_page("administration/deadlines.html", form=form, labels=DEADLINE_LABELS, defaults=DEADLINE_DEFAULTS)


# --- Background work ------------------------------------------------------------------------------


@blueprint.get("/jobs")
def jobs():
    """The daily jobs of `flask worker` with their last runs, and the outbox; problems in words."""
    from ..notifications.models import OutboxMail

    now = utcnow()
    waiting, oldest = db.session.execute(
        select(func.count(), func.min(OutboxMail.created_at)).where(OutboxMail.sent_at.is_(None))
    ).one()
    return render_template(
        "administration/jobs.html",
        statuses=schedule.status(now),
        next_time=lambda name: schedule.next_time(name, now),
        waiting=waiting,
        oldest=oldest,
        labels={"ok": "erfolgreich", "failed": "fehlgeschlagen", "running": "läuft"},
    )


# --- Record of changes ----------------------------------------------------------------------------


@blueprint.get("/changes")
def changes():
    statement = (
        select(AuditEntry)
        .where(AuditEntry.action.in_(ADMIN_ACTIONS))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    page = paginate(statement, request.args.get("page", 1, type=query_int))
    return render_template("administration/changes.html", page=page, action_labels=ACTION_LABELS)


# --- API clients (referral/administration/api_clients.py) -------------------------------------------

from . import api_clients  # noqa: E402  # its views join this blueprint, behind admins_only

api_clients.register(blueprint)

from ..api.webhooks_admin import register_admin as _register_webhook_admin  # noqa: E402  # needs `blueprint`

_register_webhook_admin(blueprint)
