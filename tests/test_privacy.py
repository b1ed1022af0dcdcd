"""Who sees what of a case (PROCESS.md, *Organisation and roles*, *Assessment*, *Feedback*).

- Coordinator and admin never see the child's identity, the guardians, free text, messages or
  attachments: not on any page they can reach, and not by typing a referral URL.
- The school never sees the ASD's assessment.
- Staff of the afternoon care (OGS) are not owed the § 4 Abs. 4 KKG feedback; their school lead is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from flask import url_for

from referral.cases import services
from referral.cases.models import Referral
from referral.cases.process import State
from referral.cases.vocabulary import AssessmentResult, Measure, ReporterFunction
from referral.extensions import db

from . import factories

MOTHER_FIRST, MOTHER_LAST = "Mechthild", "Kranichsteiner"
QUESTION, ANSWER, ADDENDUM = "Rückfrage-Geheim-4471", "Antwort-Geheim-4472", "Nachtrag-Geheim-4473"
TRANSFER_REASON = "Umzugsgrund-Geheim-4474"
ATTACHMENT_NAME = "Befund-Geheim-4475.pdf"
CONTENT = {  # what coordinator and admin must never receive
    "child's first name": factories.CHILD_FIRST,
    "child's last name": factories.CHILD_LAST,
    "child's address": "Teststraße 1",
    "observation": "Beobachtungstext-7731",
    "mother's first name": MOTHER_FIRST,
    "mother's last name": MOTHER_LAST,
    "question": QUESTION,
    "answer": ANSWER,
    "addendum": ADDENDUM,
    "message of the factory": "Eine Rückfrage?",
    "transfer reason": TRANSFER_REASON,
    "attachment": ATTACHMENT_NAME,
    "assessment result": AssessmentResult.LATENT.label,
}
LIST_PAGES = {"coordinator": "/coordination/referrals", "admin": "/admin/"}


def leaks(html: str) -> list[str]:
    return [f"{label} {text!r}" for label, text in CONTENT.items() if text in html]


@pytest.fixture
def cases(world):
    """Referrals of school A in every state, with all kinds of content, plus one transferred and one of HM."""
    we_lead = world.asd_lead
    made = {state: factories.referral_in(state, world.teacher, world.asd, lead=we_lead) for state in State}

    talking = made[State.IN_ASSESSMENT]
    services.ask(talking, world.asd, QUESTION)
    services.answer(talking, world.teacher, ANSWER)
    services.add_addendum(talking, world.teacher, ADDENDUM)
    factories.record_assessment(talking, world.asd, we_lead)
    services.add_attachment(made[State.SUBMITTED], world.teacher, ATTACHMENT_NAME, b"%PDF-1.4 Befund")
    services.add_attachment(made[State.DRAFT], world.teacher, ATTACHMENT_NAME, b"%PDF-1.4 Entwurf")

    transferred = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd, lead=we_lead)
    services.transfer(transferred, world.asd, world.districts["hm"], TRANSFER_REASON)
    other_district = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher_b, world.asd_hm, lead=world.asd_lead_hm)

    everything = [*made.values(), transferred, other_district]
    for referral in everything:
        referral.persons[0].first_name, referral.persons[0].last_name = MOTHER_FIRST, MOTHER_LAST
    db.session.commit()
    return everything


def versions(referral_ids):
    db.session.expire_all()
    return {rid: (db.session.get(Referral, rid).state, db.session.get(Referral, rid).version) for rid in referral_ids}


def start_pages(app) -> list[str]:
    """The start page, then every other page without parameters (the forbidden ones are checked too)."""
    paths = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and not rule.endpoint.startswith("security.")
    ]  # sign-in steps: a pending-login page ends a login
    return ["/", *sorted(set(paths) - {"/"})]


def crawl(client, starts: list[str], limit: int = 200) -> dict[str, tuple[int, str]]:
    """Every page reachable from `starts` by links and redirects: path → (status, html)."""
    pages: dict[str, tuple[int, str]] = {}
    queue = list(starts)
    while queue and len(pages) < limit:
        path = queue.pop(0)
        if path in pages:
            continue
        response = client.get(path)
        pages[path] = (response.status_code, response.text if response.mimetype == "text/html" else "")
        targets = [response.location] if response.status_code in (301, 302, 303) else []
        targets += re.findall(r'href="([^"#]+)', pages[path][1])
        for target in targets:
            parts = urlsplit(target.replace("&amp;", "&"))
            # Not assets, and not the sign-in steps (a pending-login page ends a complete login).
            if (
                parts.netloc in ("", "localhost")
                and parts.path.startswith("/")
                and not parts.path.startswith(
                    ("/static/", "/bootstrap/", "/fs-static/", "/tf-", "/mf-", "/verify", "/login")
                )
            ):
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


def referral_urls(app, referral: Referral):
    """Every route about one referral, with its methods, filled in for `referral`."""
    for rule in app.url_map.iter_rules():
        if "referral_id" not in rule.arguments:
            continue
        attachment_ids = [None]
        if "attachment_id" in rule.arguments:
            attachment_ids = [a.id for a in referral.attachments] or [999_999]
        for attachment_id in attachment_ids:
            values = {"referral_id": referral.id, "attachment_id": attachment_id}
            path = url_for(rule.endpoint, _external=False, **{k: v for k, v in values.items() if k in rule.arguments})
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, path


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinator_and_admin_never_receive_case_content(app, world, cases, login, role):
    client = login(world.users[role])  # the real login form, CSRF token included
    pages = crawl(client, start_pages(app))
    assert LIST_PAGES[role] in pages and pages[LIST_PAGES[role]][0] == 200, f"the crawl did not reach the {role}'s list"
    found = [
        f"{path}: {leak}"
        for path, (status, html) in pages.items()
        for leak in leaks(html)
        # The evaluation names the four result categories to count them ("except as counts", PROCESS.md);
        # the API's documentation lists them as the values the field can take, about no referral.
        if not (path.startswith(("/coordination/evaluation", "/api/v1/docs")) and leak.startswith("assessment result"))
    ]
    assert not found, f"{role} received case content:\n" + "\n".join(found)

    # Typing the URLs: every route about a referral, for every referral, answers 404 and nothing else;
    # except that the coordinator audits who accessed a submitted referral (metadata, no content).
    app.config["WTF_CSRF_ENABLED"] = False  # so that POSTs reach the view instead of stopping at the token
    before = versions([r.id for r in cases])
    problems = []
    for referral in cases:
        for endpoint, method, path in referral_urls(app, referral):
            response = client.open(path, method=method, data={})
            audits = endpoint == "audit.access_history" and role == "coordinator" and referral.state is not State.DRAFT
            # The API takes no session at all: without a client's bearer token it answers 401 to anyone.
            expected = 200 if audits else 401 if endpoint.startswith("api.") else 404
            if response.status_code != expected:
                problems.append(f"{method} {path} ({referral.state.value}): HTTP {response.status_code}")
            problems += [f"{method} {path}: {leak}" for leak in leaks(response.text)]
    assert not problems, f"{role} reached referrals:\n" + "\n".join(problems)
    assert versions([r.id for r in cases]) == before


def test_coordinator_list_shows_the_process_metadata(app, world, cases, as_user):
    """The counterpart of the test above: the list is not empty, it just has no content."""
    html = as_user(world.coordinator).get("/coordination/referrals").text
    submitted = [r for r in cases if r.state is not State.DRAFT]
    missing = [r.number for r in submitted if r.number not in html]
    assert not missing, f"case numbers missing from the coordinator's list: {missing}"
    assert "Herne-Mitte" in html and "Schule B" in html  # city-wide: the other district is listed too
    assert not leaks(html)


# --- The school never sees the ASD's assessment ---------------------------------------------


@pytest.fixture
def assessed(world):
    """Referrals of teacher at school A whose assessment (result: latent) the ASD has recorded."""
    in_assessment = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd, lead=world.asd_lead)
    factories.record_assessment(in_assessment, world.asd, world.asd_lead)
    db.session.commit()
    later = [
        factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)
        for state in (State.FEEDBACK_GIVEN, State.CLOSED)
    ]
    return [in_assessment, *later]


ASSESSMENT_TEXT = [AssessmentResult.LATENT.label, "Gefährdungseinschätzung (nur ASD)", Measure.HELP_OFFER.label]


def show_page(as_user, user, referral) -> str:
    response = as_user(user).get(f"/referrals/{referral.id}")
    assert response.status_code == 200, f"referral {referral.id} as {user.email}: HTTP {response.status_code}"
    return response.text


@pytest.mark.parametrize("reader", ["teacher", "school_lead"])
def test_school_never_sees_the_assessment(app, world, assessed, as_user, reader):
    for referral in assessed:
        html = show_page(as_user, world.users[reader], referral)
        shown = [text for text in ASSESSMENT_TEXT if text in html]
        assert not shown, f"{reader} sees {shown} on referral {referral.number} ({referral.state.value})"
    listing = as_user(world.users[reader]).get("/referrals").text
    assert AssessmentResult.LATENT.label not in listing


def test_asd_sees_the_assessment(app, world, assessed, as_user):
    """The counterpart of the test above: the text searched for is really on the ASD's page."""
    for referral in assessed:
        html = show_page(as_user, world.asd, referral)
        assert all(text in html for text in ASSESSMENT_TEXT), f"referral {referral.number} ({referral.state.value})"


