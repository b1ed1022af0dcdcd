"""The guide ("So funktioniert's", issue 17): versions, the numbers it shows from the settings and the
directory, the sanitised Markdown, what is new for each user, old versions, the audit and the editor."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.directory.models import Contact, ContactKind
from referral.extensions import db
from referral.guide import operations
from referral.guide.defaults import DEFAULT_TEXTS
from referral.guide.forms import NOTE_MAX, TEXT_MAX, field_name
from referral.guide.models import GuideVersion
from referral.guide.rendering import render
from referral.guide.sections import FORM_SECTIONS, KEYS
from referral.guide.versions import current_number, published_versions
from referral.kernel.settings import Setting

from .conftest import csrf_token
from .test_workflow import QueryCounter

EDIT = "/leitfaden/bearbeiten"


def editor_form(client, **changes) -> dict:
    """The editor as it opens (prefilled with the newest texts and its base version), with `changes`."""
    page = client.get(EDIT).get_data(as_text=True)
    data = {"csrf_token": csrf_token(client, EDIT), "note": "vereinbart im Seminar am 3. März"}
    data["base"] = re.search(r'name="base"[^>]*value="([^"]*)"', page).group(1)
    for key in KEYS:  # what a browser sends back: the textareas' contents
        found = re.search(rf'<textarea[^>]*name="{field_name(key)}"[^>]*>(.*?)</textarea>', page, re.DOTALL)
        data[field_name(key)] = html.unescape(found.group(1)).removeprefix("\r\n")
    for key, text in changes.items():
        data[field_name(key.replace("_", "-")) if key not in ("note", "base") else key] = text
    return data


def publish(world, note="Grundfassung", **texts) -> GuideVersion:
    """The next version: the newest texts with `texts` changed."""
    newest = operations.version()
    merged = {**newest.texts, **{key.replace("_", "-"): text for key, text in texts.items()}}
    version = operations.publish(world.coordinator, current_number(), note, merged)
    db.session.commit()
    return version


# --- Rendering ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown, forbidden",
    [
        ("<script>alert(1)</script>", "<script"),
        ('<div onclick="x()">Hallo</div>', "<div"),
        ("[Klick](https://example.org)", "<a"),
        ("[Klick](javascript:alert(1))", "<a"),
        ("![Bild](https://example.org/x.png)", "<img"),
        ("<img src=x onerror=alert(1)>", "<img"),
        ("<https://example.org>", "<a"),
        ("    eingerückter Code", "<code"),
        ("> Zitat", "<blockquote"),
    ],
)
def test_only_headings_paragraphs_lists_and_emphasis_come_through(markdown, forbidden):
    html = render(markdown)
    assert forbidden not in html
    assert re.fullmatch(r"(?s)(\s*</?(p|h[4-6]|ul|ol|li|em|strong)>|[^<])*", str(html)), html


def test_headings_move_below_the_pages_own_and_lists_stay():
    html = render("# Titel\n\n## Unter\n\n#### Tief\n\n- eins\n- *zwei*\n\n1. **drei**")
    assert "<h4>Titel</h4>" in html and "<h5>Unter</h5>" in html and "<h6>Tief</h6>" in html
    assert "<h1" not in html and "<h2" not in html and "<h3" not in html
    assert str(render("## Zweite Ebene zuerst")) == "<h4>Zweite Ebene zuerst</h4>\n", "no level skipped"
    assert "<ul>\n<li>eins</li>\n<li><em>zwei</em></li>" in html and "<ol>\n<li><strong>drei</strong></li>" in html


def test_javascript_url_text_stays_inert_text():
    html = render("[x](javascript:alert(1)) <a href='javascript:alert(1)'>y</a>")
    assert "<a" not in html and not re.search(r"<[^>]*href", html)
    assert "&lt;a href=" in html, "shown as the text it is"


# --- The numbers come from the settings and the directory --------------------------------------------


def test_the_guide_shows_the_deadlines_as_set_and_follows_a_change(world, as_user):
    teacher = as_user(world.teacher)
    page = teacher.get("/leitfaden/").get_data(as_text=True)
    assert "innerhalb von 10 Arbeitstagen" in page and "innerhalb von 2 Stunden" in page
    db.session.add_all([Setting(key="feedback_working_days", value=7), Setting(key="ack_acute_hours", value=1)])
    db.session.commit()
    page = teacher.get("/leitfaden/").get_data(as_text=True)
    assert "innerhalb von 7 Arbeitstagen" in page and "innerhalb von 1 Stunde" in page
    assert "10 Arbeitstagen" not in page and "{Frist" not in page


def test_each_user_sees_their_own_districts_duty_phone_and_the_coordinator_all(world, as_user):
    world.districts["we"].duty_phone = "02325 777 000"
    db.session.add(Contact(kind=ContactKind.INSOFA, name="Ines Pool", phone="02323 4000"))
    db.session.add(Contact(kind=ContactKind.ASD_CONTACT, school=world.schools["a"], name="Anna Kontakt"))
    db.session.add(Contact(kind=ContactKind.ASD_CONTACT, school=world.schools["b"], name="Bodo Kontakt"))
    db.session.commit()
    teacher = as_user(world.teacher).get("/leitfaden/").get_data(as_text=True)
    assert "02325 777 000" in teacher and "Mo–Fr 8–16" in teacher and "02323 222" not in teacher
    assert "Ines Pool" in teacher and "Anna Kontakt" in teacher and "Bodo Kontakt" not in teacher
    asd_hm = as_user(world.asd_hm).get("/leitfaden/").get_data(as_text=True)
    assert "02323 222" in asd_hm and "02325 777 000" not in asd_hm and "Anna Kontakt" not in asd_hm
    coordinator = as_user(world.coordinator).get("/leitfaden/").get_data(as_text=True)
    assert "02323 222" in coordinator and "02325 777 000" in coordinator and "110" in coordinator


def test_placeholders_in_an_edited_text_follow_the_settings(world, as_user):
    publish(world, dringlichkeit="Bestätigung binnen {Frist Eingangsbestätigung akut}.")
    db.session.add(Setting(key="ack_acute_hours", value=3))
    db.session.commit()
    assert "Bestätigung binnen 3 Stunden." in as_user(world.asd).get("/leitfaden/").get_data(as_text=True)


# --- Versions, what is new, old versions -------------------------------------------------------------


def test_without_a_version_the_built_in_texts_show_and_the_api_says_none(world, as_user):
    assert current_number() is None and published_versions() == []
    page = as_user(world.teacher).get("/leitfaden/").get_data(as_text=True)
    assert "Grundfassung" in page and "Dieses Programm ersetzt <strong>keinen Anruf</strong>" in page
    for key in KEYS:
        assert f'id="{key}"' in page


def test_what_is_new_since_the_last_visit_and_the_start_page_notice(world, as_user):
    publish(world, note="Grundfassung")
    teacher = as_user(world.teacher)
    assert "Neu im Leitfaden" in teacher.get("/school").get_data(as_text=True), "never seen: a notice"
    first = teacher.get("/leitfaden/").get_data(as_text=True)
    assert "Was ist neu seit Ihrem letzten Besuch" not in first
    assert "Neu im Leitfaden" not in teacher.get("/school").get_data(as_text=True)

    publish(world, note="vereinbart im Seminar am 3. März", rueckmeldung="Neue Regel zur Rückmeldung.")
    publish(world, note="Tippfehler")
    assert "Neu im Leitfaden" in teacher.get("/school").get_data(as_text=True)
    assert "Neu im Leitfaden" in as_user(world.asd).get("/inbox").get_data(as_text=True)
    assert "Neu im Leitfaden" in as_user(world.coordinator).get("/coordination/referrals").get_data(as_text=True)
    assert "Neu im Leitfaden" in as_user(world.insofa).get("/consultations/").get_data(as_text=True)
    assert "Neu im Leitfaden" in as_user(world.admin).get("/admin/").get_data(as_text=True)
    page = teacher.get("/leitfaden/").get_data(as_text=True)
    news = page[page.index("Was ist neu seit Ihrem letzten Besuch") : page.index("inhalt-titel")]
    assert "Version 2" in news and "vereinbart im Seminar am 3. März" in news and "Version 3" in news
    assert "Version 1 " not in news
    changed = re.findall(r'<h3 id="([^"]+)"[^>]*>[^<]*<span class="badge[^"]*">geändert', page)
    assert changed == ["rueckmeldung"]
    assert "Neu im Leitfaden" not in teacher.get("/school").get_data(as_text=True)
    assert "Was ist neu seit" not in teacher.get("/leitfaden/").get_data(as_text=True), "seen now"


def test_old_versions_stay_readable(world, as_user):
    publish(world, note="Erste Fassung", akut="Alter Text zum Notfall.")
    publish(world, note="Zweite Fassung", akut="Neuer Text zum Notfall.")
    assert [(n, note) for n, _, note in published_versions()] == [(1, "Erste Fassung"), (2, "Zweite Fassung")]
    assert current_number() == 2
    reader = as_user(world.insofa)
    listing = reader.get("/leitfaden/versionen").get_data(as_text=True)
    assert "Erste Fassung" in listing and 'href="/leitfaden/version/1"' in listing
    old = reader.get("/leitfaden/version/1").get_data(as_text=True)
    assert "Alter Text zum Notfall." in old and "Neuer Text" not in old and "ältere Version" in old
    assert reader.get("/leitfaden/version/3").status_code == 404


# --- Editing -----------------------------------------------------------------------------------------


def test_the_coordinator_publishes_the_next_version_and_it_is_audited(world, as_user):
    coordinator = as_user(world.coordinator)
    form = editor_form(coordinator, fachberatung="# Neu\n\nFragen Sie **früh**.")
    assert form["base"] == "" and form[field_name("akut")] == DEFAULT_TEXTS["akut"].strip()
    response = coordinator.post(EDIT, data=form)
    assert response.status_code == 302 and response.location.endswith("/leitfaden/")
    assert current_number() == 1
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "guide.publish")).one()
    assert entry.actor_id == world.coordinator.id and entry.object_id == str(db.session.scalar(select(GuideVersion.id)))
    assert entry.fields == ["fachberatung", "note"]
    page = as_user(world.teacher).get("/leitfaden/").get_data(as_text=True)
    assert "<h4>Neu</h4>" in page and "Fragen Sie <strong>früh</strong>." in page

    second = editor_form(coordinator, note="Zweite")
    assert second["base"] == "1" and second[field_name("fachberatung")].startswith("# Neu")
    assert coordinator.post(EDIT, data=second).status_code == 302
    assert current_number() == 2


def test_a_concurrent_save_keeps_the_text_with_a_german_message(world, as_user):
    coordinator = as_user(world.coordinator)
    tab_one = editor_form(coordinator, akut="Text aus Tab eins")
    tab_two = editor_form(coordinator, akut="Text aus Tab zwei")
    assert coordinator.post(EDIT, data=tab_one).status_code == 302
    lost = coordinator.post(EDIT, data=tab_two)
    html = lost.get_data(as_text=True)
    assert lost.status_code == 422
    assert "inzwischen gibt es eine neuere Version" in html and "Text aus Tab zwei" in html
    assert current_number() == 1
    assert re.search(r'name="base"[^>]*value="1"', html), "a second save builds on version 1, knowingly"


def test_two_saves_racing_past_the_check_leave_one_version_and_no_error(world, as_user, monkeypatch):
    """Both requests read the same newest number; the unique number lets only the first commit."""
    coordinator = as_user(world.coordinator)
    form = editor_form(coordinator, akut="Mein Text")
    publish(world, note="Die andere Koordination war schneller")
    monkeypatch.setattr(operations, "current_number", lambda: None)  # as if read before the other commit
    response = coordinator.post(EDIT, data=form)
    assert response.status_code == 422
    assert "Mein Text" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(GuideVersion)) == 1


def test_german_errors_keep_the_typed_text(world, as_user):
    coordinator = as_user(world.coordinator)
    form = editor_form(
        coordinator,
        note="",
        kind="Bitte innerhalb von {Frist Eingang} melden.",
        eltern="x" * (TEXT_MAX + 1),
    )
    response = coordinator.post(EDIT, data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and current_number() is None
    assert "Bitte kurz beschreiben, was neu ist" in html
    assert "Unbekannter Platzhalter „{Frist Eingang}“" in html and "{Frist Rückmeldung}" in html
    assert f"Höchstens {TEXT_MAX} Zeichen." in html
    assert "Bitte innerhalb von {Frist Eingang} melden." in html
    long_note = coordinator.post(EDIT, data=editor_form(coordinator, note="n" * (NOTE_MAX + 1)))
    assert long_note.status_code == 422 and f"Höchstens {NOTE_MAX} Zeichen." in long_note.get_data(as_text=True)
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "guide.publish")) == 0
    )


def test_only_the_coordinator_edits(world, as_user):
    for key in ("teacher", "school_lead", "asd_lead", "insofa", "admin"):
        client = as_user(world.users[key])
        assert client.get("/leitfaden/").status_code == 200
        assert client.get(EDIT).status_code == 403
    assert 'href="/leitfaden/bearbeiten"' in as_user(world.coordinator).get("/leitfaden/").get_data(as_text=True)


# --- Links and cost ----------------------------------------------------------------------------------


def test_the_start_page_and_every_section_of_the_referral_form_link_the_guide(world, as_user):
    teacher = as_user(world.teacher)
    assert 'href="/leitfaden/"' in teacher.get("/school").get_data(as_text=True)
    form = teacher.get("/referrals/new").get_data(as_text=True)
    for number, key in FORM_SECTIONS.items():
        assert f'href="/leitfaden/#{key}" target="_blank" rel="noopener" aria-describedby="s{number}"' in form
    guide = teacher.get("/leitfaden/").get_data(as_text=True)
    assert all(f'<h3 id="{key}"' in guide for key in FORM_SECTIONS.values())


def test_the_guide_runs_a_bounded_number_of_queries(world, as_user):
    coordinator = as_user(world.coordinator)
    publish(world, note="eins")
    coordinator.get("/leitfaden/")
    publish(world, note="zwei", akut="anders")
    with QueryCounter(db.engine) as few:
        assert coordinator.get("/leitfaden/").status_code == 200
    for number in range(3, 8):
        publish(world, note=f"Version {number}", akut=f"Text {number}")
    for index in range(20):
        db.session.add(Contact(kind=ContactKind.INSOFA, name=f"Fachkraft {index}"))
    db.session.commit()
    with QueryCounter(db.engine) as many:
        assert coordinator.get("/leitfaden/").status_code == 200
    assert many.count == few.count


def test_the_demo_has_two_versions_and_the_second_is_news_to_everyone(runner, as_user):
    from referral.accounts.models import User

    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    assert [number for number, _, _ in published_versions()] == [1, 2]
    teacher = db.session.scalar(select(User).where(User.email == "lehrkraft@demo.example"))
    client = as_user(teacher)
    assert "Neu im Leitfaden" in client.get("/school").get_data(as_text=True)
    page = client.get("/leitfaden/").get_data(as_text=True)
    assert "vereinbart im Seminar am 12. November" in page
    assert re.findall(r'<h3 id="([^"]+)"[^>]*>[^<]*<span class="badge[^"]*">geändert', page) == ["beobachtungen"]


def test_what_a_user_saw_never_goes_back(world):
    operations.mark_seen(world.teacher, 3)
    operations.mark_seen(world.teacher, 2)
    assert operations.last_seen(world.teacher) == 3
    operations.mark_seen(world.teacher, 4)
    assert operations.last_seen(world.teacher) == 4
