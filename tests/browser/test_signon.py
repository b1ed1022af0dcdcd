"""Single sign-on in the browser: an ASD worker logs in through the real OpenID Provider, logs out at the
tool and at the provider (RP-initiated logout), and the provider's back-channel logout ends a session."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from referral.audit.models import AuditEntry
from referral.extensions import db
from referral.signon.settings import Provider

from ..oidc_provider import OidcProvider, require_oidc_tools
from .test_walkthrough import expect

pytestmark = pytest.mark.browser

SECRET = "geheimnis-des-clients-mit-mindestens-32-zeichen"
LABEL = "Mit dem Konto der Stadt anmelden"


@pytest.fixture
def city(live_server, world):
    """A provider whose client is this live server (its port is known only now), configured in the app."""
    require_oidc_tools()
    db.session.commit()
    provider = OidcProvider(users={"s-asd": {"email": world.asd.email, "email_verified": True, "amr": ["pwd", "otp"]}})
    provider.add_client(
        "referral",
        SECRET,
        [f"{live_server.url}/login/oidc/stadt/callback"],
        post_logout_redirect_uris=[f"{live_server.url}/login"],
        backchannel_logout_uri=f"{live_server.url}/login/oidc/stadt/backchannel-logout",
    )
    with provider:
        live_server.app.config["OIDC_PROVIDERS"] = {
            "stadt": Provider("stadt", provider.issuer, "referral", SECRET, LABEL, frozenset({"otp"}), None)
        }
        yield provider


def sign_on(page, live_server, name: str) -> None:
    page.goto("/login")
    page.get_by_role("link", name=LABEL).click()
    page.get_by_label("Benutzer").fill("s-asd")
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + "/"))
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_contain_text(name)


def actions() -> list[str]:
    db.session.expire_all()
    return [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def test_an_asd_worker_signs_on_and_off_through_the_citys_provider(world, live_server, browsers, city):
    page = browsers.new_page()
    page.set_viewport_size({"width": 1600, "height": 900})  # the menu open, not behind its toggle button
    sign_on(page, live_server, world.asd.name)
    assert "user.link_sign_on" in actions() and "login.success" in actions()

    # Logging out at the tool leads through the provider's logout back to the tool's login page.
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("button", name="Abmelden").click()
    expect(page).to_have_url(re.compile(re.escape(city.issuer)))
    page.get_by_role("button", name="Abmelden").click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + "/login"))
    expect(page.get_by_role("link", name=LABEL)).to_be_visible()

    # The provider's session ended too: signing on again asks for the user at the provider.
    page.get_by_role("link", name=LABEL).click()
    expect(page.get_by_label("Benutzer")).to_be_visible()
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors


def test_the_providers_back_channel_logout_ends_the_session_in_the_browser(world, live_server, browsers, city):
    page = browsers.new_page()
    sign_on(page, live_server, world.asd.name)
    # The person logs out at the provider (say, from another application of the city) in a second tab.
    other_tab = page.context.new_page()
    other_tab.goto(city.metadata["end_session_endpoint"])
    other_tab.get_by_role("button", name="Abmelden").click()
    expect(other_tab.get_by_text("Sie sind abgemeldet.")).to_be_visible()
    # The provider has called the tool's server: the tool's session is gone.
    page.reload()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + "/login"))
    assert "logout.backchannel" in actions()
    assert not browsers.page_errors and not browsers.server_errors and not live_server.errors
