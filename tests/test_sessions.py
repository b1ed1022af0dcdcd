"""Session lifetime, ending sessions, deactivation."""

import time

from referral.cases.process import State
from referral.extensions import db

from . import factories


def signed_in(as_user, user, **times):
    client = as_user(user)
    with client.session_transaction() as session:
        session.update(times)
    return client


def test_thirty_idle_minutes_end_the_session(as_user, world):
    client = signed_in(as_user, world.teacher, seen_at=time.time() - 31 * 60, signed_in_at=time.time() - 3600)
    response = client.get("/referrals")
    assert response.status_code == 302 and response.location.startswith("/login")
    page = client.get(response.location).get_data(as_text=True)
    assert "Ihre Sitzung ist abgelaufen" in page
    assert client.get("/referrals").status_code == 302, "and stays ended"


def test_activity_keeps_the_session(as_user, world):
    client = signed_in(as_user, world.teacher, seen_at=time.time() - 29 * 60, signed_in_at=time.time() - 3600)
    assert client.get("/referrals").status_code == 200
    assert client.get("/referrals").status_code == 200


def test_no_session_lasts_longer_than_twelve_hours(as_user, world):
    client = signed_in(as_user, world.teacher, seen_at=time.time() - 60, signed_in_at=time.time() - 12 * 3600 - 60)
    assert client.get("/referrals").status_code == 302


def test_pages_warn_before_the_idle_limit(as_user, world):
    html = as_user(world.teacher).get("/referrals").get_data(as_text=True)
    assert 'data-session-idle="1800"' in html and "Ihre Sitzung läuft bald ab" in html and "js/session.js" in html


def test_ending_all_sessions_of_a_user(as_user, world, runner):
    client = as_user(world.asd)
    assert client.get("/inbox").status_code == 200
    assert runner.invoke(args=["users", "end-sessions", world.asd.email]).exit_code == 0
    assert client.get("/inbox").status_code == 302


def test_deactivation_ends_access_at_once_and_keeps_the_referrals(as_user, world, runner, login):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    client = as_user(world.teacher)
    assert client.get("/referrals").status_code == 200
    result = runner.invoke(args=["users", "deactivate", world.teacher.email])
    assert result.exit_code == 0, result.output
    assert client.get("/referrals").status_code == 302
    lead_view = as_user(world.school_lead).get(f"/referrals/{referral.id}")
    assert lead_view.status_code == 200, "the school keeps the referral"
    db.session.expire_all()
    assert not world.teacher.active


def test_a_draft_saved_as_the_session_ends_is_where_the_login_leads(client, world, login):
    """session.js posts the form with session_ending=1 shortly before the idle limit."""
    from sqlalchemy import select

    from referral.cases.models import Referral

    from .conftest import csrf_token
    from .test_permissions import draft_form

    login(world.teacher)
    response = client.post(
        "/referrals/new",
        data={
            **draft_form(world),
            "save": "1",
            "session_ending": "1",
            "child_first_name": "Halb",
            "csrf_token": csrf_token(client, "/referrals/new"),
        },
    )
    draft = db.session.scalar(select(Referral).where(Referral.author_id == world.teacher.id))
    assert draft is not None and draft.child_first_name == "Halb"
    assert response.status_code == 302 and response.location == f"/login?next=/referrals/{draft.id}/edit"
    assert client.get("/referrals").status_code == 302, "the session has ended"
    page = client.get(response.location).get_data(as_text=True)
    assert "Ihr Entwurf wurde vorher gespeichert" in page
    back = client.post(
        response.location,
        data={"email": world.teacher.email, "password": factories.PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert back.status_code == 302 and back.location == f"/referrals/{draft.id}/edit"
    assert 'value="Halb"' in client.get(back.location).get_data(as_text=True)


def test_the_referral_form_is_marked_for_saving_before_the_session_ends(as_user, world):
    html = as_user(world.teacher).get("/referrals/new").get_data(as_text=True)
    assert "data-save-before-logout" in html and "data-session-draft-note" in html
