from flask import Blueprint, abort, render_template
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..accounts.models import Membership, Role, User
from ..extensions import db
from ..organisation.models import District

blueprint = Blueprint("administration", __name__, url_prefix="/admin")


@blueprint.get("/")
def overview():
    if not current_user.has_role_in({Role.ADMIN}):
        abort(403)
    districts = db.session.scalars(select(District).options(selectinload(District.schools)).order_by(District.name)).all()
    users_per_role = db.session.execute(
        select(Membership.role, func.count(func.distinct(Membership.user_id))).join(User).where(User.active.is_(True))
        .group_by(Membership.role)
    ).all()
    return render_template("administration/overview.html", districts=districts, users_per_role=dict(users_per_role))
