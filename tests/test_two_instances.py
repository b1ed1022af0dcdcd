"""Two servers, one city (issue 13): two gunicorn instances on the same database and the same Redis,
behind nginx (round robin), as the README's deployment describes. What a user does through one
instance holds on the other: the login, a referral with its attachment, the login lockout, a draft
saved automatically by both in turn. (Two workers running each job and mail once: tests/test_worker.py.)"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from referral.cases.models import Attachment, Referral
from referral.cases.process import State
from referral.extensions import db

from . import factories, servers
from .test_outages import PrivateRedis
from .test_races import Browser
from .test_referral_form import complete_form

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PDF = b"%PDF-1.4\n" + secrets.token_bytes(700_000) + b"\n%%EOF\n"  # two chunks in the database

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    log_format upstream '$upstream_addr $status';
    access_log {root}/access.log upstream;
    client_max_body_size 12m;
    upstream referral {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://referral;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def city(database_url, tmp_path_factory):
    if not Path(NGINX).exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is missing (apt-get install -y nginx); the two-instance test needs it")
        pytest.skip("nginx is missing (apt-get install -y nginx)")
    folder = tmp_path_factory.mktemp("two-instances")
    redis = PrivateRedis()
    with ExitStack() as stack:
        stack.callback(redis.remove)
        shared = {"REDIS_URL": redis.url, "REQUIRE_2FA": "0", "LOGIN_ATTEMPTS_PER_ADDRESS": "10000 per minute"}
        a = stack.enter_context(servers.gunicorn(database_url, _mkdir(folder / "a"), "--workers", "2", **shared))
        b = stack.enter_context(servers.gunicorn(database_url, _mkdir(folder / "b"), "--workers", "2", **shared))
        port = servers.free_port()
        root = _mkdir(folder / "nginx")
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, a=_port(a.url), b=_port(b.url), port=port))
        proxy = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(root)], stderr=subprocess.PIPE)
        stack.callback(_stop, proxy)
        url = f"http://127.0.0.1:{port}"
        _wait(url, proxy)
        yield {"a": a.url, "b": b.url, "proxy": url, "access_log": root / "access.log"}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx ended: {process.stderr.read().decode(errors='replace')}")
        try:
            urllib.request.urlopen(url + "/login", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not answer")


def on(base: str, browser: Browser) -> Browser:
    """The same browser (its cookies) talking to another server."""
    other = Browser(base)
    other.opener = browser.opener
    return other


def upload(browser: Browser, path: str, fields: dict, name: str, content: bytes):
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        browser.base + path, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with browser.opener.open(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_login_on_one_instance_holds_on_the_other_and_through_the_proxy(city, world):
    email = world.teacher.email
    teacher = Browser(city["a"]).log_in(email)
    assert on(city["b"], teacher).get("/referrals").status == 200, "the session is in the shared Redis"
    through = on(city["proxy"], teacher)
    assert [through.get("/referrals").status for _ in range(6)] == [200] * 6
    upstreams = {line.split()[0] for line in city["access_log"].read_text().splitlines() if line.strip()}
    assert {f"127.0.0.1:{_port(city['a'])}", f"127.0.0.1:{_port(city['b'])}"} <= upstreams, "round robin"


def test_a_referral_with_its_attachment_sent_through_one_is_read_through_the_other(city, world):
    teacher = Browser(city["a"]).log_in(world.teacher.email)
    token = "two-instances-" + uuid.uuid4().hex
    form = complete_form(submit="1", client_token=token, csrf_token=teacher.csrf("/referrals/new"))
    assert teacher.post("/referrals/new", form).status == 302
    referral = db.session.scalar(select(Referral).where(Referral.client_token == token))
    assert referral is not None and referral.state is State.SUBMITTED
    csrf = teacher.csrf(f"/referrals/{referral.id}")
    assert upload(teacher, f"/referrals/{referral.id}/attachments", {"csrf_token": csrf}, "befund.pdf", PDF) == 302
    db.session.expire_all()
    attachment = db.session.scalar(select(Attachment).where(Attachment.referral_id == referral.id))
    assert attachment is not None

    asd = Browser(city["b"]).log_in(world.asd.email)
    page = asd.get(f"/referrals/{referral.id}")
    assert page.status == 200 and referral.number in page.body and "befund.pdf" in page.body
    request = urllib.request.Request(f"{city['b']}/referrals/{referral.id}/attachments/{attachment.id}")
    with asd.opener.open(request, timeout=60) as response:
        assert response.read() == PDF


def test_the_login_lockout_counts_on_both_instances(city, world):
    email = world.coordinator.email  # an account no other test here signs in with
    a, b = Browser(city["a"]), Browser(city["b"])
    for i in range(5):
        browser = (a, b)[i % 2]
        answer = browser.post("/login", {"email": email, "password": "falsch", "csrf_token": browser.csrf("/login")})
        assert answer.status == 200
    for browser in (a, b):
        locked = browser.post(
            "/login", {"email": email, "password": factories.PASSWORD, "csrf_token": browser.csrf("/login")}
        )
        assert locked.status == 429 and "gesperrt" in locked.body


def test_a_draft_saved_automatically_by_both_instances_in_turn_loses_nothing(city, world):
    teacher = Browser(city["proxy"]).log_in(world.teacher.email)
    token = "autosave-" + uuid.uuid4().hex
    csrf = teacher.csrf("/referrals/new")
    first = teacher.post("/referrals/new/autosave?school=" + str(world.schools["a"].id), _draft(token, csrf, 0))
    assert first.status == 200 and first.json()["saved"], first.body
    autosave = first.json()["autosave_url"]
    for n, base in enumerate([city["a"], city["b"], city["a"], city["b"]], start=1):
        answer = on(base, teacher).post(autosave, _draft(token, csrf, n))
        assert answer.status == 200 and answer.json()["saved"], answer.body
    drafts = db.session.scalars(select(Referral).where(Referral.client_token == token)).all()
    assert [d.child_first_name for d in drafts] == ["Fassung 4"], "one draft, the last text"


def _draft(token: str, csrf: str, n: int) -> dict:
    form = complete_form(client_token=token, csrf_token=csrf)
    form["child_first_name"] = f"Fassung {n}"
    return form
