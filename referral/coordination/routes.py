from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from ..accounts.models import Role
from ..cases import queries
from ..integers import query_int

blueprint = Blueprint("coordination", __name__, url_prefix="/coordination")


@blueprint.get("/referrals")
def referrals():
    if not current_user.has_role_in({Role.COORDINATOR}):
        abort(403)
    page = queries.coordination_list(current_user, request.args.get("page", 1, type=query_int))
    return render_template("coordination/referrals.html", page=page)
