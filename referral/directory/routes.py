"""Directory pages. Thin: visibility in policy/directory.py, every change an audit entry."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..integers import query_int
from ..kernel.forms import ActionForm
from ..organisation.models import District, School
from ..policy import directory as access
from ..policy.roles import SCHOOL_SIDE
from . import operations
from .forms import ContactForm
from .models import SCHOOL_KINDS, Contact, ContactKind

blueprint = Blueprint("directory", __name__, url_prefix="/contacts")


def asd_contacts(school: School, district: District | None = None) -> list[Contact] | None:
    """The ASD's contact people for `school` (its start page, its referrals): those of the school's own
    district, which is the only one that names contacts for it.

    None when `district` is another one: a referral transferred to the district where the parents live
    (§ 86 SGB VIII). That district has no contact person for this school, and the school's own district
    is no longer responsible for the referral, so neither may be named as the school's contact for it.
    """
    if district is not None and district.id != school.district_id:
        return None
    return db.session.scalars(
        select(Contact)
        .where(Contact.kind == ContactKind.ASD_CONTACT, Contact.school_id == school.id)
        .order_by(Contact.name)
    ).all()


@blueprint.get("/")
def index():
    user = current_user
    districts = db.session.scalars(
        select(District).options(selectinload(District.schools)).order_by(District.name)
    ).all()
    visible = [d for d in districts if access.may_see_district(user, d)]
    own_schools = user.school_ids(*SCHOOL_SIDE)
    return render_template(
        "directory/index.html",
        districts=visible,
        own_schools=own_schools,
        sees_schools_of=lambda d: access.sees_schools_of(user, d),
        pool=access.may_see_pool(user),
    )


@blueprint.get("/schools/<int:school_id>")
def school(school_id: int):
    found = db.session.get(School, school_id)
    if found is None or not access.may_see_school(current_user, found):
        abort(404)
    contacts = db.session.scalars(
        select(Contact).where(Contact.school_id == school_id).order_by(Contact.kind, Contact.name)
    ).all()
    return render_template(
        "directory/school.html",
        school=found,
        contacts=contacts,
        kinds=SCHOOL_KINDS,
        ContactKind=ContactKind,
        action_form=ActionForm(),
        may_maintain=lambda kind: access.may_maintain(current_user, kind, found),
    )


@blueprint.get("/districts/<int:district_id>")
def district(district_id: int):
    found = db.session.get(District, district_id)
    if found is None or not access.may_see_district(current_user, found):
        abort(404)
    contacts = db.session.scalars(
        select(Contact).join(School).where(Contact.kind == ContactKind.ASD_CONTACT, School.district_id == district_id)
    ).all()
    by_school: dict[int, list[Contact]] = {}
    for contact in contacts:
        by_school.setdefault(contact.school_id, []).append(contact)
    return render_template(
        "directory/district.html",
        district=found,
        by_school=by_school,
        may_see_school=lambda s: access.may_see_school(current_user, s),
    )


@blueprint.get("/pool")
def pool():
    if not access.may_see_pool(current_user):
        abort(404)
    contacts = db.session.scalars(
        select(Contact).where(Contact.kind == ContactKind.INSOFA).order_by(Contact.name)
    ).all()
    return render_template(
        "directory/pool.html",
        contacts=contacts,
        action_form=ActionForm(),
        may_maintain=access.may_maintain(current_user, ContactKind.INSOFA, None),
    )


def _after(school) -> str:
    return url_for(".school", school_id=school.id) if school is not None else url_for(".pool")


def _form_page(form, kind, school, contact=None):
    return render_template("directory/contact_form.html", form=form, kind=kind, school=school, contact=contact), (
        422 if request.method == "POST" else 200
    )


@blueprint.route("/new/<kind>", methods=["GET", "POST"])
def new(kind: str):
    try:
        kind = ContactKind(kind)
    except ValueError:
        abort(404)
    school = (
        db.session.get(School, request.args.get("school", type=query_int) or 0)
        if kind is not ContactKind.INSOFA
        else None
    )
    if kind is not ContactKind.INSOFA and school is None:
        abort(404)
    if not access.may_maintain(current_user, kind, school):
        abort(403)
    form = ContactForm()
    if form.validate_on_submit():
        contact = operations.add_contact(current_user, kind, school, form.values())
        flash(f"„{contact.name}“ ist eingetragen.", "success")
        return redirect(_after(school))
    return _form_page(form, kind, school)


def _contact_to_maintain(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None or (contact.school is not None and not access.may_see_school(current_user, contact.school)):
        abort(404)
    if not access.may_maintain(current_user, contact.kind, contact.school):
        abort(403)
    return contact


@blueprint.route("/<int:contact_id>/edit", methods=["GET", "POST"])
def edit(contact_id: int):
    contact = _contact_to_maintain(contact_id)
    form = ContactForm(obj=contact)
    if form.validate_on_submit():
        if operations.change_contact(current_user, contact, form.values()):
            flash(f"„{contact.name}“ ist gespeichert.", "success")
        return redirect(_after(contact.school))
    return _form_page(form, contact.kind, contact.school, contact)


@blueprint.post("/<int:contact_id>/delete")
def delete(contact_id: int):
    contact = _contact_to_maintain(contact_id)
    ActionForm().validate_on_submit() or abort(400)
    school = contact.school
    operations.remove_contact(current_user, contact)
    flash("Der Eintrag ist entfernt.", "success")
    return redirect(_after(school))
