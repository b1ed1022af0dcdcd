"""Accessibility defects of issue 11, section 3, checked on the HTML the app serves (test client).

The behaviour in the browser (reflow, focus, live regions) is in tests/browser/test_accessibility_behaviour.py.
"""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from referral.cases import services
from referral.cases.models import Attachment, Referral
from referral.cases.process import State
from referral.extensions import db

from . import factories
from .conftest import csrf_token

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def text_of(response) -> str:
    return response.get_data(as_text=True)


def title_of(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def draft_of(world, *, attachment: bool = False) -> Referral:
    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    if attachment:
        services.add_attachment(referral, world.teacher, "befund.pdf", PDF)
    db.session.commit()
    return referral


def referral_exists(referral_id: int) -> bool:
    return db.session.scalar(select(func.count()).select_from(Referral).where(Referral.id == referral_id)) == 1


def attachment_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Attachment))


# --- 1. Deleting needs a confirmation (WCAG 3.3.4) ------------------------------------------------


def test_a_draft_is_deleted_only_after_confirmation(world, as_user):
    referral = draft_of(world)
    teacher = as_user(world.teacher)
    edit = text_of(teacher.get(f"/referrals/{referral.id}/edit"))
    # The form only links to the confirmation page; no form on the page posts to the delete route.
    assert f'action="/referrals/{referral.id}/delete"' not in edit
    assert f'href="/referrals/{referral.id}/delete"' in edit
    # ... and that link is not the next Tab stop after "Mitteilung einreichen": it comes before the form.
    assert edit.index(f'href="/referrals/{referral.id}/delete"') < edit.index('name="submit"')

    confirmation = text_of(teacher.get(f"/referrals/{referral.id}/delete"))
    assert "Ja, endgültig löschen" in confirmation and "Abbrechen" in confirmation
    assert 'name="confirmed" value="yes"' in confirmation
    assert referral_exists(referral.id)

    token = csrf_token(teacher, f"/referrals/{referral.id}/delete")
    refused = teacher.post(f"/referrals/{referral.id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Der Entwurf wurde nicht gelöscht" in text_of(refused)
    assert "Ja, endgültig löschen" in text_of(refused), "the user lands on the confirmation again"
    assert referral_exists(referral.id)

    done = teacher.post(
        f"/referrals/{referral.id}/delete", data={"csrf_token": token, "confirmed": "yes"}, follow_redirects=True
    )
    assert "endgültig gelöscht" in text_of(done)
    assert not referral_exists(referral.id)


def test_an_attachment_is_removed_only_after_confirmation(world, as_user):
    referral = draft_of(world, attachment=True)
    attachment_id = referral.attachments[0].id
    url = f"/referrals/{referral.id}/attachments/{attachment_id}/delete"
    teacher = as_user(world.teacher)
    edit = text_of(teacher.get(f"/referrals/{referral.id}/edit"))
    assert f'action="{url}"' not in edit and f'href="{url}"' in edit

    confirmation = text_of(teacher.get(url))
    assert "„befund.pdf“ entfernen?" in confirmation and "Ja, endgültig entfernen" in confirmation

    token = csrf_token(teacher, url)
    refused = teacher.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "wurde nicht entfernt" in text_of(refused)
    assert attachment_count() == 1

    teacher.post(url, data={"csrf_token": token, "confirmed": "no"})
    assert attachment_count() == 1

    done = teacher.post(url, data={"csrf_token": token, "confirmed": "yes"}, follow_redirects=True)
    assert "Der Anhang wurde entfernt." in text_of(done)
    assert attachment_count() == 0


# --- 2. Tables that scroll sideways can be reached and scrolled with the keyboard ----------------


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, in order."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def ids(self) -> set[str]:
        return {attrs["id"] for _, attrs in self.tags if attrs.get("id")}

    def with_class(self, name: str) -> list[dict]:
        return [attrs for _, attrs in self.tags if name in (attrs.get("class") or "").split()]


def assert_scroll_regions_are_focusable_and_named(html: str) -> int:
    page = Elements(html)
    regions = page.with_class("table-responsive")
    for region in regions:
        assert region.get("tabindex") == "0", f"scroll container not focusable: {region}"
        assert region.get("role") == "region", region
        assert region.get("aria-labelledby") in page.ids(), f"scroll container without a name: {region}"
    return len(regions)


@pytest.fixture
def submitted(world):
    for state in (State.SUBMITTED, State.IN_ASSESSMENT, State.CLOSED):
        factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)
    db.session.commit()


@pytest.mark.parametrize(
    "key, url",
    [
        ("coordinator", "/"),
        ("coordinator", "/coordination/referrals"),
        ("coordinator", "/coordination/evaluation"),
        ("asd", "/inbox"),
        ("teacher", "/referrals"),
        ("teacher", "/consultations"),
        ("coordinator", "/coordination/audit"),
        ("admin", "/admin/users"),
    ],
)
def test_every_table_scroll_container_is_focusable_and_named(world, as_user, submitted, key, url):
    response = as_user(world.users[key]).get(url, follow_redirects=True)
    assert response.status_code == 200
    assert assert_scroll_regions_are_focusable_and_named(text_of(response)) >= 1, "the page has a scrolling table"


# --- 4. Live regions: the countdown and routine autosaves are not announced -----------------------


def test_the_session_countdown_and_the_autosave_status_are_not_live_regions(world, as_user):
    html = text_of(as_user(world.teacher).get("/referrals/new", follow_redirects=True))
    page = Elements(html)
    warning = next(attrs for tag, attrs in page.tags if attrs.get("id") == "sitzung-warnung")
    assert "aria-live" not in warning, "the box holds the countdown, which changes every second"
    announcement = next(attrs for tag, attrs in page.tags if "data-session-announcement" in attrs)
    assert announcement.get("role") == "alert"
    status = next(attrs for tag, attrs in page.tags if "data-autosave-status" in attrs)
    assert "role" not in status and "aria-live" not in status, "routine saves are shown, not announced"
    problem = next(attrs for tag, attrs in page.tags if "data-autosave-problem" in attrs)
    assert problem.get("role") == "status", "failures are announced politely"


# --- 5. The result of an action is announced: in the title, and focusable for forms.js -----------


def test_the_result_message_leads_the_title_and_can_take_the_focus(world, as_user):
    referral = draft_of(world)
    teacher = as_user(world.teacher)
    token = csrf_token(teacher, f"/referrals/{referral.id}/delete")
    html = text_of(
        teacher.post(
            f"/referrals/{referral.id}/delete", data={"csrf_token": token, "confirmed": "yes"}, follow_redirects=True
        )
    )
    assert title_of(html).startswith("Erledigt – "), title_of(html)
    flash = [attrs for attrs in Elements(html).with_class("alert") if "data-flash" in attrs]
    assert len(flash) == 1 and flash[0]["tabindex"] == "-1" and flash[0]["role"] == "status"
    # Without a message, the title is the page's own.
    assert not title_of(text_of(teacher.get("/referrals"))).startswith(("Erledigt", "Hinweis", "Fehler"))


def test_a_refusal_leads_the_title_as_an_error(world, as_user):
    referral = draft_of(world)
    teacher = as_user(world.teacher)
    token = csrf_token(teacher, f"/referrals/{referral.id}/delete")
    html = text_of(teacher.post(f"/referrals/{referral.id}/delete", data={"csrf_token": token}, follow_redirects=True))
    assert title_of(html).startswith("Fehler – ")


# --- 6. Input purpose of the user's own data (WCAG 1.3.5) ----------------------------------------


def input_named(html: str, name: str) -> dict:
    return next(attrs for tag, attrs in Elements(html).tags if tag == "input" and attrs.get("name") == name)


def test_the_reporters_own_name_and_phone_have_an_input_purpose(world, as_user):
    html = text_of(as_user(world.teacher).get("/referrals/new", follow_redirects=True))
    assert input_named(html, "reporter_name").get("autocomplete") == "name"
    assert input_named(html, "reporter_phone").get("autocomplete") == "tel"
    assert input_named(html, "reporter_phone").get("type") == "tel"


def test_the_consultations_contact_phone_has_an_input_purpose(world, as_user):
    html = text_of(as_user(world.teacher).get("/consultations/new", follow_redirects=True))
    assert input_named(html, "contact_phone").get("autocomplete") == "tel"


# --- 7. Nu HTML checker errors and duplicate names ------------------------------------------------


def select_named(html: str, name: str) -> tuple[dict, list[tuple[dict, str]]]:
    """A select's attributes and its options (attributes, text)."""
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select {name}"
    select_attrs = Elements(match.group(0)).tags[0][1]
    options = [
        (Elements(o.group(1)).tags[0][1], o.group(2))
        for o in re.finditer(r"(<option[^>]*>)(.*?)</option>", match.group(1), re.S)
    ]
    return select_attrs, options


@pytest.mark.parametrize("name, state", [("to_district", State.SUBMITTED), ("assignee", State.ACKNOWLEDGED)])
def test_a_required_select_starts_with_an_empty_option(world, as_user, name, state):
    referral = factories.referral_in(state, world.teacher, world.asd)
    db.session.commit()
    html = text_of(as_user(world.asd_lead).get(f"/referrals/{referral.id}"))
    attrs, options = select_named(html, name)
    assert "required" in attrs
    assert options[0][0].get("value") == "", "the first option of a required select must have an empty value"
    assert len(options) >= 2


def test_transfer_without_a_district_gets_the_german_error_only(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    db.session.commit()
    lead = as_user(world.asd_lead)
    token = csrf_token(lead, f"/referrals/{referral.id}")
    html = text_of(
        lead.post(f"/referrals/{referral.id}/transfer", data={"csrf_token": token, "to_district": "", "reason": "x"})
    )
    assert "Bitte einen Bezirk wählen." in html and "Not a valid" not in html
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).district_id == world.districts["we"].id


