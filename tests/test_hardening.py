"""Defences that are configuration: headers, cookies, production refusals, redirects, photo metadata."""

from io import BytesIO
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import select

from referral import create_app
from referral.cases.models import Attachment
from referral.cases.process import State
from referral.config import ConfigError
from referral.extensions import db

from . import factories
from .conftest import csrf_token

STRONG = "k" * 48
PRODUCTION = {
    "REFERRAL_ENV": "production",
    "SECRET_KEY": STRONG,
    "DATABASE_URL": "postgresql://db/referral",
    "SERVER_NAME": "referral.example",
    "REFERRAL_DATA_KEYS": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
}


def test_security_headers_on_every_page(client, world, login):
    login(world.teacher)
    for url in ("/login", "/school", "/referrals/new"):
        headers = client.get(url, follow_redirects=True).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in headers["Permissions-Policy"] and "geolocation=()" in headers["Permissions-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_scripts_or_styles(client, world, login, as_user, app):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    for user, url in (
        (world.teacher, "/referrals/new"),
        (world.asd, f"/referrals/{referral.id}"),
        (world.teacher, f"/referrals/{referral.id}"),
        (world.asd, "/inbox"),
    ):
        html = as_user(user).get(url).get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and "onclick=" not in html, url


def test_production_sends_hsts_and_secure_cookies(database_url):
    app = create_app(env={**PRODUCTION, "DATABASE_URL": database_url})
    app.config["TESTING"] = True
    response = app.test_client().get("/login", base_url="https://referral.example")
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    cookie = response.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    plain = app.test_client().get("/login", base_url="http://referral.example")
    assert plain.status_code == 302 and plain.location.startswith("https://"), "HTTP is redirected to HTTPS"


def test_development_cookies_are_httponly_and_samesite(client):
    cookie = client.get("/login").headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG must be off"),
        ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE must stay on"),
        ({"SECRET_KEY": "dev"}, "SECRET_KEY"),
        ({"SERVER_NAME": ""}, "SERVER_NAME must be the public host name"),
        ({"REFERRAL_DATA_KEYS": ""}, "REFERRAL_DATA_KEYS must hold"),
    ],
)
def test_production_refuses_unsafe_settings(env, complaint):
    with pytest.raises(ConfigError, match=complaint):
        create_app(env={**PRODUCTION, **env})


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "https:evil.example"]
)
def test_login_never_redirects_to_another_site(client, world, target):
    token = csrf_token(client, "/login")
    response = client.post(
        f"/login?next={target}",
        data={"email": world.teacher.email, "password": factories.PASSWORD, "csrf_token": token},
    )
    if response.status_code == 302:
        target = urlsplit(response.location)
        assert not target.netloc and not target.scheme and not response.location.startswith("//"), response.location
    else:  # refused with the form shown again
        assert "Weiterleitungen außerhalb der Domain sind verboten" in response.get_data(as_text=True)


def _photo_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), "red")
    exif = Image.Exif()
    exif[0x010F] = "Handyhersteller"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 32.0, 0.0)}  # GPS: latitude of a home
    out = BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=b"Wohnung der Familie")
    return out.getvalue()


def test_photos_lose_their_metadata(world, app):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    original = _photo_with_gps()
    assert b"Handyhersteller" in original and b"Wohnung" in original
    factories.services.add_attachment(referral, world.teacher, "foto.jpg", original)
    db.session.commit()
    attachment = db.session.scalars(select(Attachment)).one()
    stored = factories.services.attachment_bytes(attachment)  # decrypted: what the download gives
    assert b"Handyhersteller" not in stored and b"Wohnung" not in stored and b"Exif" not in stored
    with Image.open(BytesIO(stored)) as image:
        assert image.size == (40, 30) and not image.getexif()
    assert attachment.size == len(stored)


def test_a_broken_image_is_refused_in_german(world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    with pytest.raises(factories.services.ProcessError, match="konnte nicht gelesen werden"):
        factories.services.add_attachment(referral, world.teacher, "kaputt.jpg", b"\xff\xd8\xff" + b"\x00" * 100)
