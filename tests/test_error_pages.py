"""The 500 page says what is known about the input, and only that (issue 12): "nicht gespeichert"
only for a form whose request committed nothing; nothing about saving for a page only read."""

from __future__ import annotations

from referral.cases.models import Referral
from referral.cases.process import State
from referral.extensions import db
from referral.timeutil import utcnow

from . import factories
from .conftest import csrf_token


def test_a_form_that_failed_after_its_commit_is_not_called_unsaved(world, as_user, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)

    def done_then_broken(referral, actor, **kwargs):
        referral.acknowledged_at = utcnow()
        referral.state = State.ACKNOWLEDGED
        db.session.commit()
        raise RuntimeError("the mail queue is full")

    monkeypatch.setattr(factories.services, "acknowledge", done_then_broken)
    asd = as_user(world.asd)
    response = asd.post(f"/referrals/{referral.id}/acknowledge", data={"csrf_token": csrf_token(asd, "/inbox")})
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "nicht gespeichert" not in text and "nichts gespeichert" not in text
    assert "Ihre Eingaben wurden bereits gespeichert" in text
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).state is State.ACKNOWLEDGED  # the page told the truth


def test_a_page_only_read_says_nothing_about_saving(world, as_user, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    from referral.cases import queries

    def broken(*args, **kwargs):
        raise RuntimeError("broken list")

    monkeypatch.setattr(queries, "school_list", broken)
    response = as_user(world.teacher).get("/referrals")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Interner Fehler" in text and "Bitte versuchen Sie es erneut." in text
    assert "gespeichert" not in text
