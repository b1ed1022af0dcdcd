"""The ASD's side of the handover through the real pages, and the lists both sides work from."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from referral.cases.models import Referral
from referral.cases.process import State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories


@pytest.fixture(autouse=True)
def no_csrf(app):
    app.config["WTF_CSRF_ENABLED"] = False


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_the_whole_handover_through_the_pages(world, as_user):
    teacher, asd = as_user(world.teacher), as_user(world.asd)
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    rid = referral.id

    inbox = text_of(asd.get("/inbox"))
    assert referral.number in inbox and factories.CHILD_LAST in inbox

    assert "Der Eingang wurde bestätigt." in text_of(asd.post(f"/referrals/{rid}/acknowledge", follow_redirects=True))
    assert "Sie haben den Fall übernommen." in text_of(asd.post(f"/referrals/{rid}/take-over", follow_redirects=True))
    page = text_of(
        asd.post(f"/referrals/{rid}/ask", data={"ask-body": "Wie oft fehlt das Kind?"}, follow_redirects=True)
    )
    assert "Rückfrage wurde an die Schule gesendet" in page

    mine = text_of(teacher.get("/referrals"))
    assert "neu: Rückfrage/Rückmeldung" in mine, "the school sees that a question arrived"
    page = text_of(teacher.get(f"/referrals/{rid}"))
    assert "Wie oft fehlt das Kind?" in page and "Rückfrage beantworten" not in page or "Antwort senden" in page
    assert "neu: Rückfrage/Rückmeldung" not in text_of(teacher.get("/referrals")), "opened: no longer new"
    teacher.post(f"/referrals/{rid}/answer", data={"answer-body": "Jeden Montag."})
    assert "neu: Antwort/Nachtrag" in text_of(asd.get("/inbox"))

    bad = asd.post(
        f"/referrals/{rid}/assessment",
        data={
            "result": "latent",
            "specialists": [str(world.asd.id)],
            "school_involved": "yes",
            "measures": ["help_offer"],
        },
    )
    assert bad.status_code == 422 and "mindestens zwei" in text_of(bad)
    good = asd.post(
        f"/referrals/{rid}/assessment",
        data={
            "result": "latent",
            "specialists": [str(world.asd.id), str(world.asd2.id)],
            "school_involved": "yes",
            "measures": ["help_offer"],
        },
        follow_redirects=True,
    )
    assert "Gefährdungseinschätzung wurde gespeichert" in text_of(good)

    missing = asd.post(f"/referrals/{rid}/feedback", data={"indications_confirmed": "yes"})
    assert missing.status_code == 422 and "Bitte bestätigen." in text_of(missing)
    given = asd.post(
        f"/referrals/{rid}/feedback",
        data={
            "indications_confirmed": "yes",
            "asd_became_active": "yes",
            "asd_still_active": "no",
            "contact_name": "Anna ASD",
            "contact_phone": "0234 1",
            "affected_informed": "no_endangers",
            "affected_informed_reason": "Gefahr für das Kind",
            "confirm": "y",
        },
        follow_redirects=True,
    )
    assert "Rückmeldung wurde an die Schule gegeben" in text_of(given)

    school_view = text_of(teacher.get(f"/referrals/{rid}"))
    assert "Rückmeldung des ASD" in school_view and "Anna ASD, 0234 1" in school_view
    assert "Gefahr für das Kind" not in school_view, "why those affected were not told stays with the ASD"
    assert "Latente Kindeswohlgefährdung" not in school_view

    assert "abgeschlossen" in text_of(asd.post(f"/referrals/{rid}/close", follow_redirects=True))
    db.session.expire_all()
    assert db.session.get(Referral, rid).state is State.CLOSED


def test_a_stale_click_gets_the_process_refusal(world, as_user):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    page = text_of(as_user(world.asd2).post(f"/referrals/{referral.id}/acknowledge", follow_redirects=True))
    assert "„Eingang bestätigen“ ist im Status „Eingang bestätigt“ nicht möglich." in page


def test_only_the_assignee_or_the_lead_work_on_the_case(world, as_user):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    refused = as_user(world.asd2).post(f"/referrals/{referral.id}/ask", data={"ask-body": "?"}, follow_redirects=True)
    assert "Den Fall bearbeitet inzwischen Anna ASD" in text_of(refused)
    assert not db.session.get(Referral, referral.id).messages
    assert (
        as_user(world.asd_lead)
        .post(f"/referrals/{referral.id}/ask", data={"ask-body": "Frage der Leitung"})
        .status_code
        == 302
    )


def test_the_lead_assigns_and_reassigns(world, as_user):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    lead = as_user(world.asd_lead)
    lead.post(f"/referrals/{referral.id}/assign", data={"assignee": world.asd2.id})
    db.session.expire_all()
    assert (referral.state, referral.assignee_id) == (State.IN_ASSESSMENT, world.asd2.id)
    lead.post(f"/referrals/{referral.id}/assign", data={"assignee": world.asd.id})
    db.session.expire_all()
    assert (referral.state, referral.assignee_id) == (State.IN_ASSESSMENT, world.asd.id)
    refused = lead.post(f"/referrals/{referral.id}/assign", data={"assignee": world.asd_hm.id})
    assert refused.status_code == 422, "staff of other districts are not offered"


def test_transfer_hands_the_referral_to_the_other_district(world, as_user):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    response = as_user(world.asd).post(
        f"/referrals/{referral.id}/transfer", data={"to_district": world.districts["hm"].id, "reason": ""}
    )
    assert response.status_code == 422 and "Grund der Abgabe" in text_of(response)
    response = as_user(world.asd).post(
        f"/referrals/{referral.id}/transfer",
        data={"to_district": world.districts["hm"].id, "reason": "Wohnort der Eltern"},
    )
    assert response.headers["Location"].endswith("/inbox"), "the sender no longer sees it"
    assert as_user(world.asd).get(f"/referrals/{referral.id}").status_code == 404
    assert referral.number in text_of(as_user(world.asd_hm).get("/inbox"))
    assert "Wohnort der Eltern" in text_of(as_user(world.asd_hm).get(f"/referrals/{referral.id}"))
    school = text_of(as_user(world.teacher).get(f"/referrals/{referral.id}"))
    assert "von Wanne-Eickel an Herne-Mitte" in school and "Wohnort der Eltern" not in school, "that and where, not why"


def test_addendum_from_the_school_keeps_the_state(world, as_user):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    as_user(world.teacher).post(f"/referrals/{referral.id}/addendum", data={"addendum-body": "Neue Beobachtung."})
    db.session.expire_all()
    assert referral.state is State.IN_ASSESSMENT and referral.messages[-1].body == "Neue Beobachtung."
    empty = as_user(world.teacher).post(f"/referrals/{referral.id}/addendum", data={"addendum-body": ""})
    assert empty.status_code == 422 and "Bitte einen Text eingeben." in text_of(empty)


def test_overdue_referrals_are_marked_in_every_list(world, as_user):
    old = utcnow() - timedelta(days=30)
    overdue = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=old)
    for user, url in (
        (world.asd, "/inbox"),
        (world.teacher, "/referrals"),
        (world.school_lead, "/referrals"),
        (world.coordinator, "/coordination/referrals"),
    ):
        page = text_of(as_user(user).get(url))
        assert overdue.number in page and "Eingangsbestätigung überfällig" in page, (user.email, url)
    only_overdue = text_of(as_user(world.asd).get("/inbox?state=open&overdue=y"))
    fresh = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, now=utcnow())
    assert fresh.number not in text_of(as_user(world.asd).get("/inbox?state=open&overdue=y"))
    assert overdue.number in only_overdue


def test_inbox_puts_acute_first(world, as_user):
    now = utcnow()
    clarify = factories.referral_in(
        State.SUBMITTED, world.teacher, world.asd, urgency=factories.Urgency.CLARIFY, now=now - timedelta(hours=3)
    )
    acute = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, urgency=factories.Urgency.ACUTE, now=now)
    page = text_of(as_user(world.asd).get("/inbox"))
    assert page.index(acute.number) < page.index(clarify.number)


class QueryCounter:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self.tick)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self.tick)

    def tick(self, connection, cursor, statement, *args):
        if not statement.startswith("SET LOCAL statement_timeout"):  # a setting per transaction, not a query
            self.count += 1


@pytest.mark.parametrize(
    "url_for_user", [("asd", "/inbox"), ("school_lead", "/referrals"), ("coordinator", "/coordination/referrals")]
)
def test_lists_run_a_bounded_number_of_queries(world, as_user, url_for_user):
    who, url = url_for_user
    client = as_user(getattr(world, who))
    base = datetime(2026, 11, 2, 9)
    factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd, now=base)
    with QueryCounter(db.engine) as few:
        assert client.get(url).status_code == 200
    for i in range(30):
        factories.referral_in(
            State.IN_ASSESSMENT if i % 2 else State.SUBMITTED, world.teacher, world.asd, now=base + timedelta(hours=i)
        )
    with QueryCounter(db.engine) as many:
        page = text_of(client.get(url))
    assert "Seite 1 von 2" in page, "paginated"
    assert many.count == few.count, f"{few.count} queries for 1 referral, {many.count} for 31"


def test_referral_page_runs_a_bounded_number_of_queries(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    client, url = as_user(world.asd), f"/referrals/{referral.id}"
    with QueryCounter(db.engine) as before:
        client.get(url)
    for i in range(10):
        factories.services.add_addendum(referral, world.teacher, f"Nachtrag {i}")
    db.session.commit()
    with QueryCounter(db.engine) as after:
        client.get(url)
    assert after.count == before.count
    assert after.count <= 26, (
        "one query per part of the referral, not per row (3 write the audit entry, 1 counts unread notifications)"
    )


def test_a_server_error_shows_a_german_page_and_writes_nothing(world, as_user, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def half_done(referral, actor, **kwargs):
        referral.acknowledged_at = utcnow()
        referral.state = State.ACKNOWLEDGED
        db.session.flush()
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(factories.services, "acknowledge", half_done)
    response = as_user(world.asd).post(f"/referrals/{referral.id}/acknowledge")
    assert response.status_code == 500
    assert "Ihre Eingaben wurden nicht gespeichert" in text_of(response) and "Traceback" not in text_of(response)
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED


def test_feedback_after_the_referral_was_transferred_away_explains_it(world, as_user):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    factories.record_assessment(referral, world.asd, world.asd_lead)
    factories.services.transfer(referral, world.asd_lead, world.districts["hm"], "Wohnort der Eltern")
    db.session.commit()
    response = as_user(world.asd).post(
        f"/referrals/{referral.id}/feedback", data={"confirm": "y"}, follow_redirects=True
    )
    page = text_of(response)
    assert response.request.path == "/inbox"
    assert f"{referral.number} wurde inzwischen von Lars ASDLead an den Bezirk Herne-Mitte abgegeben" in page


def test_a_colleague_who_took_the_case_over_is_named(world, as_user):
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    stale_page = as_user(world.asd2)
    factories.services.take_over(referral, world.asd)
    db.session.commit()
    response = stale_page.post(
        f"/referrals/{referral.id}/transfer",
        data={"to_district": world.districts["hm"].id, "reason": "x"},
        follow_redirects=True,
    )
    assert "Den Fall bearbeitet inzwischen Anna ASD" in text_of(response)
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).district_id == world.districts["we"].id


def test_deleting_a_draft_that_was_submitted_meanwhile_is_refused(world, as_user, app):
    referral = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    stale = db.session.get(Referral, referral.id)
    version = stale.version
    factories.services.submit(stale, world.teacher)
    db.session.commit()
    response = as_user(world.teacher).post(f"/referrals/{referral.id}/delete", follow_redirects=True)
    assert "nicht möglich" in text_of(response)
    assert db.session.get(Referral, referral.id).state is State.SUBMITTED and version < stale.version


def test_no_addendum_after_closing(world, as_user):
    referral = factories.referral_in(State.CLOSED, world.teacher, world.asd)
    page = text_of(as_user(world.teacher).get(f"/referrals/{referral.id}"))
    assert "Nachtrag senden" not in page and "abgeschlossen" in page
    response = as_user(world.teacher).post(
        f"/referrals/{referral.id}/addendum", data={"addendum-body": "spät"}, follow_redirects=True
    )
    assert "nicht möglich" in text_of(response)
    assert not db.session.get(Referral, referral.id).messages


def test_the_feedback_form_refuses_still_active_without_having_become_active(world, as_user):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    factories.record_assessment(referral, world.asd, world.asd_lead)
    db.session.commit()
    response = as_user(world.asd).post(
        f"/referrals/{referral.id}/feedback",
        data={
            "indications_confirmed": "no",
            "asd_became_active": "no",
            "asd_still_active": "yes",
            "contact_name": "A",
            "contact_phone": "1",
            "affected_informed": "yes",
            "affected_informed_on": "2026-11-01",
            "confirm": "y",
        },
    )
    assert response.status_code == 422 and "nur sein, wenn er tätig geworden ist" in text_of(response)


def test_message_errors_are_shown_at_the_field_with_focus(world, as_user):
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    response = as_user(world.asd).post(f"/referrals/{referral.id}/ask", data={"ask-body": ""})
    html = text_of(response)
    assert response.status_code == 422
    assert 'data-focus="ask-body"' in html and 'id="ask-body-fehler"' in html
