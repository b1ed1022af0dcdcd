"""Fachberatung end to end through the pages: request, pool, accept, appointment, recommendation,
the referral started from it, the deadline, and what each side sees."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.cases.models import Referral
from referral.cases.process import State
from referral.cases.vocabulary import Category, SchoolActionKind
from referral.consultations import services
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState as S
from referral.extensions import db
from referral.notifications.models import Notification, OutboxMail
from referral.timeutil import local_to_utc, to_local, utcnow

from . import factories
from .conftest import csrf_token

REQUEST = {
    "child_age": "8",
    "class_level": "2",
    "categories": ["neglect"],
    "observations": "Das Kind kommt seit Wochen ohne Frühstück und ist sehr still.",
    "question": "Reicht das für eine Mitteilung an den ASD?",
    "urgency": "normal",
    "contact_way": "phone",
    "contact_phone": "0234 5678",
    "reachable": "Mo–Do 13–15 Uhr",
    "pseudonymised": "y",
}


def post(client, url, data=None, form_page=None):
    token = csrf_token(client, form_page or url)
    return client.post(url, data={**(data or {}), "csrf_token": token})


def reload(consultation_id: int) -> Consultation:
    db.session.expire_all()
    return db.session.get(Consultation, consultation_id)


def test_from_request_to_recommendation_to_referral(app, world, as_user, outbox):
    teacher, insofa = as_user(world.teacher), as_user(world.insofa)

    # The teacher asks; the pool hears of it (in the app and by e-mail, without any content).
    sent = post(teacher, "/consultations/new", REQUEST)
    assert sent.status_code == 302
    consultation = db.session.scalars(select(Consultation)).one()
    assert consultation.state is S.REQUESTED and consultation.number.startswith("FB-")
    assert consultation.author_id == world.teacher.id and consultation.school_id == world.schools["a"].id
    assert consultation.category_codes == [Category.NEGLECT]
    mails = db.session.scalars(select(OutboxMail)).all()
    assert sorted(m.recipient for m in mails) == ["insofa2@test.example", "insofa@test.example"]
    assert all("Frühstück" not in m.body and "0234" not in m.body for m in mails)
    page = teacher.get(sent.location)
    assert "Angefragt" in page.text and "Frühstück" in page.text

    # Any InsoFa of the pool sees the open request and accepts it; then it is theirs alone.
    listing = insofa.get("/consultations/")
    assert consultation.number in listing.text
    show = f"/consultations/{consultation.id}"
    assert post(insofa, f"{show}/accept", form_page=show).status_code == 302
    assert reload(consultation.id).state is S.ACCEPTED and reload(consultation.id).insofa_id == world.insofa.id
    assert as_user(world.insofa2).get(show).status_code == 302, "sent to the list: another InsoFa has it"
    assert consultation.number not in as_user(world.insofa2).get("/consultations/").text

    # Appointment and recommendation; the school sees both.
    when = (to_local(utcnow()) + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    arranged = post(insofa, f"{show}/appointment", {"at": when.strftime("%Y-%m-%dT%H:%M"), "way": "phone"}, show)
    assert arranged.status_code == 302
    assert reload(consultation.id).appointment_at == local_to_utc(when.replace(tzinfo=None))
    [invite] = [m for m in db.session.scalars(select(OutboxMail)) if "Termin für Ihre Fachberatung" in m.subject]
    assert f"Termin: {when:%d.%m.%Y, %H:%M} Uhr (Telefon)" in invite.body and invite.recipient == "teacher@test.example"
    # Advice is recorded after the appointment, not before it.
    early = post(insofa, f"{show}/answer", {"recommendation": "inform_asd", "note": "Bitte den ASD informieren."}, show)
    assert early.status_code == 422 and "liegt noch in der Zukunft" in early.text
    assert "Bitte den ASD informieren." in early.text  # kept
    just_now = to_local(utcnow()).replace(second=0, microsecond=0) - timedelta(minutes=5)
    assert (
        post(
            insofa, f"{show}/appointment", {"at": just_now.strftime("%Y-%m-%dT%H:%M"), "way": "phone"}, show
        ).status_code
        == 302
    )
    answered = post(
        insofa, f"{show}/answer", {"recommendation": "inform_asd", "note": "Bitte den ASD informieren."}, show
    )
    assert answered.status_code == 302
    done = reload(consultation.id)
    assert done.state is S.ANSWERED and done.answered_at is not None
    school_view = teacher.get(show).text
    assert "Den ASD informieren" in school_view and "Bitte den ASD informieren." in school_view
    assert f"Termin: {just_now:%d.%m.%Y, %H:%M}" in school_view
    updates = db.session.scalars(select(Notification).where(Notification.user_id == world.teacher.id)).all()
    assert len(updates) == 4 and all(
        n.consultation_id == consultation.id for n in updates
    )  # accepted, 2 appointments, advice

    # The school starts a referral from it: linked, observations and categories carried over, and
    # "InsoFa beraten" answered with the day of the advice. A second click finds the same draft.
    started = post(teacher, f"{show}/referral", form_page=show)
    assert started.status_code == 302 and "/edit" in started.location
    again = post(teacher, f"{show}/referral", form_page=show)
    assert again.location == started.location
    referral = db.session.scalars(select(Referral)).one()
    assert referral.state is State.DRAFT and referral.consultation_id == consultation.id
    assert referral.observation == REQUEST["observations"] and referral.category_codes == [Category.NEGLECT]
    assert referral.child_class == "2"
    insofa_action = next(a for a in referral.school_actions if a.kind is SchoolActionKind.INSOFA_CONSULTED)
    assert insofa_action.done is True and insofa_action.done_on == to_local(done.answered_at).date()
    badge = f"InsoFa beraten am {to_local(done.answered_at).strftime('%d.%m.%Y')}"
    assert badge in teacher.get(started.location).text


def test_the_referral_shows_the_consultation_to_the_asd_but_not_its_content(app, world, as_user):
    from referral.cases import services as cases

    consultation = factories.consultation_in(S.ANSWERED, world.teacher, world.insofa)
    referral = factories.complete_draft(world.teacher)
    referral.consultation = consultation
    cases.submit(referral, world.teacher)
    db.session.commit()
    page = as_user(world.asd).get(f"/referrals/{referral.id}")
    assert page.status_code == 200
    assert f"InsoFa beraten am {to_local(consultation.answered_at).strftime('%d.%m.%Y')}" in page.text
    assert f'href="/consultations/{consultation.id}"' not in page.text
    assert factories.OBSERVATIONS not in page.text
    assert as_user(world.asd).get(f"/consultations/{consultation.id}").status_code == 404


def test_the_form_keeps_what_was_typed_and_refuses_names_dates_and_addresses(app, world, as_user):
    teacher = as_user(world.teacher)
    bad = {
        **REQUEST,
        "child_age": "19",
        "observations": "Wohnt in der Bahnhofstraße 12, geboren 03.04.2018.",
        "pseudonymised": "",
    }
    response = post(teacher, "/consultations/new", bad)
    assert response.status_code == 422
    text = response.text
    assert "Grundschulkinder sind 4 bis 14 Jahre alt" in text
    assert "sieht nach einem Geburtsdatum aus" in text or "sieht nach einer Anschrift aus" in text
    assert "Bitte bestätigen Sie, dass die Anfrage keine Namen" in text
    assert "Wohnt in der Bahnhofstraße 12" in text  # kept for correcting
    assert 'aria-invalid="true"' in text and 'id="fehleruebersicht"' in text
    assert db.session.scalar(select(func.count()).select_from(Consultation)) == 0

    address_only = {**REQUEST, "observations": "Die Familie wohnt im Lindenring 5 a."}
    assert "sieht nach einer Anschrift aus" in post(teacher, "/consultations/new", address_only).text
    # A date of an observation is fine; only dates that can be birth dates are refused.
    this_year = {
        **REQUEST,
        "observations": f"Am 12.11.{to_local(utcnow()).year} kam das Kind ohne Jacke. Seit der "
        f"Einschulung am 10.08.{to_local(utcnow()).year - 3} fällt es auf; beim Sportfest belegte es Platz 1.",
    }
    assert post(teacher, "/consultations/new", this_year).status_code == 302


def test_the_school_may_withdraw_only_before_acceptance(app, world, as_user):
    open_one = factories.consultation_in(S.REQUESTED, world.teacher)
    accepted = factories.consultation_in(S.ACCEPTED, world.teacher, world.insofa)
    teacher = as_user(world.teacher)
    show = f"/consultations/{open_one.id}"
    assert post(teacher, f"{show}/cancel", form_page=show).status_code == 302
    assert reload(open_one.id).state is S.CANCELLED
    show = f"/consultations/{accepted.id}"
    refused = post(teacher, f"{show}/cancel", form_page=show)
    assert refused.status_code == 302
    assert "ist im Status „Angenommen“ nicht möglich" in teacher.get(refused.location).text
    assert reload(accepted.id).state is S.ACCEPTED


def test_the_second_insofa_to_accept_is_told_and_changes_nothing(app, world, as_user):
    consultation = factories.consultation_in(S.REQUESTED, world.teacher)
    show = f"/consultations/{consultation.id}"
    first, second = as_user(world.insofa), as_user(world.insofa2)
    token = csrf_token(second, show)  # both have the page open
    assert post(first, f"{show}/accept", form_page=show).status_code == 302
    late = second.post(f"{show}/accept", data={"csrf_token": token})
    # The request left the pool with the first acceptance: the second is told so, on the list.
    assert late.status_code == 302 and late.location.endswith("/consultations/")
    assert "hat inzwischen eine andere Fachkraft des Pools angenommen" in second.get(late.location).text
    assert reload(consultation.id).insofa_id == world.insofa.id
    # So is an InsoFa following the notification of a request the school withdrew.
    withdrawn = factories.consultation_in(S.CANCELLED, world.teacher)
    opened = second.get(f"/consultations/{withdrawn.id}")
    assert opened.status_code == 302 and "von der Schule zurückgezogen" in second.get(opened.location).text
    assert as_user(world.asd).get(f"/consultations/{withdrawn.id}").status_code == 404, "others learn nothing"


def test_concurrent_acceptance_lets_only_one_win(app, world):
    """Both InsoFas load the request before either writes: the version check refuses the second."""
    from referral.workflow.errors import ConcurrentChange

    consultation = factories.consultation_in(S.REQUESTED, world.teacher)
    consultation_id = consultation.id
    from sqlalchemy.orm import Session

    with Session(db.engine) as other:
        theirs = other.get(Consultation, consultation_id)
        services.accept(consultation, world.insofa)
        db.session.commit()
        theirs.state, theirs.insofa_id, theirs.accepted_at = S.ACCEPTED, world.insofa2.id, utcnow()
        try:
            other.commit()
        except Exception as error:  # StaleDataError from the version check
            assert "expected to update 1 row" in str(error) or isinstance(error, ConcurrentChange)
        else:
            raise AssertionError("the second acceptance was written")
    assert reload(consultation_id).insofa_id == world.insofa.id


def test_overdue_acceptance_is_marked(app, world, as_user):
    # Friday 9:00: due at the end of Tuesday (2 working days); on Wednesday it is overdue.
    friday = local_to_utc(datetime(2026, 11, 6, 9, 0))
    consultation = factories.consultation_in(S.REQUESTED, world.teacher, now=friday)
    assert to_local(consultation.accept_due_at).replace(tzinfo=None) == datetime(2026, 11, 11, 0, 0)
    assert consultation.overdue(local_to_utc(datetime(2026, 11, 11, 8, 0)))
    assert not consultation.overdue(local_to_utc(datetime(2026, 11, 10, 23, 0)))
    listing = as_user(world.insofa).get("/consultations/").text
    assert "Annahme überfällig" in listing  # today is long after November 2026's deadline in this test


def test_each_view_and_change_is_in_the_audit_log(app, world, as_user):
    consultation = factories.consultation_in(S.ACCEPTED, world.teacher, world.insofa)
    as_user(world.school_lead).get(f"/consultations/{consultation.id}")
    actions = db.session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.object_type == "consultation", AuditEntry.object_id == str(consultation.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["consultation.request", "consultation.accept", "consultation.view"]
    viewed = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "consultation.view")).one()
    assert viewed.actor_id == world.school_lead.id and viewed.school_id == world.schools["a"].id


def test_lists_show_exactly_the_consultations_in_scope(app, world, as_user):
    made = {
        "open_a": factories.consultation_in(S.REQUESTED, world.teacher).id,
        "other_teacher_a": factories.consultation_in(S.ACCEPTED, world.teacher_other, world.insofa2).id,
        "mine_insofa": factories.consultation_in(S.ANSWERED, world.teacher_a2, world.insofa).id,
        "school_b": factories.consultation_in(S.CANCELLED, world.teacher_b).id,
    }
    expected = {
        "teacher": {"open_a"},
        "teacher_other": {"other_teacher_a"},
        "school_lead": {"open_a", "other_teacher_a"},
        "teacher_a2": {"mine_insofa"},
        "lead_a2": {"mine_insofa"},
        "teacher_b": {"school_b"},
        "insofa": {"open_a", "mine_insofa"},
        "insofa2": {"open_a", "other_teacher_a"},
    }
    problems = []
    for key, names in expected.items():
        page = as_user(world.users[key]).get("/consultations/")
        listed = {int(i) for i in re.findall(r'href="/consultations/(\d+)"', page.text)}
        if listed != {made[n] for n in names}:
            problems.append(f"{key}: listed {sorted(listed)}, expected {sorted(made[n] for n in names)}")
    assert not problems, "\n".join(problems)
    for key in ("asd", "asd_lead", "coordinator", "admin"):
        assert as_user(world.users[key]).get("/consultations/").status_code == 403
