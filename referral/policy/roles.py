"""Who uses which part of the application, and the one gate that says so for a page.

The role sets below are read by the gates (`require_roles`) and, through the gates, by the navigation
(navigation.py): a menu entry is shown exactly when its page's gate lets the user in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user  # type: ignore[import-untyped]  # Flask-Login ships no types
from werkzeug.wrappers import Response

from ..accounts.models import ASD_ROLES, SCHOOL_ROLES, Role

if TYPE_CHECKING:
    from ..accounts.models import User

P = ParamSpec("P")
R = TypeVar("R")

# The school side: the roles held in a school (authors and school leads).
SCHOOL_SIDE: Final = SCHOOL_ROLES
# The ASD side: the roles held in a district.
ASD_SIDE: Final = ASD_ROLES
# The school lead sees the whole school's referrals and consultations, not only their own.
SCHOOL_LEAD: Final = frozenset({Role.SCHOOL_LEAD})
INSOFA: Final = frozenset({Role.INSOFA})
# The Fachberatung list: the school side (its requests) and the InsoFa pool.
CONSULTATION_SIDE: Final = SCHOOL_SIDE | INSOFA
# The district overview, and each referral's access history in one's own district.
ASD_LEAD: Final = frozenset({Role.ASD_LEAD})
# The metadata of all referrals, the evaluation and the audit log.
COORDINATION: Final = frozenset({Role.COORDINATOR})
ADMINISTRATION: Final = frozenset({Role.ADMIN})
# Everything in the directory.
CITY_WIDE_DIRECTORY: Final = COORDINATION | ADMINISTRATION


def holds(user: User, roles: Iterable[Role]) -> bool:
    """Does `user` hold any of `roles` (in any scope)?"""
    return user.has_role_in(frozenset(roles))


def login_redirect() -> Response:
    """The login page, coming back to this page afterwards (only for a GET: a form is not sent again)."""
    return redirect(url_for("security.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))


# The roles each gated view function requires, for the navigation (and the tests) to read.
_GATES: dict[Callable[..., object], frozenset[Role]] = {}


def require_roles(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The gate of a page (or, on a `before_request` hook, of a whole blueprint): signed-in users
    without any of `roles` get 403, anonymous users the login page. Which object a user may see or
    act on is the business of the per-object rules (referrals.py, consultations.py, directory.py)."""
    required = frozenset(roles)

    def gate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                abort(login_redirect())
            if not holds(current_user, required):
                abort(403)
            return view(*args, **kwargs)

        _GATES[gated] = required
        return gated

    return gate


def gates_of(endpoint: str) -> list[frozenset[Role]]:
    """The role sets of the endpoint's gates (its blueprint's and its view's); empty: no gate."""
    blueprint = endpoint.rpartition(".")[0]
    hooks = current_app.before_request_funcs.get(blueprint, []) if blueprint else []
    functions = (*hooks, current_app.view_functions.get(endpoint))
    return [_GATES[function] for function in functions if function in _GATES]


def admits(user: User, endpoint: str) -> bool:
    """Would the endpoint's gates let `user` in? (The page may still refuse a particular object.)"""
    return all(holds(user, roles) for roles in gates_of(endpoint))
