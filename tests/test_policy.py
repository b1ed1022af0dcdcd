"""The policy package: templates ask it instead of naming roles, and the menu shows exactly the pages
whose gates let the user in (the permission matrix, test_permissions.py, checks the gates themselves)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for
from sqlalchemy import select

from referral.accounts.models import Role
from referral.cases.models import Referral
from referral.cases.process import State
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState
from referral.extensions import db
from referral.policy import consultations, referrals
from referral.policy.navigation import MENU, START, navigation, start_endpoint
from referral.policy.roles import admits, gates_of

from . import factories

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# A role check or a role's name in a template: the rules live in referral/policy/.
ROLE_NAMES = "|".join(re.escape(role.value) for role in Role)
ROLE_CHECK = re.compile(
    r"has_role|\bRole\b|school_ids|district_ids|\.role\s*(?:==|!=|\bin\b|\bis\b|\.value)"
    rf"|['\"](?:{ROLE_NAMES})['\"]"
)
# The same word in another vocabulary: the directory's kind of contact "insofa" (ContactKind) is no role.
NOT_ROLES = (
    re.compile(r"c\.kind\.value != 'insofa'"),
    re.compile(r"url_for\('directory\.new', kind='insofa'\)"),
)


def test_templates_name_no_roles():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for allowed in NOT_ROLES:
                line = allowed.sub("", line)
            if ROLE_CHECK.search(line):
                found.append(f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()}")
    assert not found, "templates check roles themselves (ask referral.policy instead):\n" + "\n".join(found)


def test_the_template_check_sees_a_role_check():
    """The check above would notice the kind of line it is there for."""
    assert ROLE_CHECK.search("{% if current_user.has_role_in(['coordinator']) %}")
    assert ROLE_CHECK.search("{% if m.role.value == 'admin' %}")
    assert ROLE_CHECK.search("{% set roles = ['asd_lead'] %}")
    assert not ROLE_CHECK.search("{% for entry in navigation(current_user) %}")


# --- The menu and the gates ---------------------------------------------------------------------

# Users with several roles, besides the world's one user per role and scope.
MORE_USERS = {
    "no_role": [],
    "teacher_asd_coordinator": [(Role.TEACHER, "a"), (Role.ASD_WORKER, "we"), (Role.COORDINATOR, None)],
    "lead_insofa_admin": [(Role.SCHOOL_LEAD, "a"), (Role.INSOFA, None), (Role.ADMIN, None)],
    "asd_worker_and_lead": [(Role.ASD_WORKER, "we"), (Role.ASD_LEAD, "hm")],
    "insofa_asd": [(Role.INSOFA, None), (Role.ASD_WORKER, "hm")],
}


@pytest.fixture
def users(world):
    found = dict(world.users)
    for key, memberships in MORE_USERS.items():
        scopes = [(role, world.schools.get(s) or world.districts.get(s) if s else None) for role, s in memberships]
        found[key] = factories.user(f"{key}@test.example", key, *scopes)
    db.session.commit()
    return found


def _gated_pages(app) -> list[str]:
    """The gated pages a plain GET opens: no arguments in the URL."""
    return sorted(
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.arguments and gates_of(rule.endpoint)
    )


def test_every_menu_page_and_start_page_is_a_page(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {endpoint for endpoint, _ in MENU} <= endpoints
    assert set(START) <= endpoints
    # A start page is a role's own page: a user without a role starts on the page that says so.
    assert all(gates_of(endpoint) for endpoint in START)


def test_the_menu_shows_exactly_the_pages_the_gates_open(app, users, as_user):
    gated = _gated_pages(app)
    assert {"cases.inbox", "administration.overview", "coordination.referrals"} <= set(gated)
    for key, user in users.items():
        client = as_user(user)
        menu = {entry.endpoint for entry in navigation(user)}
        for endpoint, _ in MENU:
            status = client.get(url_for(endpoint)).status_code
            if endpoint in menu:
                assert status in (200, 302), f"{key}: menu entry {endpoint} answers {status}"
            else:
                assert status == 403, f"{key}: {endpoint} is not in the menu, but answers {status}"
        for endpoint in gated:
            if endpoint in menu:
                continue
            status = client.get(url_for(endpoint)).status_code
            admitted = admits(user, endpoint)
            assert (status != 403) == admitted, f"{key}: {endpoint} answers {status}"


def test_the_menu_renders_the_entries(users, as_user):
    page = as_user(users["school_lead"]).get(url_for("directory.index")).get_data(as_text=True)
    menu = re.search(r'<ul class="navbar-nav me-auto">(.*?)</ul>', page, re.S).group(1)
    links = re.findall(r'<a class="nav-link" href="([^"]+)">([^<]+)</a>', menu)
    assert links == [
        ("/school", "Start"),
        ("/referrals/new", "Neue Mitteilung"),
        ("/referrals", "Mitteilungen der Schule"),
        ("/consultations/", "Fachberatung"),
        ("/contacts/", "Ansprechpartner"),
        ("/leitfaden/", "So funktioniert&#39;s"),
    ]


@pytest.mark.parametrize(
    "key, start",
    [
        ("teacher", "home.school_start"),
        ("school_lead", "home.school_start"),
        ("asd", "cases.inbox"),
        ("asd_lead", "cases.inbox"),
        ("insofa", "consultations.index"),
        ("coordinator", "coordination.referrals"),
        ("admin", "administration.overview"),
        ("teacher_asd_coordinator", "home.school_start"),
        ("lead_insofa_admin", "home.school_start"),
        ("insofa_asd", "cases.inbox"),
        ("no_role", None),
    ],
)
def test_start_page(users, as_user, key, start):
    assert start_endpoint(users[key]) == start
    response = as_user(users[key]).get("/")
    if start is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and response.location.endswith(url_for(start, _external=False))


def test_a_gate_sends_the_anonymous_to_the_login(app):
    # The login rule of every page (home.require_login) comes first; the gate says the same on its own.
    from werkzeug.exceptions import HTTPException

    from referral.policy.roles import require_roles

    with app.test_request_context("/inbox?page=2"):
        with pytest.raises(HTTPException) as refused:
            require_roles(Role.ASD_WORKER)(lambda: "page")()
        response = refused.value.get_response()
    location = urlsplit(response.location)
    assert response.status_code == 302 and location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/inbox?page=2"]}


# --- The list scopes and the questions about one object say the same ------------------------------


@pytest.mark.parametrize("state", [State.DRAFT, State.SUBMITTED, State.CLOSED])
def test_referral_scope_and_the_per_object_rule_agree(users, state):
    world_users = factories.load_world().users
    referral = factories.referral_in(state, world_users["teacher"], world_users["asd"], lead=world_users["asd_lead"])
    for key, user in users.items():
        listed = db.session.scalar(
            select(Referral.id).where(Referral.id == referral.id, referrals.referral_scope(user))
        )
        readable = referrals.is_school_side(user, referral) or referrals.is_asd_side(user, referral)
        assert (listed is not None) == readable, key


@pytest.mark.parametrize("state", list(ConsultationState))
def test_consultation_scope_and_the_per_object_rule_agree(users, state):
    world_users = factories.load_world().users
    consultation = factories.consultation_in(state, world_users["teacher"], world_users["insofa"])
    for key, user in users.items():
        listed = db.session.scalar(
            select(Consultation.id).where(Consultation.id == consultation.id, consultations.consultation_scope(user))
        )
        in_the_pool = consultations.is_insofa(user) and (
            consultation.state is ConsultationState.REQUESTED or consultation.insofa_id == user.id
        )
        assert (listed is not None) == (consultations.is_school_side(user, consultation) or in_the_pool), key