def test_no_form_inside_a_paragraph_on_the_account_page(world, as_user):
    for account in (world.teacher, world.admin):  # someone else's account, and the admin's own
        html = text_of(as_user(world.admin).get(f"/admin/users/{account.id}"))
        assert "<form" in html
        for paragraph in re.findall(r"<p[ >].*?</p>", html, re.S):
            assert "<form" not in paragraph, paragraph[:200]


def heading_levels(html: str) -> list[int]:
    return [int(tag[1]) for tag, _ in Elements(html).tags if re.fullmatch(r"h[1-6]", tag)]


def assert_no_heading_jumps(html: str) -> None:
    levels = heading_levels(html)
    assert levels and levels[0] in (1, 2)
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, f"heading levels jump: {levels}"


def test_the_two_factor_set_up_pages_have_no_heading_jump(world, login):
    client = login(world.teacher)
    html = text_of(client.get("/tf-setup"))
    assert "two_factor_setup_form" in html
    assert_no_heading_jumps(html[html.index("<main") :])
    chosen = text_of(
        client.post("/tf-setup", data={"setup": "authenticator", "csrf_token": csrf_token(client, "/tf-setup")})
    )
    assert "two_factor_verify_code_form" in chosen
    assert_no_heading_jumps(chosen[chosen.index("<main") :])


def test_the_empty_list_row_spans_exactly_the_columns(world, as_user):
    for key, url in (("asd", "/inbox"), ("coordinator", "/coordination/referrals"), ("teacher", "/referrals")):
        html = text_of(as_user(world.users[key]).get(url))
        table = re.search(r"<table.*?</table>", html, re.S).group(0)
        columns = len(re.findall(r'<th scope="col"', table))
        assert f'<td colspan="{columns}">Keine Mitteilungen.</td>' in table, (url, columns)


def test_pagination_steps_that_are_not_possible_are_not_links(app):
    from referral.pagination import Page

    macro = app.jinja_env.get_template("_macros/referrals.html").module.pagination
    for number, expected_links in ((1, ["Weiter"]), (2, ["Zurück", "Weiter"]), (3, ["Zurück"])):
        with app.test_request_context("/inbox"):
            html = str(macro(Page([], number, 60), "cases.inbox"))
        links = re.findall(r"<a [^>]*>(.*?)</a>", html)
        assert links == expected_links, (number, html)
        assert "aria-disabled" not in html
        for anchor in re.findall(r"<a [^>]*>", html):
            assert "href=" in anchor


def test_evaluation_rows_have_distinct_labels(world, as_user, submitted):
    html = text_of(as_user(world.coordinator).get("/coordination/evaluation"))
    tables = re.findall(r"<table.*?</table>", html, re.S)
    assert tables
    for table in tables:
        # As a screen reader says them: surrounding white space does not tell two rows apart.
        labels = [" ".join(label.split()) for label in re.findall(r'<th scope="row">(.*?)</th>', table, re.S)]
        assert len(labels) == len(set(labels)), f"rows with the same label: {labels}"


def test_drafts_have_distinct_titles_without_the_childs_name(world, as_user):
    first = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    second = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    db.session.commit()
    teacher = as_user(world.teacher)
    titles = []
    for draft in (first, second):
        for url in (f"/referrals/{draft.id}/edit", f"/referrals/{draft.id}/delete"):
            title = title_of(text_of(teacher.get(url)))
            assert draft.child_first_name not in title and draft.child_last_name not in title, title
            assert f"Entwurf Nr. {draft.id}" in title
            titles.append(title)
    assert len(set(titles)) == len(titles), titles


def test_contact_pages_have_distinct_titles(world, as_user):
    from referral.directory.models import Contact, ContactKind

    contacts = [
        Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["a"], name="Sami Sozial"),
        Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["a"], name="Sara Sozial"),
        Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["b"], name="Bea Beraterin"),
    ]
    db.session.add_all(contacts)
    db.session.commit()
    admin = as_user(world.admin)
    titles = [title_of(text_of(admin.get(f"/contacts/{c.id}/edit"))) for c in contacts]
    titles.append(title_of(text_of(admin.get(f"/contacts/new/school_social_work?school={world.schools['a'].id}"))))
    assert len(set(titles)) == len(titles), titles


def test_required_school_actions_say_so_to_screen_readers(world, as_user):
    referral = draft_of(world)
    html = text_of(as_user(world.teacher).get(f"/referrals/{referral.id}/edit"))
    section = html[html.index('aria-labelledby="s4"') : html.index('aria-labelledby="s5"')]
    legends = re.findall(r'<legend class="fs-6 fw-bold[^"]*">(.*?)</legend>', section, re.S)
    assert legends
    for legend in legends:
        readable = re.sub(r'<span[^>]*aria-hidden="true"[^>]*>.*?</span>', "", legend)
        assert "Pflichtangabe" in re.sub(r"<[^>]+>", "", readable), legend
    radios = [attrs for tag, attrs in Elements(section).tags if tag == "input" and attrs.get("type") == "radio"]
    assert radios and all("required" in attrs for attrs in radios)