@pytest.mark.parametrize("reader", ["teacher", "school_lead"])
def test_school_does_not_learn_that_an_assessment_was_recorded(app, world, assessed, as_user, reader):
    """Not even from the history ("Gefährdungseinschätzung erfassen – <name>"), which once showed it."""
    for referral in assessed:
        html = show_page(as_user, world.users[reader], referral)
        assert "Gefährdungseinschätzung" not in html, f"{reader}, referral {referral.number} ({referral.state.value})"


# --- § 4 Abs. 4 KKG: feedback to the reporting professional, not to OGS staff ----------------

FEEDBACK_HEADING = "Rückmeldung des ASD (§ 4 Abs. 4 KKG)"
FEEDBACK_PHONE = "0234 999"  # factories.feedback_values: the ASD contact's phone, part of the feedback


def test_ogs_reporter_does_not_see_the_feedback_but_the_school_lead_does(app, world, as_user):
    ogs = factories.referral_in(
        State.FEEDBACK_GIVEN, world.teacher, world.asd, lead=world.asd_lead, reporter=ReporterFunction.OGS
    )
    teacher_page = show_page(as_user, world.teacher, ogs)
    assert FEEDBACK_HEADING not in teacher_page
    assert FEEDBACK_PHONE not in teacher_page
    lead_page = show_page(as_user, world.school_lead, ogs)
    assert FEEDBACK_HEADING in lead_page
    assert FEEDBACK_PHONE in lead_page


