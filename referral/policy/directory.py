"""Who sees which part of the directory, and who maintains it.

Schools see their own school, their district and the InsoFa pool; ASD staff their district and its
schools (and the pool); the coordinator and the admin everything; the InsoFa the pool. The admin
maintains everything, a school lead the school's own contacts (not the ASD's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..directory.models import SCHOOL_KINDS, ContactKind
from .roles import ADMINISTRATION, ASD_SIDE, CITY_WIDE_DIRECTORY, SCHOOL_SIDE, holds
from .school_side import leads_school

if TYPE_CHECKING:
    from ..accounts.models import User
    from ..organisation.models import District, School


def sees_all(user: User) -> bool:
    return holds(user, CITY_WIDE_DIRECTORY)


def sees_schools_of(user: User, district: District) -> bool:
    """Does `user` see the list of the district's schools (not only their own school)?"""
    return sees_all(user) or district.id in user.district_ids(*ASD_SIDE)


def may_see_school(user: User, school: School) -> bool:
    return (
        sees_all(user)
        or school.id in user.school_ids(*SCHOOL_SIDE)
        or school.district_id in user.district_ids(*ASD_SIDE)
    )


def may_see_district(user: User, district: District) -> bool:
    if sees_schools_of(user, district):
        return True
    return any(m.school and m.school.district_id == district.id for m in user.memberships if m.role in SCHOOL_SIDE)


def may_see_pool(user: User) -> bool:
    return bool(user.memberships)


def may_maintain(user: User, kind: ContactKind, school: School | None) -> bool:
    if holds(user, ADMINISTRATION):
        return True
    return kind in SCHOOL_KINDS and school is not None and leads_school(user, school.id)
