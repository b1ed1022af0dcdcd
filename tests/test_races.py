"""Races through the whole HTTP stack: many requests at once, each from its own browser session.

On PostgreSQL the real app runs under gunicorn in two processes (2 sync workers), and once more with
threads (2 gthread workers × 4 threads); on SQLite, which serialises writers anyway, in the threaded
werkzeug server. Every race must end with no answer ≥ 500, exactly one winner, a German sentence for
each loser, and consistent data.

Each request has a session of its own (a login of its own): concurrent requests of one session
overwrite each other's flashed messages in the stored session, so only separate sessions let the
test read every loser's message.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import unescape

import pytest
from sqlalchemy import func, select

from referral.cases import services
from referral.cases.models import Referral, StateChange
from referral.cases.process import Action, State
from referral.extensions import db

from . import factories, servers
from .test_referral_form import complete_form

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def pytest_generate_tests(metafunc):
    # Never skipped: PostgreSQL gets gunicorn with processes and with threads, SQLite the threaded werkzeug.
    if "server" in metafunc.fixturenames:
        kinds = ["gunicorn-sync", "gunicorn-gthread"] if ON_POSTGRES else ["werkzeug-threads"]
        metafunc.parametrize("server", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def server(request, database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("race-server")
    many_logins = "10000 per minute"  # every browser of a race logs in from the same address
    if request.param == "werkzeug-threads":
        served = servers.create_served_app(database_url, folder, LOGIN_ATTEMPTS_PER_ADDRESS=many_logins)
        with servers.in_thread(served, name="race-server") as live:
            yield live
        return
    workers = ["--workers", "2"] + (
        ["--worker-class", "gthread", "--threads", "4"] if request.param == "gunicorn-gthread" else []
    )
    with servers.gunicorn(
        database_url, folder, *workers, "--timeout", "60", LOGIN_ATTEMPTS_PER_ADDRESS=many_logins, REQUIRE_2FA="0"
    ) as live:
        yield live


# --- A browser session, as far as the races need one -------------------------------------------


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Answer:
    status: int
    body: str
    location: str = ""
    page: str = ""  # the page the redirect led to (where the flashed message is shown)

    def json(self):
        import json

        return json.loads(self.body)


class Browser:
    """One session (cookie jar) against the server; reads CSRF tokens from the pages like a browser."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirects()
        )

    def _open(self, path: str, data: dict | None = None) -> Answer:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers={"Accept": "text/html,application/json"})
        try:
            with self.opener.open(request, timeout=60) as response:
                return Answer(response.status, response.read().decode(), response.headers.get("Location", ""))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode(errors="replace"), error.headers.get("Location", ""))

    def get(self, path: str) -> Answer:
        return self._open(path)

    def post(self, path: str, data: dict) -> Answer:
        return self._open(path, data)

    def follow(self, answer: Answer) -> Answer:
        if answer.status in (301, 302, 303) and answer.location:
            path = urllib.parse.urlsplit(answer.location)
            answer.page = self.get(path.path + (f"?{path.query}" if path.query else "")).body
        return answer

    def csrf(self, path: str) -> str:
        page = self.get(path).body
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def log_in(self, email: str) -> Browser:
        answer = self.post(
            "/login", {"email": email, "password": factories.PASSWORD, "csrf_token": self.csrf("/login")}
        )
        assert answer.status == 302, f"login of {email} failed: {answer.status}"
        return self


def browsers(server: servers.Served, users: list) -> list[Browser]:
    emails = [user.email for user in users]  # read here: the threads have no app context
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda email: Browser(server.url).log_in(email), emails))


def all_at_once(calls: list) -> list[Answer]:
    """Run the calls in threads released together by a barrier; each answer with its follow-up page."""
    start = threading.Barrier(len(calls), timeout=30)

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=90) for f in [pool.submit(run, call) for call in calls]]


def flashes(page: str) -> list[str]:
    return [unescape(m) for m in re.findall(r"data-flash>([^<]*)<", page)]


def says(shown: list[str], text: str) -> bool:
    return any(text in message for message in shown)


def by_status(answers: list[Answer]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    return dict(sorted(counts.items()))


def no_server_errors(server: servers.Served, answers: list[Answer]) -> None:
    failed = [a for a in answers if a.status >= 500]
    assert not failed, (
        f"{len(failed)} answers ≥ 500 (by status: {by_status(answers)}); server log:\n{server.log_tail()}"
    )
    assert not server.errors, server.errors[0]


# --- The races ------------------------------------------------------------------------------------


def test_twenty_parallel_submits_of_one_form_token(server, world):
    """A double (or twentyfold) click on "Einreichen" of a form never saved: one referral, and every
    other click is told which one it became."""
    tabs = browsers(server, [world.teacher] * 20)
    token = "race-form-token-" + "t" * 20
    forms = [complete_form(submit="1", client_token=token, csrf_token=tab.csrf("/referrals/new")) for tab in tabs]
    answers = all_at_once(
        [
            lambda tab=tab, data=data: tab.follow(tab.post("/referrals/new", data))
            for tab, data in zip(tabs, forms, strict=True)
        ]
    )
    print(f"\n[{server.url}] 20 submits of one token: {by_status(answers)}")
    no_server_errors(server, answers)

    stored = db.session.scalars(select(Referral).where(Referral.client_token == token)).all()
    assert len(stored) == 1 and stored[0].state is State.SUBMITTED
    number = stored[0].number
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 1
    messages = [flashes(a.page) for a in answers]
    winners = [m for m in messages if says(m, f"Die Mitteilung {number} wurde an den ASD übermittelt.")]
    losers = [m for m in messages if says(m, f"Diese Mitteilung wurde bereits eingereicht: {number}")]
    assert len(winners) == 1, messages
    assert len(losers) == 19, messages
    assert all(a.status == 302 and a.location.endswith(f"/referrals/{stored[0].id}") for a in answers)


def test_five_autosaves_against_five_submits(server, world):
    """Five drafts, each saved automatically in one tab while "Einreichen" is pressed in another, all
    ten requests at once: every submit goes through, every autosave is saved or told that the
    referral is already submitted."""
    drafts = []
    for i in range(5):
        referral = factories.complete_draft(world.teacher, first=f"Kind{i}")
        services.save_draft(referral, world.teacher)
        drafts.append(referral)
    db.session.commit()
    ids = [d.id for d in drafts]
    tabs = browsers(server, [world.teacher] * 10)
    calls = []
    for i, referral_id in enumerate(ids):
        autosaving, submitting = tabs[2 * i], tabs[2 * i + 1]
        saved = complete_form(
            child_first_name=f"Autosave{i}", csrf_token=autosaving.csrf(f"/referrals/{referral_id}/edit")
        )
        sent = complete_form(
            submit="1", child_first_name=f"Kind{i}", csrf_token=submitting.csrf(f"/referrals/{referral_id}/edit")
        )
        calls.append(lambda tab=autosaving, rid=referral_id, data=saved: tab.post(f"/referrals/{rid}/autosave", data))
        calls.append(
            lambda tab=submitting, rid=referral_id, data=sent: tab.follow(tab.post(f"/referrals/{rid}/edit", data))
        )
    answers = all_at_once(calls)
    autosaves, submits = answers[0::2], answers[1::2]
    print(f"\n[{server.url}] 5 autosaves: {by_status(autosaves)}; 5 submits: {by_status(submits)}")
    no_server_errors(server, answers)

    for referral_id, submit in zip(ids, submits, strict=True):
        assert submit.status == 302 and submit.location.endswith(f"/referrals/{referral_id}"), (
            submit.status,
            flashes(submit.page),
        )
        assert says(flashes(submit.page), "wurde an den ASD übermittelt"), flashes(submit.page)
    for autosave in autosaves:
        answer = autosave.json()
        assert (autosave.status, answer["saved"]) in ((200, True), (409, False)), (autosave.status, answer)
        if autosave.status == 409:
            assert "bereits eingereicht" in answer["message"]
            assert "andere Person" not in answer["message"] and "anderen Person" not in answer["message"]
    db.session.expire_all()
    stored = db.session.scalars(select(Referral).where(Referral.id.in_(ids))).all()
    assert [r.state for r in stored] == [State.SUBMITTED] * 5
    assert sorted(r.child_first_name for r in stored) == [f"Kind{i}" for i in range(5)], "the submitted content stands"


def test_twenty_parallel_acknowledgements(server, world):
    """Twenty clicks on "Eingang bestätigen" by three ASD staff (several tabs each): one
    acknowledgement; everyone else sees that it is done, and whose tab it was."""
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    staff = [world.asd, world.asd2, world.asd_lead]
    users = [staff[i % 3] for i in range(20)]
    user_ids = [user.id for user in users]
    tabs = browsers(server, users)
    path = f"/referrals/{referral.id}"
    tokens = [tab.csrf(path) for tab in tabs]
    answers = all_at_once(
        [
            lambda tab=tab, token=token: tab.follow(tab.post(f"{path}/acknowledge", {"csrf_token": token}))
            for tab, token in zip(tabs, tokens, strict=True)
        ]
    )
    print(f"\n[{server.url}] 20 acknowledgements: {by_status(answers)}")
    no_server_errors(server, answers)

    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    assert stored.state is State.ACKNOWLEDGED
    acknowledgements = db.session.scalars(
        select(StateChange).where(StateChange.referral_id == referral.id, StateChange.action == Action.ACKNOWLEDGE)
    ).all()
    assert len(acknowledgements) == 1
    winner = acknowledgements[0].actor_id
    messages = [flashes(a.page) for a in answers]
    assert sum(says(m, "Der Eingang wurde bestätigt.") for m in messages) == 1, messages
    for user_id, answer, shown in zip(user_ids, answers, messages, strict=True):
        if says(shown, "Der Eingang wurde bestätigt."):
            assert user_id == winner
            continue
        assert answer.status == 302 and answer.location.endswith(path), (answer.status, shown)
        assert says(shown, "Eingang bestätigt"), shown  # the state someone else left it in
        if user_id == winner:  # the winner's other tab: it was not "another person"
            assert not says(shown, "anderen Person"), shown


def test_sixteen_parallel_survey_answers_of_one_district(server, world):
    """The quarterly survey, answered at once by eight people of district WE, each from two tabs: one
    answer per person, none lost or doubled although every answer rewrites the district's answers
    (surveys/services.py, `_reshuffle`, behind the district's row lock); each second tab is told."""
    from referral.surveys.models import SurveyAnswer, SurveyDone, SurveyRound
    from referral.surveys.routes import DONE, NOT_OPEN
    from referral.surveys.services import quarter_of
    from referral.timeutil import utcnow

    db.session.add(SurveyRound(quarter=quarter_of(utcnow()), districts=[world.districts["we"]]))
    db.session.commit()
    staff = [world.users[k] for k in ("teacher", "teacher_other", "school_lead", "teacher_a2", "lead_a2")]
    staff += [world.asd, world.asd2, world.asd_lead]
    users = staff + staff
    values = [i % 5 + 1 for i in range(len(staff))] * 2
    tabs = browsers(server, users)
    tokens = [tab.csrf("/umfrage/quartal") for tab in tabs]
    answers = all_at_once(
        [
            lambda tab=tab, token=token, value=value: tab.follow(
                tab.post("/umfrage/quartal", {"csrf_token": token, "choice": "answer", "a1": str(value)})
            )
            for tab, token, value in zip(tabs, tokens, values, strict=True)
        ]
    )
    print(f"\n[{server.url}] 16 survey answers: {by_status(answers)}")
    no_server_errors(server, answers)
    db.session.expire_all()
    assert sorted(db.session.scalars(select(SurveyAnswer.a1))) == sorted(values[: len(staff)])
    assert db.session.scalar(select(func.count()).select_from(SurveyDone)) == len(staff)
    messages = [flashes(a.page) for a in answers]
    assert sum(says(m, DONE) for m in messages) == len(staff), messages
    assert sum(says(m, NOT_OPEN) for m in messages) == len(staff), messages