def test_teacher_reporter_sees_the_feedback(app, world, as_user):
    """The counterpart of the test above: for a teacher the block is there."""
    referral = factories.referral_in(
        State.FEEDBACK_GIVEN, world.teacher, world.asd, lead=world.asd_lead, reporter=ReporterFunction.TEACHER
    )
    page = show_page(as_user, world.teacher, referral)
    assert FEEDBACK_HEADING in page and FEEDBACK_PHONE in page


def test_the_school_learns_that_and_where_a_referral_was_transferred_never_why(app, world, as_user):
    """§ 64 Abs. 4 SGB VIII: the transfer reason stays inside the ASD (page, history, PDF, lists,
    notifications, e-mails); the school sees that and to which district its referral went."""
    import io

    from pypdf import PdfReader
    from sqlalchemy import select

    from referral.notifications.models import Notification, OutboxMail

    from .conftest import csrf_token

    reason, secret = "Mutter mit Kind ins Frauenhaus gezogen", "Frauenhaus"
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    asd = as_user(world.asd)
    moved = asd.post(
        f"/referrals/{referral.id}/transfer",
        data={
            "to_district": world.districts["hm"].id,
            "reason": reason,
            "csrf_token": csrf_token(asd, f"/referrals/{referral.id}"),
        },
    )
    assert moved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).district_id == world.districts["hm"].id

    def pdf_text(client) -> str:
        response = client.get(f"/referrals/{referral.id}/pdf")
        assert response.status_code == 200
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)

    for who in ("teacher", "school_lead"):
        school = as_user(world.users[who])
        page = school.get(f"/referrals/{referral.id}").get_data(as_text=True)
        assert "von Wanne-Eickel an Herne-Mitte" in page, "that and where to"
        assert secret not in page and "Grund:" not in page, f"{who} reads the transfer reason on the page"
        for url in ("/referrals", "/notifications", "/school", "/"):
            assert secret not in school.get(url, follow_redirects=True).get_data(as_text=True), (who, url)
        assert secret not in pdf_text(school), f"{who} reads the transfer reason in the PDF"
    for mail in db.session.scalars(select(OutboxMail)):
        assert secret not in mail.subject and secret not in mail.body, mail.subject
    assert not [t for t in db.session.scalars(select(Notification.text)) if secret in t]

    for who in ("asd_hm", "asd_lead_hm"):  # the receiving district reads it, page and PDF
        receiving = as_user(world.users[who])
        page = receiving.get(f"/referrals/{referral.id}").get_data(as_text=True)
        assert f"Grund: {reason}" in page
        assert (
            "Nur für den ASD sichtbar; die Schule erfährt nur, dass und an welchen Bezirk die Mitteilung "
            "abgegeben wurde." in page
        ), "the transfer form says so"
        assert secret in pdf_text(receiving)
