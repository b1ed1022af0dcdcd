"""Who sees which part of the directory, and who maintains it.

Schools see their own school, their district and the InsoFa pool; ASD staff their district and its
schools (and the pool); the coordinator and the admin everything; the InsoFa the pool. The admin
maintains everything, a school lead the school's own contacts (not the ASD's).
"""

from __future__ import annotations

from ..accounts.models import ASD_ROLES, SCHOOL_ROLES, Role
from .models import SCHOOL_KINDS, ContactKind

EVERYTHING = {Role.COORDINATOR, Role.ADMIN}


def sees_all(user) -> bool:
    return user.has_role_in(EVERYTHING)


def may_see_school(user, school) -> bool:
    return (
        sees_all(user)
        or school.id in user.school_ids(*SCHOOL_ROLES)
        or school.district_id in user.district_ids(*ASD_ROLES)
    )


def may_see_district(user, district) -> bool:
    if sees_all(user) or district.id in user.district_ids(*ASD_ROLES):
        return True
    return any(m.school and m.school.district_id == district.id for m in user.memberships if m.role in SCHOOL_ROLES)


def may_see_pool(user) -> bool:
    return bool(user.memberships)


def may_maintain(user, kind: ContactKind, school) -> bool:
    if user.has_role_in({Role.ADMIN}):
        return True
    return kind in SCHOOL_KINDS and school is not None and school.id in user.school_ids(Role.SCHOOL_LEAD)
