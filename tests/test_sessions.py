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


ASSETS = ("/static/css/app.css", "/static/js/session.js", "/bootstrap/static/css/bootstrap.min.css")


def test_asset_requests_neither_load_the_user_nor_store_the_session(app, client, world, login):
    from unittest import mock

    login(world.teacher)
    interface = type(app.session_interface)
    with (
        mock.patch.object(interface, "_upsert_session", autospec=True) as stored,
        mock.patch.object(interface, "_delete_session", autospec=True) as deleted,
        mock.patch.object(app.login_manager, "_load_user", wraps=app.login_manager._load_user) as loaded,
    ):
        for asset in ASSETS:
            assert client.get(asset).status_code == 200, asset
        assert (stored.call_count, deleted.call_count, loaded.call_count) == (0, 0, 0)
        assert client.get("/referrals").status_code == 200
        assert (stored.call_count, loaded.call_count) == (1, 1), "a page still counts as activity"


def test_the_login_keeps_the_session_fresh(client, world, login):
    """Flask-Login marks a session non-fresh (and so changed) on every request whose `_id` does not
    match; the id of the session is renewed at login, its `_id` must survive that."""
    login(world.teacher)
    assert client.get("/referrals").status_code == 200
    with client.session_transaction() as session:
        assert session.get("_id") and session["_fresh"] is True


def test_a_flash_survives_an_asset_request_running_alongside(app, client, world, login):
    """The browser asks for a stylesheet while the POST that sets a flash message is still running:
    the asset request read the session before the POST stored it, and ends after it."""
    from unittest import mock

    from flask import request

    from .conftest import csrf_token
    from .test_permissions import draft_form

    login(world.teacher)
    form = {**draft_form(world), "csrf_token": csrf_token(client, "/referrals/new")}
    interface = type(app.session_interface)
    save, posted = interface.save_session, []

    def save_after_the_post(self, app_, session, response):
        if request.endpoint == "static" and not posted:
            # A second connection of the same browser: same cookie, its own request.
            other = app.test_client()
            other.set_cookie("session", client.get_cookie("session").value, domain="localhost")
            posted.append(other.post("/referrals/new", data=form))
        return save(self, app_, session, response)

    with mock.patch.object(interface, "save_session", save_after_the_post):
        assert client.get("/static/css/app.css").status_code == 200
    assert posted and posted[0].status_code == 302
    page = client.get(posted[0].location).get_data(as_text=True)
    assert "Der Entwurf wurde gespeichert." in page
