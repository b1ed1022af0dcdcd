"""The whole handover, clicked and typed through by the people who do it: a teacher refers a child,
the ASD acknowledges, takes over, asks, the teacher answers, the ASD assesses, gives feedback, the
teacher reads it and answers the short survey, the ASD closes and answers its own. Only accessible
locators (labels, roles, names)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from referral.cases.models import Referral
from referral.cases.process import State
from referral.extensions import db
from referral.surveys.models import SurveyAnswer
from referral.timeutil import to_local, utcnow

from .. import factories

try:
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)  # a loaded CI machine; argon2 logins take a moment
except ImportError:  # the `browsers` fixture fails the test under CI, or skips it, and says why
    expect = None

pytestmark = pytest.mark.browser

CASE_NUMBER = re.compile(r"WE-\d{4}-\d{4}")


def log_in(page, email: str, name: str) -> None:
    page.goto("/login")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(factories.PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_contain_text(name)


def nav(page, name: str) -> None:
    menu = page.get_by_role("navigation", name="Hauptnavigation")
    toggler = menu.get_by_role("button", name="Menü öffnen")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":  # narrower than 1400 px: collapsed
        # The nav is in the page before Bootstrap's script has run; a click before "load" opens nothing.
        page.wait_for_load_state("load")
        toggler.click()
        expect(toggler).to_have_attribute("aria-expanded", "true")
    menu.get_by_role("link", name=name, exact=True).click()


def flash(page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def state_of(page):
    """The heading of a referral page with the state badge next to it."""
    return page.get_by_role("heading", level=1).locator("xpath=..")


def iso(day: date) -> str:
    return day.isoformat()  # what a date input takes from fill(); the browser shows it as TT.MM.JJJJ


def test_referral_from_school_to_asd_and_back(world, live_server, browsers):
    users = {key: (u.email, u.name) for key, u in world.users.items()}
    ids = {key: u.id for key, u in world.users.items()}
    db.session.commit()  # end the test's read transaction: the server writes to the same database
    today = to_local(utcnow()).date()
    observed, acted, informed = today - timedelta(days=3), today - timedelta(days=2), today - timedelta(days=1)

    # --- The teacher starts a referral and submits it half-filled ------------------------------
    school = browsers.new_page()
    log_in(school, *users["teacher"])
    # First the guide, from the start page: what the referral needs, and what happens after it.
    school.get_by_role("main").get_by_role("link", name="So funktioniert's").click()
    expect(school.get_by_role("heading", level=1)).to_have_text("So funktioniert's: Leitfaden Schule und ASD")
    expect(school.get_by_role("region", name="In akuter Gefahr: sofort anrufen")).to_contain_text("02325 111")
    expect(school.get_by_role("region", name="Die Rückmeldung an die Schule")).to_contain_text(
        "innerhalb von 10 Arbeitstagen"
    )
    nav(school, "Neue Mitteilung")
    expect(school.get_by_role("heading", level=1)).to_have_text("Neue Mitteilung an den ASD")
    child = school.get_by_role("region", name="1. Kind")
    guide_link = child.get_by_role("link", name=re.compile("^Hinweise im Leitfaden zu diesem Abschnitt"))
    expect(guide_link).to_have_attribute("href", re.compile("/leitfaden/#kind$"))
    child.get_by_label("Vorname").fill(factories.CHILD_FIRST)
    child.get_by_label("Klasse").fill("2b")
    observations = school.get_by_role("region", name="3. Beobachtungen")
    observations.get_by_label("Was wurde gesehen oder gehört?").fill("Kommt seit drei Wochen ohne Frühstück und Jacke.")
    school.get_by_role("button", name="Mitteilung einreichen").click()

    summary = school.get_by_role("alert").filter(has_text="Bitte prüfen Sie Ihre Angaben")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Nachname: Bitte den Nachnamen des Kindes angeben.")
    last_name = child.get_by_label("Nachname")
    expect(last_name).to_have_attribute("aria-invalid", "true")
    expect(last_name).to_have_accessible_description(re.compile("Bitte den Nachnamen des Kindes angeben."))
    expect(child.get_by_label("Vorname")).to_have_value(factories.CHILD_FIRST)  # kept
    expect(child.get_by_label("Klasse")).to_have_value("2b")
    expect(observations.get_by_label("Was wurde gesehen oder gehört?")).to_have_value(
        "Kommt seit drei Wochen ohne Frühstück und Jacke."
    )

    # --- ... and completes it ---------------------------------------------------------------------
    last_name.fill(factories.CHILD_LAST)
    child.get_by_label("Geburtsdatum").fill("2018-03-01")
    child.get_by_label("Anschrift").fill("Teststraße 1, 44649 Herne")
    child.get_by_role("group", name="Dolmetschung benötigt").get_by_label("nein").check()

    mother = school.get_by_role("group", name="Person 1")
    expect(mother.get_by_label("Person")).to_have_value("mother")
    mother.get_by_label("Vorname").fill("Mara")
    mother.get_by_label("Nachname").fill(factories.CHILD_LAST)
    mother.get_by_label("Verhältnis zum Kind").select_option(label="leiblicher Elternteil")
    mother.get_by_role("group", name="Sorgeberechtigt").get_by_label("ja").check()
    mother.get_by_label("Telefon").fill("0170 123456")

    observations.get_by_role("checkbox", name="Vernachlässigung").check()
    observations.get_by_label("Datum der Beobachtung").fill(iso(observed))
    observations.get_by_label("Beobachtet von (wer?)").fill("Tina Teacher, Klassenlehrerin")
    observations.get_by_label("Äußerungen des Kindes (wörtlich)").fill("„Mama schläft morgens immer.“")

    done_so_far = school.get_by_role("region", name="4. Was die Schule bereits getan hat")
    rows = [
        ("Gespräch mit den Eltern", True),
        ("Kind einbezogen", True),
        ("Schulleitung einbezogen", True),
        ("Insoweit erfahrene Fachkraft (InsoFa) beraten", False),
        ("Andere Fachkräfte kontaktiert", False),
        ("Hilfe angeboten", True),
    ]
    for legend, done in rows:
        # Each legend says to screen readers, too, that the row is required (issue 11).
        row = done_so_far.get_by_role("group", name=f"{legend} (Pflichtangabe zum Einreichen)", exact=True)
        if done:
            row.get_by_role("radio", name="ja").check()
            row.get_by_label("am", exact=True).fill(iso(acted))
        else:
            row.get_by_role("radio", name="nein").check()
            row.get_by_label("nein, weil …").fill("Wegen der Dringlichkeit noch nicht möglich.")
    done_so_far.get_by_label("Ergebnis des Gesprächs").fill("Mutter lehnt Hilfe ab.")

    informing = school.get_by_role("region", name="5. Information der Betroffenen")
    informing.get_by_role("radio", name="Ja, informiert am").check()
    informing.get_by_label("Informiert am", exact=True).fill(iso(informed))
    school.get_by_role("region", name="6. Dringlichkeit").get_by_role("radio", name=re.compile("^dringend")).check()
    reporter = school.get_by_role("region", name="7. Meldende Person")
    reporter.get_by_label("Name").fill(users["teacher"][1])
    reporter.get_by_label("Funktion").select_option(label="Lehrkraft")
    reporter.get_by_label("Telefon").fill("02325 987654")
    reporter.get_by_label("Erreichbar (wann?)").fill("Mo–Fr 8–13 Uhr")
    school.get_by_role("button", name="Mitteilung einreichen").click()

    heading = school.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Mitteilung WE-\d{4}-\d{4}$"))
    number = CASE_NUMBER.search(heading.inner_text()).group(0)
    flash(school, f"Die Mitteilung {number} wurde an den ASD übermittelt.")
    expect(state_of(school)).to_contain_text("Eingereicht")

    # --- The ASD finds it in the inbox, acknowledges, takes over and asks ---------------------------
    office = browsers.new_page()
    log_in(office, *users["asd"])
    nav(office, "So funktioniert's")
    expect(office.get_by_role("region", name="Eingang und Eingangsbestätigung")).to_contain_text(
        "innerhalb von 2 Stunden"
    )
    nav(office, "Eingang")
    row = office.get_by_role("row").filter(has=office.get_by_role("link", name=number))
    expect(row).to_contain_text(f"{factories.CHILD_FIRST} {factories.CHILD_LAST}")
    expect(row).to_contain_text("dringend")
    row.get_by_role("link", name=number).click()
    expect(office.get_by_role("heading", level=1)).to_have_text(f"Mitteilung {number}")
    expect(state_of(office)).to_contain_text("Eingereicht")
    content = office.get_by_role("region", name="Inhalt der Mitteilung")
    expect(content.get_by_role("listitem")).to_have_text(
        [  # parents, then section 4 in the order of the form
            re.compile(r"^Mutter: Mara Quastenflosser, leiblicher Elternteil, sorgeberechtigt: ja, Tel\. 0170 123456$"),
            re.compile(r"^Gespräch mit den Eltern: ja, am .* – Mutter lehnt Hilfe ab\.$"),
            re.compile(r"^Kind einbezogen: ja, am "),
            re.compile(r"^Schulleitung einbezogen: ja, am "),
            "Insoweit erfahrene Fachkraft (InsoFa) beraten: nein, weil Wegen der Dringlichkeit noch nicht möglich.",
            "Andere Fachkräfte kontaktiert: nein, weil Wegen der Dringlichkeit noch nicht möglich.",
            re.compile(r"^Hilfe angeboten: ja, am "),
        ]
    )
    expect(content).to_contain_text("„Mama schläft morgens immer.“")
    actions = office.get_by_role("region", name="Aktionen")
    actions.get_by_role("button", name="Eingang bestätigen").click()
    flash(office, "Der Eingang wurde bestätigt.")
    actions.get_by_role("button", name="Fall übernehmen").click()
    flash(office, "Sie haben den Fall übernommen.")
    question = "Seit wann fehlt die Jacke? Gibt es Geschwister an der Schule?"
    actions.get_by_label("Rückfrage an die Schule").fill(question)
    actions.get_by_role("button", name="Rückfrage senden").click()
    flash(office, "Die Rückfrage wurde an die Schule gesendet.")

    # --- The teacher answers ------------------------------------------------------------------------
    nav(school, "Meine Mitteilungen")
    school.get_by_role("link", name=number).click()
    expect(school.get_by_role("status").filter(has_text="Der ASD hat eine Rückfrage gestellt")).to_be_visible()
    messages = school.get_by_role("region", name="Rückfragen und Nachträge")
    expect(messages).to_contain_text(question)
    answer = "Seit Oktober. Ein Bruder geht in die 4a."
    messages.get_by_label("Ihre Antwort auf die Rückfrage").fill(answer)
    messages.get_by_role("button", name="Antwort senden").click()
    flash(school, "Ihre Antwort wurde an den ASD übermittelt.")

    # --- The ASD assesses with a colleague and gives feedback ----------------------------------------
    office.reload()
    expect(office.get_by_role("region", name="Rückfragen und Nachträge")).to_contain_text(answer)
    office.get_by_role("link", name="Gefährdungseinschätzung erfassen").click()
    expect(office.get_by_role("heading", level=1)).to_have_text(f"Gefährdungseinschätzung zu {number}")
    office.get_by_role("group", name="Ergebnis der Gefährdungseinschätzung").get_by_role(
        "radio", name="Latente Kindeswohlgefährdung"
    ).check()
    specialists = office.get_by_role("group", name="Beteiligte Fachkräfte des ASD")
    specialists.get_by_role("checkbox", name=users["asd"][1]).check()
    specialists.get_by_role("checkbox", name=users["asd2"][1]).check()
    office.get_by_role("group", name="Schule in die Einschätzung einbezogen?").get_by_role("radio", name="ja").check()
    office.get_by_role("group", name="Maßnahmen").get_by_role("checkbox", name="Hilfeangebot").check()
    office.get_by_role("button", name="Einschätzung speichern").click()
    flash(office, "Die Gefährdungseinschätzung wurde gespeichert.")
    assessment = office.get_by_role("region", name="Gefährdungseinschätzung (nur ASD)")
    expect(assessment).to_contain_text("Latente Kindeswohlgefährdung")
    expect(assessment).to_contain_text(f"{users['asd'][1]}, {users['asd2'][1]}")

    office.get_by_role("link", name="Rückmeldung geben").click()
    expect(office.get_by_role("heading", level=1)).to_have_text(f"Rückmeldung an die Schule zu {number}")
    for legend, choice in (
        ("Haben sich die gewichtigen Anhaltspunkte bestätigt?", "ja"),
        ("Ist der ASD zum Schutz des Kindes tätig geworden?", "ja"),
        ("Ist der ASD weiterhin tätig?", "nein"),
    ):
        office.get_by_role("group", name=legend).get_by_role("radio", name=choice).check()
    expect(office.get_by_label("Ansprechperson im ASD für die Schule")).to_have_value(users["asd"][1])
    office.get_by_label("Telefon der Ansprechperson").fill("02325 111-42")
    office.get_by_role("radio", name="Ja, informiert am").check()
    office.get_by_label("Informiert am", exact=True).fill(iso(today))
    office.get_by_role("checkbox", name=re.compile("nur diese Angaben enthält")).check()
    office.get_by_role("button", name="Rückmeldung geben").click()
    flash(office, "Die Rückmeldung wurde an die Schule gegeben.")
    expect(office.get_by_role("heading", level=1)).to_have_text(f"Mitteilung {number}")

    # --- The teacher reads the feedback ---------------------------------------------------------------
    school.reload()
    feedback = school.get_by_role("region", name="Rückmeldung des ASD (§ 4 Abs. 4 KKG)")
    expect(feedback).to_be_visible()
    expect(feedback.get_by_role("definition")).to_have_text(
        ["ja", "ja", "nein", re.compile(rf"^{re.escape(users['asd'][1])}, 02325 111-42 \(ASD [^)]+\)$")]
    )
    expect(school.get_by_text("Latente Kindeswohlgefährdung")).to_have_count(0)  # the assessment stays with the ASD

    # --- The teacher answers the short survey: once, in the app, on one screen -------------------------
    invitation = school.get_by_role("complementary", name="Kurzumfrage nach der Rückmeldung")
    invitation.get_by_role("link", name=re.compile("Zur Umfrage")).click()
    expect(school.get_by_role("heading", level=1)).to_have_text("Kurzumfrage nach der Rückmeldung")
    school.get_by_role("group", name="Ich wusste, an wen ich mich wenden kann.").get_by_role(
        "radio", name="5 – trifft voll zu"
    ).check()
    school.get_by_role("group", name="Die Rückmeldung kam rechtzeitig.").get_by_role(
        "radio", name="4 – trifft eher zu"
    ).check()
    school.get_by_role("button", name="Antworten senden").click()
    flash(school, "Diese Umfrage ist erledigt")
    expect(school.get_by_role("complementary", name="Kurzumfrage nach der Rückmeldung")).to_have_count(0)

    # --- The ASD closes -----------------------------------------------------------------------------------
    office.get_by_role("region", name="Aktionen").get_by_role("button", name="Abschließen").click()
    flash(office, "Die Mitteilung wurde abgeschlossen.")
    expect(state_of(office)).to_contain_text("Abgeschlossen")
    # The assignee's short survey after closing
    office.get_by_role("complementary", name="Kurzumfrage nach dem Abschluss").get_by_role(
        "link", name=re.compile("Zur Umfrage")
    ).click()
    office.get_by_role("group", name="Die Mitteilung enthielt die nötigen Informationen.").get_by_role(
        "radio", name="4 – trifft eher zu"
    ).check()
    office.get_by_role("button", name="Antworten senden").click()
    flash(office, "Diese Umfrage ist erledigt")
    nav(office, "Eingang")
    office.get_by_label("Status").select_option(label="alle")
    office.get_by_role("button", name="Filtern").click()
    expect(office.get_by_role("row").filter(has=office.get_by_role("link", name=number))).to_contain_text(
        "Abgeschlossen"
    )
    nav(school, "Meine Mitteilungen")
    expect(school.get_by_role("row").filter(has=school.get_by_role("link", name=number))).to_contain_text(
        "Abgeschlossen"
    )

    # --- What the browser and the server saw -----------------------------------------------------------
    assert browsers.requests, "no request was recorded"
    assert browsers.foreign_requests() == [], "the pages requested hosts other than 127.0.0.1"
    assert browsers.page_errors == [], "JavaScript errors on the pages"
    assert browsers.server_errors == [], "the server answered with 5xx"
    assert live_server.errors == [], "\n".join(live_server.errors)

    stored = db.session.scalar(select(Referral).where(Referral.number == number))
    assert stored.state is State.CLOSED
    assert stored.author_id == ids["teacher"] and stored.assignee_id == ids["asd"]
    assert {u.id for u in stored.assessment.specialists} == {ids["asd"], ids["asd2"]}
    assert len(stored.persons) == 1
    answers = db.session.execute(select(SurveyAnswer.question_set, SurveyAnswer.a1, SurveyAnswer.a2)).all()
    assert sorted(answers) == [("closing", 4, None), ("feedback", 5, 4)]
    assert {a.kind.label: a.done for a in stored.school_actions} == dict(rows)
