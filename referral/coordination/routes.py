from flask import Blueprint, render_template, request
from flask_login import current_user

from ..cases import queries
from ..policy.roles import COORDINATION, require_roles

blueprint = Blueprint("coordination", __name__, url_prefix="/coordination")


@blueprint.get("/referrals")
@require_roles(*COORDINATION)
def referrals():
    page = queries.coordination_list(current_user, request.args.get("cursor"))
    return render_template("coordination/referrals.html", page=page)
