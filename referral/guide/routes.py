"""Pages of the guide: the current version, old versions, and the coordinator's editor."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..policy.roles import ADMINISTRATION, ASD_SIDE, COORDINATION, INSOFA, SCHOOL_SIDE, admits, require_roles
from . import operations
from .facts import PLACEHOLDERS, facts_for
from .forms import TEXT_MAX, GuideForm, field_name
from .rendering import render
from .sections import SECTIONS, Part
from .versions import published_versions

blueprint = Blueprint("guide", __name__, url_prefix="/leitfaden")

# Everyone with a role reads the guide: it describes the process, never a case.
READERS = SCHOOL_SIDE | ASD_SIDE | INSOFA | COORDINATION | ADMINISTRATION


def _page(template: str, shown: operations.Shown, **context):
    facts = facts_for(current_user, current_app.config)
    return render_template(
        template,
        shown=shown,
        html={key: render(text, facts.values) for key, text in shown.texts.items()},
        facts=facts,
        sections=SECTIONS,
        parts=list(Part),
        may_edit=admits(current_user, "guide.edit"),
        may_consult=admits(current_user, "consultations.new"),
        **context,
    )


@blueprint.get("/")
@require_roles(*READERS)
def index():
    shown = operations.version()
    assert shown is not None  # the newest version, or the built-in texts
    seen = operations.last_seen(current_user)
    news = operations.news_since(seen, shown.number)
    if shown.number is not None and seen != shown.number:
        operations.mark_seen(current_user, shown.number)
    return _page("guide/index.html", shown, news=news, first_visit=seen is None and shown.number is not None)


@blueprint.get("/versionen")
@require_roles(*READERS)
def versions():
    return render_template("guide/versions.html", versions=list(reversed(published_versions())))


@blueprint.get("/version/<int:number>")
@require_roles(*READERS)
def old_version(number: int):
    shown = operations.version(number)
    if shown is None:
        abort(404)
    return _page("guide/version.html", shown, newest=operations.current_number())


@blueprint.route("/bearbeiten", methods=["GET", "POST"])
@require_roles(*COORDINATION)
def edit():
    form = GuideForm()
    conflict, stale = None, False
    if request.method == "GET":
        shown = operations.version()
        assert shown is not None
        form.base.data = shown.number
        form.fill(shown.texts)
    elif form.validate():
        try:
            created = operations.publish(current_user, form.base.data, form.note.data, form.texts())
        except operations.StaleBase as error:
            conflict, stale = error.current, True
        except IntegrityError:  # the same number published at the same moment by another coordinator
            db.session.rollback()
            conflict, stale = operations.current_number(), True
        else:
            flash(f"Version {created.number} des Leitfadens ist veröffentlicht.", "success")
            return redirect(url_for(".index"))
        if stale:  # the typed text stays; a second save builds on the version now newest, knowingly
            form.base.data = conflict
    status = 422 if request.method == "POST" else 200
    return render_template(
        "guide/edit.html",
        form=form,
        sections=SECTIONS,
        field_name=field_name,
        placeholders=PLACEHOLDERS,
        text_max=TEXT_MAX,
        conflict=conflict,
        stale=stale,
        invalid=request.method == "POST",
    ), status
