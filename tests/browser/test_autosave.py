"""A draft saves itself while the teacher types: no click, no page load, the focus stays."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from referral.cases.models import Referral
from referral.extensions import db

from .test_walkthrough import expect, log_in

pytestmark = pytest.mark.browser


def test_typing_is_saved_without_a_click_and_the_focus_stays(world, live_server, browsers):
    teacher = (world.teacher.email, world.teacher.name)
    author_id = world.teacher.id
    db.session.commit()
    page = browsers.new_page()
    log_in(page, *teacher)
    page.goto("/referrals/new")
    first_name = page.get_by_role("region", name="1. Kind").get_by_label("Vorname")
    first_name.fill("Selbstgespeichert")
    # Shown, not announced (a routine save is no news): not a live region since issue 11.
    status = page.locator("[data-autosave-status]").filter(has_text="Automatisch gespeichert um")
    expect(status).to_be_visible(timeout=15_000)
    expect(page).to_have_url(re.compile(r"/referrals/\d+/edit$"))
    expect(first_name).to_be_focused()
    first_name.press("End")
    first_name.type(" und mehr")
    expect(first_name).to_have_value("Selbstgespeichert und mehr")
    # The next automatic save follows the typing after its pause; a loaded machine answers later.
    deadline = time.monotonic() + 20
    while True:
        db.session.expire_all()
        drafts = db.session.scalars(select(Referral).where(Referral.author_id == author_id)).all()
        if [d.child_first_name for d in drafts] != ["Selbstgespeichert"] or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    assert [d.child_first_name for d in drafts] == ["Selbstgespeichert und mehr"], "one draft, the latest text"
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors
