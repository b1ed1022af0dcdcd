"""What a teacher was typing survives the end of the session: saved as a draft, and the login leads back."""

from __future__ import annotations

import re

import pytest

from referral.extensions import db

from .test_walkthrough import expect, log_in

pytestmark = pytest.mark.browser


def test_the_draft_is_saved_before_the_idle_limit_and_reopened_after_login(world, live_server, browsers):
    teacher = (world.teacher.email, world.teacher.name)
    db.session.commit()
    live_server.app.config["SESSION_IDLE_MINUTES"] = 0.3  # 18 seconds: warning at once, draft saved at 9 left
    page = browsers.new_page()
    log_in(page, *teacher)
    page.goto("/referrals/new")
    page.get_by_role("region", name="1. Kind").get_by_label("Vorname").fill("Zwischendurch")

    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Ihr Entwurf wird vorher automatisch gespeichert")
    expect(page).to_have_url(re.compile(r"/login\?next=/referrals/\d+/edit"), timeout=30_000)
    expect(page.get_by_role("status").filter(has_text="Ihr Entwurf wurde vorher gespeichert")).to_be_visible()

    live_server.app.config["SESSION_IDLE_MINUTES"] = 30
    page.get_by_label("E-Mail-Adresse").fill(teacher[0])
    page.get_by_label("Passwort", exact=True).fill("Richtig-Langes-Passwort-1")
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(re.compile(r"/referrals/\d+/edit$"))
    expect(page.get_by_role("region", name="1. Kind").get_by_label("Vorname")).to_have_value("Zwischendurch")
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors
