"""The anonymous short surveys (issue 17): the one-time invitation after the feedback (author and school
lead) and after closing (the assignee), declining, a second submit, the anonymity of the stored answers
(schema and rows), the quarterly round for the chosen districts, the free-text guard and batches of at
least 5, and the results in the evaluation against hand-computed values, with groups below 5 hidden."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text

from referral.accounts.models import User
from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db
from referral.guide.models import GuideVersion
from referral.surveys import services
from referral.surveys.models import SurveyAnswer, SurveyComment, SurveyDone, SurveyRound
from referral.surveys.questions import CURRENT, SetKey
from referral.surveys.routes import DONE, NOT_OPEN
from referral.timeutil import utcnow

from . import factories

FEEDBACK_TITLE = CURRENT[SetKey.FEEDBACK].title
CLOSING_TITLE = CURRENT[SetKey.CLOSING].title
QUARTER_TITLE = CURRENT[SetKey.QUARTER].title


@pytest.fixture(autouse=True)
def no_csrf(app):
    app.config["WTF_CSRF_ENABLED"] = False


def referral(world, state: State):
    """A referral of `teacher` (school A, district WE) with `asd` as assignee, its steps a few days ago."""
    return factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead, now=utcnow() - timedelta(days=5))


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def answers(**values) -> dict:
    return {"choice": "answer", **{f"a{i}": str(v) for i, v in values.items()}}


def flashed(client) -> str:
    return client.get("/notifications/").text  # any page shows the flashed messages


# --- Invitations ----------------------------------------------------------------------------------


def test_author_and_school_lead_are_invited_once_after_the_feedback_not_before(world, as_user):
    assessing = referral(world, State.IN_ASSESSMENT)
    teacher, lead = as_user(world.teacher), as_user(world.school_lead)
    assert FEEDBACK_TITLE not in teacher.get("/school").text
    assert teacher.get(f"/umfrage/mitteilung/{assessing.id}").status_code == 403  # not before the feedback

    given = referral(world, State.FEEDBACK_GIVEN)
    url = f"/umfrage/mitteilung/{given.id}"
    for client in (teacher, lead):
        start = client.get("/school").text
        assert FEEDBACK_TITLE in start and url in start  # on the start page, in the app
        assert url in client.get(f"/referrals/{given.id}").text  # and on the referral's page
    assert as_user(world.teacher_other).get(url).status_code == 404  # may not read the referral
    assert as_user(world.asd).get(url).status_code == 403  # the ASD after closing only
    assert as_user(world.teacher_a2).get("/school").text.count("Kurzumfrage") == 0

    page = teacher.get(url)
    assert page.status_code == 200
    assert "Ich wusste, an wen ich mich wenden kann." in page.text and "keine Angabe" in page.text
    assert "Nicht teilnehmen" in page.text
    response = teacher.post(url, data=answers(**{"1": 5, "2": 4, "3": 3, "5": 1}))  # question 4 skipped
    assert response.status_code == 302 and response.location.endswith(f"/referrals/{given.id}")
    assert DONE in flashed(teacher)
    row = db.session.scalars(select(SurveyAnswer)).one()
    assert (row.question_set, row.set_version, row.role_kind) == ("feedback", 1, "school")
    assert (row.district_id, row.quarter) == (world.districts["we"].id, services.quarter_of(utcnow()))
    assert (row.a1, row.a2, row.a3, row.a4, row.a5) == (5, 4, 3, None, 1)
    assert row.guide_version is None  # no guide version published yet
    db.session.add(GuideVersion(number=1, note="Erste Fassung"))
    db.session.commit()
    assert as_user(world.school_lead).post(url, data=answers(**{"1": 4})).status_code == 302
    assert db.session.scalar(select(SurveyAnswer.guide_version).where(SurveyAnswer.a1 == 4)) == 1

    # Once: gone from the start page; the page itself says so; a second answer stores nothing.
    assert FEEDBACK_TITLE not in teacher.get("/school").text
    again = teacher.get(url)
    assert again.status_code == 302 and NOT_OPEN in flashed(teacher)
    assert teacher.post(url, data=answers(**{"1": 1})).status_code == 302
    assert count(SurveyAnswer) == 2 and count(SurveyDone) == 2


def test_declining_is_one_click_and_stores_no_answer(world, as_user):
    given = referral(world, State.FEEDBACK_GIVEN)
    lead = as_user(world.school_lead)
    url = f"/umfrage/mitteilung/{given.id}"
    response = lead.post(url, data={"choice": "decline", "a1": "5"})
    assert response.status_code == 302
    assert DONE in flashed(lead)  # the same words as for an answer
    assert count(SurveyAnswer) == 0 and count(SurveyDone) == 1
    assert FEEDBACK_TITLE not in lead.get("/school").text


def test_the_assignee_is_invited_after_closing(world, as_user):
    closed = referral(world, State.CLOSED)
    url = f"/umfrage/mitteilung/{closed.id}"
    asd = as_user(world.asd)
    inbox = asd.get("/inbox").text
    assert CLOSING_TITLE in inbox and url in inbox
    assert CLOSING_TITLE not in as_user(world.asd2).get("/inbox").text
    assert as_user(world.asd2).get(url).status_code == 403 and as_user(world.asd_lead).get(url).status_code == 403
    page = asd.get(url)
    assert "Die Schule war für Rückfragen erreichbar." in page.text
    assert asd.post(url, data=answers(**{"1": 4, "2": 5})).status_code == 302
    row = db.session.scalars(select(SurveyAnswer)).one()
    assert (row.question_set, row.role_kind, row.a1, row.a2, row.a3, row.a5) == ("closing", "asd", 4, 5, None, None)
    assert CLOSING_TITLE not in asd.get("/inbox").text
    assert url not in asd.get(f"/referrals/{closed.id}").text  # answered: not offered again


def test_a_second_submit_from_another_tab_or_at_the_same_moment_stores_nothing(app, world, as_user):
    given = referral(world, State.FEEDBACK_GIVEN)
    url = f"/umfrage/mitteilung/{given.id}"
    first, second = as_user(world.teacher), as_user(world.teacher)
    assert first.get(url).status_code == 200 and second.get(url).status_code == 200  # two tabs
    assert first.post(url, data=answers(**{"1": 5})).status_code == 302
    late = second.post(url, data=answers(**{"1": 1}))
    assert late.status_code == 302 and NOT_OPEN in flashed(second)
    assert count(SurveyAnswer) == 1 and db.session.scalar(select(SurveyAnswer.a1)) == 5

    # Both past the check at the same moment: the unique marker stops the second in its transaction.
    other = referral(world, State.FEEDBACK_GIVEN)
    with app.test_request_context():
        invitation = services.referral_invitation(world.school_lead, other.id, utcnow())
        assert invitation is not None
        services.answer(world.school_lead, invitation, [3, 3, 3, 3, 3])
        db.session.commit()
        lead = db.session.get(type(world.school_lead), world.school_lead.id)
        with pytest.raises(services.AlreadyDone):
            services.answer(lead, invitation, [1, 1, 1, 1, 1])
    assert count(SurveyAnswer) == 2 and db.session.scalar(select(func.max(SurveyAnswer.a1))) == 5


# --- Anonymity ------------------------------------------------------------------------------------

LINKING = re.compile(r"user|referral|author|assignee|actor|done|marker|invit|round|answer_id|_at$|time|date|created")


def test_the_answer_tables_cannot_be_joined_to_people_referrals_or_markers(app, world):
    inspector = inspect(db.engine)
    for table in ("survey_answer", "survey_comment"):
        assert inspector.get_foreign_keys(table) == [], f"{table} must not reference any table"
        columns = inspector.get_columns(table)
        assert not [c["name"] for c in columns if LINKING.search(c["name"])], f"{table} names a person or time"
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        assert key == ["id"] and [c for c in columns if c["name"] == "id"][0]["type"].python_type is str
        assert not [c for c in columns if c["name"] == "id"][0].get("default"), "no sequence behind the key"
        if db.engine.dialect.name == "sqlite":  # no rowid: the storage order is the random key's
            sql = db.session.scalar(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table})
            assert "WITHOUT ROWID" in sql
    assert {c["name"] for c in inspector.get_columns("survey_answer")} == {
        "id", "question_set", "set_version", "role_kind", "district_id", "quarter", "guide_version",
        "a1", "a2", "a3", "a4", "a5",
    }  # fmt: skip
    marker_columns = {c["name"] for c in inspector.get_columns("survey_done")}
    assert marker_columns == {"id", "user_id", "referral_id", "round_id"}  # no answer, no time, no "answered?"
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("survey_done")} == {
        "user_account",
        "referral",
        "survey_round",
    }


def test_stored_answers_hold_no_person_referral_time_or_order(app, world, as_user):
    given = referral(world, State.FEEDBACK_GIVEN)
    url = f"/umfrage/mitteilung/{given.id}"
    assert as_user(world.teacher).post(url, data=answers(**{"1": 2})).status_code == 302
    first_key = db.session.scalar(select(SurveyAnswer.id))
    assert as_user(world.school_lead).post(url, data=answers(**{"1": 4})).status_code == 302
    db.session.expire_all()
    rows = [dict(r._mapping) for r in db.session.execute(select(SurveyAnswer.__table__))]
    assert len(rows) == 2 and sorted(r["a1"] for r in rows) == [2, 4]
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{32}", row["id"])
        assert set(row) == {c.name for c in SurveyAnswer.__table__.columns}
        assert not [v for v in row.values() if isinstance(v, datetime)]
        assert given.number not in map(str, row.values())
    # Every answer rewrites its district's quarter with new random keys: no key survives to tell order.
    assert first_key not in {r["id"] for r in rows}
    markers = db.session.execute(select(SurveyDone.user_id, SurveyDone.referral_id)).all()
    assert sorted(markers) == sorted([(world.teacher.id, given.id), (world.school_lead.id, given.id)])
    if db.engine.dialect.name == "postgresql":
        # Not even PostgreSQL's hidden transaction id joins a marker to an answer: all rows of the group
        # were written by the last transaction.
        xmins = set(db.session.scalars(text("SELECT xmin::text FROM survey_answer")))
        first_marker = db.session.scalar(
            text("SELECT xmin::text FROM survey_done WHERE user_id = :u"), {"u": world.teacher.id}
        )
        assert len(xmins) == 1 and first_marker not in xmins
    # Nothing in the audit log about answering.
    assert not db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("survey%"))).all()
    assert not db.session.scalars(select(AuditEntry).where(AuditEntry.object_type.like("survey%"))).all()


# --- The quarterly round --------------------------------------------------------------------------


def open_round(as_user, world, *districts: str):
    response = as_user(world.coordinator).post(
        "/umfrage/runden", data={"districts": [world.districts[d].id for d in districts]}
    )
    assert response.status_code == 302
    return db.session.scalars(select(SurveyRound)).one()


def test_the_coordinator_opens_one_round_a_quarter_for_chosen_districts(world, as_user):
    coordinator = as_user(world.coordinator)
    assert coordinator.post("/umfrage/runden", data={}).status_code == 422  # no district chosen
    assert as_user(world.teacher).get("/umfrage/quartal").status_code == 404  # no round yet
    opened = open_round(as_user, world, "we")
    assert opened.quarter == services.quarter_of(utcnow()) and [d.code for d in opened.districts] == ["WE"]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "survey.open_round")).one()
    assert entry.actor_id == world.coordinator.id and entry.fields == ["WE"]
    assert coordinator.post("/umfrage/runden", data={"districts": [world.districts["hm"].id]}).status_code == 302
    assert count(SurveyRound) == 1  # one per quarter
    assert "bereits eine Umfrage geöffnet" in flashed(coordinator)

    for key in ("teacher", "school_lead", "teacher_a2"):
        assert QUARTER_TITLE in as_user(world.users[key]).get("/school").text, key
    assert QUARTER_TITLE in as_user(world.asd2).get("/inbox").text
    assert QUARTER_TITLE not in as_user(world.teacher_b).get("/school").text  # other district
    assert as_user(world.teacher_b).get("/umfrage/quartal").status_code == 404
    assert as_user(world.coordinator).get("/umfrage/quartal").status_code == 403

    asd2 = as_user(world.asd2)
    assert asd2.post("/umfrage/quartal", data={**answers(**{"1": 4}), "comment": "Mehr Austausch."}).status_code == 302
    row = db.session.scalars(select(SurveyAnswer)).one()
    assert (row.question_set, row.role_kind, row.district_id) == ("quarter", "asd", world.districts["we"].id)
    stored = db.session.scalar(text("SELECT body FROM survey_comment"))
    assert stored and "Austausch" not in stored  # encrypted at rest
    assert db.session.scalar(select(SurveyComment.body)) == "Mehr Austausch."
    assert QUARTER_TITLE not in asd2.get("/inbox").text
    assert asd2.get("/umfrage/quartal").status_code == 302


@pytest.mark.parametrize(
    "comment, message",
    [
        ("Das Kind (geb. 03.04.2017) fiel auf.", "Geburtsdatum"),
        ("Der Vater, geboren 12.12.1985, rief an.", "Geburtsdatum"),
        ("Familie in der Lindenstraße 12 a", "Anschrift"),
        ("Zu WE-2026-0007 kam keine Antwort.", "Fallnummer"),
        ("wie in fb-2026-0012 besprochen", "Fallnummer"),
    ],
)
def test_the_free_text_refuses_dates_of_birth_addresses_and_case_numbers(world, as_user, comment, message):
    open_round(as_user, world, "we")
    teacher = as_user(world.teacher)
    response = teacher.post("/umfrage/quartal", data={**answers(**{"1": 3}), "comment": comment})
    assert response.status_code == 422 and message in response.text
    assert comment in response.text.replace("&#34;", '"')  # kept for correcting
    assert count(SurveyDone) == 0 and count(SurveyAnswer) == 0
    fine = f"Seit dem 01.09.{utcnow().year} klappt es besser."
    assert teacher.post("/umfrage/quartal", data={**answers(**{"1": 3}), "comment": fine}).status_code == 302


def test_free_text_is_read_only_in_shuffled_batches_of_five_and_the_reading_is_recorded(app, world, as_user):
    opened = open_round(as_user, world, "we", "hm")
    we = ["teacher", "teacher_other", "school_lead", "teacher_a2", "lead_a2", "asd"]
    for n, key in enumerate(we[:4]):
        as_user(world.users[key]).post("/umfrage/quartal", data={"choice": "answer", "comment": f"Hinweis {n}"})
    as_user(world.teacher_b).post("/umfrage/quartal", data={"choice": "answer", "comment": "Hinweis HM"})
    coordinator = as_user(world.coordinator)
    page = coordinator.get(f"/umfrage/runden/{opened.id}/freitext").text
    assert page.count("zu wenige Antworten") == 2 and "Hinweis" not in page
    assert "keine Texte weiter, die Kinder oder Familien erkennbar machen" in page  # the warning
    as_user(world.lead_a2).post("/umfrage/quartal", data={"choice": "answer", "comment": "Hinweis 4"})
    page = coordinator.get(f"/umfrage/runden/{opened.id}/freitext").text
    assert all(f"Hinweis {n}" in page for n in range(5)) and "Hinweis HM" not in page
    assert page.count("zu wenige Antworten") == 1
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "survey.read_comments")).all()
    assert len(entries) == 2 and entries[-1].fields == ["Wanne-Eickel"]
    assert as_user(world.asd_lead).get(f"/umfrage/runden/{opened.id}/freitext").status_code == 403


# --- Evaluation -----------------------------------------------------------------------------------


@pytest.fixture
def survey_answers(world):
    """Hand-made answers of this quarter. WE is the model district.
    Feedback set, question 1: WE 5,4,4,3,5,5,4 (two of them before guide version 2), HM 2,2,1.
    Quarterly set, question 1: five school answers and two ASD answers, all 4."""
    world.districts["we"].model_project = True
    quarter = services.quarter_of(utcnow())
    we, hm = world.districts["we"].id, world.districts["hm"].id
    rows = [(we, 5, None), (we, 4, None), (we, 4, 2), (we, 3, 2), (we, 5, 2), (we, 5, 2), (we, 4, 2)]
    rows += [(hm, 2, None), (hm, 2, None), (hm, 1, None)]
    for district, value, version in rows:
        db.session.add(
            SurveyAnswer(
                question_set="feedback", set_version=1, role_kind="school", district_id=district,
                quarter=quarter, guide_version=version, a1=value,
            )
        )  # fmt: skip
    for kind in ["school"] * 5 + ["asd"] * 2:
        db.session.add(
            SurveyAnswer(question_set="quarter", set_version=1, role_kind=kind, district_id=we, quarter=quarter, a1=4)
        )
    db.session.commit()
    db.session.add(GuideVersion(number=2, published_at=datetime(2026, 10, 1, 8, 0), note="Neu"))
    db.session.commit()
    return services.quarter_label(quarter)


def csv_rows(client, query: str) -> list[list[str]]:
    response = client.get(f"/coordination/evaluation.csv?{query}")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))


def test_the_evaluation_shows_hand_computed_figures_and_hides_groups_below_five(world, as_user, survey_answers):
    coordinator = as_user(world.coordinator)
    rows = csv_rows(coordinator, "period=quarter")
    feedback = "Umfrage: " + FEEDBACK_TITLE
    q1 = "Ich wusste, an wen ich mich wenden kann."

    def cells(label: str) -> list[str]:
        return [r[3] for r in rows if r[0] == feedback and r[1] == f"{label}: {q1}"]

    assert cells("Gesamt") == ["10", "3,5", "1", "2", "1", "3", "3"]  # 35 / 10
    assert cells(survey_answers) == ["10", "3,5", "1", "2", "1", "3", "3"]
    # HM has 3: hidden, and so is WE, which would give HM away from the total.
    assert cells("Modellbezirk") == ["zu wenige Antworten", *["–"] * 6]
    assert cells("übrige Bezirke") == ["zu wenige Antworten", *["–"] * 6]
    assert cells("vor Leitfaden-Version 2") == ["5", "2,8", "1", "2", "0", "1", "1"]  # 2,2,1,5,4
    assert cells("ab Leitfaden-Version 2 (01.10.2026)") == ["5", "4,2", "0", "0", "1", "2", "2"]  # 4,3,5,5,4
    # A question nobody answered: too few.
    assert [r[3] for r in rows if r[0] == feedback and r[1].startswith("Gesamt: Die Rückmeldung kam")][0] == (
        "zu wenige Antworten"
    )
    quarterly = "Umfrage: " + QUARTER_TITLE
    q1 = CURRENT[SetKey.QUARTER].questions[0]

    def quarter_cells(label: str) -> list[str]:
        return [r[3] for r in rows if r[0] == quarterly and r[1] == f"{label}: {q1}"]

    assert quarter_cells("Gesamt") == ["7", "4,0", "0", "0", "0", "7", "0"]
    assert quarter_cells("Schule")[0] == quarter_cells("ASD")[0] == "zu wenige Antworten"  # 5 and 2
    assert not [r for r in rows if r[0] == "Umfrage: " + CLOSING_TITLE], "no answers, no rows"

    # The district filter: WE alone has 7, but HM's 3 would follow from the city's 10 – hidden.
    question = f"Gesamt: {CURRENT[SetKey.FEEDBACK].questions[0]}"
    query = f"period=quarter&district={world.districts['we'].id}"
    assert [r[3] for r in csv_rows(coordinator, query) if r[0] == feedback and r[1] == question][0] == (
        "zu wenige Antworten"
    )
    for value in (3, 4):  # HM reaches 5
        db.session.add(
            SurveyAnswer(
                question_set="feedback", set_version=1, role_kind="school", district_id=world.districts["hm"].id,
                quarter=services.quarter_of(utcnow()), a1=value,
            )
        )  # fmt: skip
    db.session.commit()
    we = [r[3] for r in csv_rows(coordinator, query) if r[0] == feedback and r[1] == question]
    assert we[:2] == ["7", "4,3"]  # 30 / 7
    # One school: answers know only the district, so no survey tables.
    school = csv_rows(coordinator, f"period=quarter&school={world.schools['a'].id}")
    assert not [r for r in school if r[0].startswith("Umfrage")]

    for url in ("/coordination/evaluation?period=quarter", "/coordination/evaluation/print?period=quarter"):
        page = coordinator.get(url).text
        assert feedback in page and "zu wenige Antworten" in page and "3,5" in page


def test_the_demo_leaves_invitations_open_and_figures_to_show(app, runner, as_user):
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    users = {u.email: u for u in db.session.scalars(select(User))}
    with app.test_request_context():
        teacher = {i.questions.key for i in services.open_invitations(users["lehrkraft@demo.example"], utcnow())}
        worker = {i.questions.key for i in services.open_invitations(users["asd@demo.example"], utcnow())}
    assert teacher == {SetKey.FEEDBACK, SetKey.QUARTER} and worker == {SetKey.CLOSING, SetKey.QUARTER}
    coordinator = as_user(users["koordination@demo.example"])
    page = coordinator.get("/coordination/evaluation?period=quarter").text
    assert "Umfrage: " + FEEDBACK_TITLE in page and "zu wenige Antworten" in page
    assert re.search(r"<td class=\"text-end\">12</td>", page)  # the feedback set: 9 answers in WE, 3 in HM
    rounds = coordinator.get("/umfrage/runden").text
    assert "Wanne-Eickel" in rounds and "Freitext lesen" in rounds
