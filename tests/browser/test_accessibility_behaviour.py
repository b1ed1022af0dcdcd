"""Accessibility in the browser (issue 11, section 3): reflow at 320 CSS px, keyboard-scrollable tables,
the focus after an action, and what live regions announce (the session warning, autosave)."""

from __future__ import annotations

import pytest

from referral.cases.process import State
from referral.extensions import db

from .. import factories
from .test_walkthrough import expect, log_in

pytestmark = pytest.mark.browser

# Records every change inside a live region (explicit aria-live, or a role that is one implicitly).
RECORD_ANNOUNCEMENTS = """
window.__announced = [];
(function () {
  var live = '[aria-live]:not([aria-live="off"]), [role=alert], [role=status], [role=log], '
    + '[role=marquee], [role=timer]';
  // From the first byte on (the warning may come right after loading); the pages used here have no
  // live region with text of their own, so whatever is recorded was put there by a script.
  new MutationObserver(function (records) {
    records.forEach(function (record) {
      var node = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      var region = node && node.closest && node.closest(live);
      if (region) { window.__announced.push(region.textContent.trim()); }
    });
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


def announced(page) -> list[str]:
    """What screen readers were given to announce, in order, empty clearings left out."""
    return [text for text in page.evaluate("() => window.__announced") if text]


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def signed_in(browsers, user, width: int = 1280):
    page = browsers.new_page()
    log_in(page, user.email, user.name)
    page.set_viewport_size({"width": width, "height": 900})
    return page


def some_referrals(world) -> None:
    for state in (State.SUBMITTED, State.ACKNOWLEDGED, State.IN_ASSESSMENT, State.CLOSED):
        factories.referral_in(state, world.teacher, world.asd, lead=world.asd_lead)
    db.session.commit()


# --- Reflow (WCAG 1.4.10) -------------------------------------------------------------------------


@pytest.mark.parametrize("key, url", [("teacher", "/referrals/new"), ("asd", "/inbox")])
def test_no_horizontal_scrolling_at_320_css_pixels(world, live_server, browsers, key, url):
    some_referrals(world)
    user = world.users[key]
    page = signed_in(browsers, user, width=320)
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page_width(page) <= 320, f"{url} is {page_width(page)} px wide at 320 px"
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors


# --- Tables that scroll sideways --------------------------------------------------------------------


def test_a_table_that_scrolls_sideways_can_be_scrolled_with_the_keyboard(world, live_server, browsers):
    some_referrals(world)
    page = signed_in(browsers, world.coordinator, width=320)
    page.goto("/coordination/evaluation")
    regions = page.locator(".table-responsive")
    scrolling = [i for i in range(regions.count()) if regions.nth(i).evaluate("e => e.scrollWidth > e.clientWidth")]
    assert scrolling, "at 320 px some evaluation table scrolls sideways"
    region = regions.nth(scrolling[0])
    name = region.get_attribute("aria-labelledby")
    # Reached with the Tab key, not only by script: press Tab until the region has the focus.
    page.locator("main").focus()
    for _ in range(200):
        page.keyboard.press("Tab")
        if region.evaluate("e => e === document.activeElement"):
            break
    expect(region).to_be_focused()
    expect(page.get_by_role("region", name=page.locator(f"#{name}").inner_text().strip())).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("e => e.scrollLeft > 0", arg=region.element_handle())


# --- The result of an action --------------------------------------------------------------------


def test_after_an_action_the_result_message_has_the_focus_and_leads_the_title(world, live_server, browsers):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    db.session.commit()
    page = signed_in(browsers, world.asd)
    page.goto(f"/referrals/{referral.id}")
    page.get_by_role("button", name="Eingang bestätigen").click()
    message = page.get_by_role("status").filter(has_text="Der Eingang wurde bestätigt.")
    expect(message).to_be_focused()
    assert page.title().startswith("Erledigt – ")
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors


# --- Live regions ---------------------------------------------------------------------------------


def test_the_session_warning_is_announced_once_and_at_one_minute_left(world, live_server, browsers):
    db.session.commit()
    live_server.app.config["SESSION_IDLE_MINUTES"] = 1.2  # 72 seconds: the warning at once, one minute left after 12
    page = signed_in(browsers, world.teacher)
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    page.goto("/referrals")
    warning = page.get_by_role("alertdialog", name="Ihre Sitzung läuft bald ab")
    expect(warning).to_be_visible()
    countdown = warning.locator("[data-session-countdown]")
    expect(countdown).to_have_text("1:08 Minuten", timeout=10_000)  # it does count down, visibly
    page.wait_for_function("() => window.__announced.some(t => t.includes('Noch eine Minute'))", timeout=20_000)
    page.wait_for_timeout(2500)  # a few more ticks of the countdown
    said = announced(page)
    assert len(said) == 2, said
    assert said[0].startswith("Ihre Sitzung läuft in einer Minute ab."), said
    assert said[1] == "Noch eine Minute bis zur Abmeldung."
    assert not any("Minuten" in text and ":" in text for text in said), "the countdown itself is never announced"
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors


def test_autosave_is_quiet_and_a_failure_is_announced_once(world, live_server, browsers):
    db.session.commit()
    page = signed_in(browsers, world.teacher)
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    page.goto("/referrals/new")
    first_name = page.get_by_role("region", name="1. Kind").get_by_label("Vorname")
    first_name.fill("Leise")
    expect(page.locator("[data-autosave-status]")).to_contain_text("Automatisch gespeichert um", timeout=15_000)
    first_name.type(" gespeichert")
    page.wait_for_timeout(4000)  # another round
    assert announced(page) == [], "routine saves are not announced"

    page.route("**/autosave", lambda route: route.abort())
    first_name.type(" und dann nicht mehr")
    expect(page.locator("[data-autosave-status]")).to_contain_text("gerade nicht möglich", timeout=10_000)
    page.wait_for_timeout(7000)  # two more failed rounds
    failures = announced(page)
    assert failures == ["Automatisches Speichern gerade nicht möglich; bitte „Entwurf speichern“ nutzen."], failures
    assert not browsers.server_errors and not live_server.errors
