"""The Fachberatung clicked through: a teacher asks the InsoFa pool (and is stopped from typing an
address), an InsoFa accepts, arranges a call and recommends informing the ASD, the teacher reads the
recommendation and starts the referral from it. Only accessible locators (labels, roles, names)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from referral.cases.models import Referral
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState
from referral.extensions import db
from referral.timeutil import to_local, utcnow

from .test_walkthrough import expect, flash, log_in, nav

pytestmark = pytest.mark.browser

OBSERVED = "Das Kind kommt seit Wochen ohne Frühstück und schläft im Unterricht ein."


def test_consultation_from_question_to_referral(world, live_server, browsers):
    users = {key: (u.email, u.name) for key, u in world.users.items()}
    db.session.commit()  # end the test's read transaction: the server writes to the same database

    # --- The teacher asks, first with an address in the text ----------------------------------------
    school = browsers.new_page()
    log_in(school, *users["teacher"])
    nav(school, "Fachberatung")
    school.get_by_role("link", name="Fachberatung anfragen").click()
    expect(school.get_by_role("note")).to_contain_text("keine Namen, keine Geburtsdaten und keine Anschriften")
    school.get_by_label("Alter des Kindes (Jahre)").fill("8")
    school.get_by_role("group", name="Klassenstufe").get_by_label("2", exact=True).check()
    school.get_by_role("checkbox", name="Vernachlässigung").check()
    observations = school.get_by_label("Beobachtungen")
    observations.fill(OBSERVED + " Die Familie wohnt in der Bahnhofstraße 12.")
    school.get_by_label("Ihre Frage an die InsoFa").fill("Reicht das für eine Mitteilung an den ASD?")
    school.get_by_role("radio", name=re.compile("^normal")).check()
    school.get_by_role("group", name="Wie möchten Sie beraten werden?").get_by_label("Telefon").check()
    school.get_by_label("Wann sind Sie gut erreichbar?").fill("Mo–Do 13–15 Uhr")
    school.get_by_label("Ich habe keine Namen, Geburtsdaten oder Anschriften eingetragen").check()
    school.get_by_role("button", name="Anfrage an den InsoFa-Pool senden").click()

    expect(school.get_by_role("alert").filter(has_text="Bitte prüfen Sie Ihre Angaben")).to_be_focused()
    expect(observations).to_have_attribute("aria-invalid", "true")
    expect(observations).to_have_accessible_description(re.compile("sieht nach einer Anschrift aus"))
    expect(school.get_by_label("Wann sind Sie gut erreichbar?")).to_have_value("Mo–Do 13–15 Uhr")  # kept
    observations.fill(OBSERVED)
    school.get_by_role("button", name="Anfrage an den InsoFa-Pool senden").click()
    flash(school, "Ihre Anfrage wurde an den Pool")
    heading = school.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Fachberatung FB-\d{4}-\d{4}$"))
    number = heading.inner_text().split()[-1]

    # --- An InsoFa of the pool accepts, arranges a call and recommends ----------------------------------
    insofa = browsers.new_page()
    log_in(insofa, *users["insofa"])
    expect(insofa.get_by_role("heading", level=1)).to_contain_text("Fachberatung")  # the InsoFa's start page
    insofa.get_by_role("link", name=number).click()
    expect(insofa.get_by_text(OBSERVED)).to_be_visible()
    insofa.get_by_role("button", name="Anfrage annehmen").click()
    flash(insofa, "Sie haben die Anfrage angenommen.")
    when = (to_local(utcnow()) + timedelta(days=1)).replace(hour=14, minute=30)
    insofa.get_by_label("Datum und Uhrzeit").fill(when.strftime("%Y-%m-%dT%H:%M"))
    insofa.get_by_role("group", name="Form des Gesprächs").get_by_label("Telefon").check()
    insofa.get_by_role("button", name="Termin speichern").click()
    flash(insofa, "Der Termin wurde gespeichert")
    expect(insofa.get_by_label("Datum und Uhrzeit")).to_have_value(when.strftime("%Y-%m-%dT%H:%M"))  # shown again
    insofa.get_by_role("button", name="Empfehlung speichern und Beratung abschließen").click()  # nothing chosen
    expect(insofa.get_by_role("radio", name=re.compile("^Keine gewichtigen Anhaltspunkte"))).to_be_focused()
    # The call took place a moment ago after all: the appointment is corrected before the advice is recorded.
    just_now = to_local(utcnow()).replace(second=0, microsecond=0) - timedelta(minutes=5)
    insofa.get_by_label("Datum und Uhrzeit").fill(just_now.strftime("%Y-%m-%dT%H:%M"))
    insofa.get_by_role("button", name="Termin ändern").click()
    flash(insofa, "Der Termin wurde gespeichert")
    insofa.get_by_role("radio", name=re.compile("^Den ASD informieren")).check()
    insofa.get_by_label("Hinweise für die Schule (optional, ohne Namen)").fill("Bitte heute noch den ASD informieren.")
    insofa.get_by_role("button", name="Empfehlung speichern und Beratung abschließen").click()
    flash(insofa, "Die Empfehlung wurde gespeichert")

    # --- The teacher reads it and starts the referral from it ---------------------------------------------
    nav(school, "Fachberatung")
    row = school.get_by_role("row").filter(has=school.get_by_role("link", name=number))
    expect(row).to_contain_text("Beraten")
    row.get_by_role("link", name=number).click()
    recommendation = school.get_by_role("region", name="Empfehlung der insoweit erfahrenen Fachkraft")
    expect(recommendation).to_contain_text("Den ASD informieren")
    expect(recommendation).to_contain_text("Bitte heute noch den ASD informieren.")
    recommendation.get_by_role("button", name="Mitteilung an den ASD beginnen").click()
    expect(school.get_by_role("heading", level=1)).to_have_text("Mitteilung an den ASD – Entwurf")
    expect(school.get_by_text(re.compile(r"InsoFa beraten am \d{2}\.\d{2}\.\d{4}"))).to_be_visible()
    expect(school.get_by_label("Was wurde gesehen oder gehört?")).to_have_value(OBSERVED)

    assert browsers.foreign_requests() == [], "the pages requested hosts other than 127.0.0.1"
    assert browsers.page_errors == [], "JavaScript errors on the pages"
    assert browsers.server_errors == [], "the server answered with 5xx"
    assert live_server.errors == [], "\n".join(live_server.errors)
    stored = db.session.scalar(select(Consultation).where(Consultation.number == number))
    assert stored.state is ConsultationState.ANSWERED and stored.insofa_id == world.insofa.id
    assert db.session.scalar(select(Referral.consultation_id).where(Referral.consultation_id == stored.id)) == stored.id
