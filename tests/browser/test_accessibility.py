"""Accessibility proven on every page (BITV 2.0 / WCAG 2.1 AA), issue 11 section 3.

One crawl per run: the demo data (referrals and consultations in every state) is loaded, then every
role logs in through the login form and visits, breadth-first, every page reachable by a same-origin
GET link from its start page (navigation, lists, detail pages), at most a few pages per route, plus
the error states of the referral, consultation, assessment and feedback forms (submitted empty once).
On each page axe-core runs with the WCAG 2.1 A/AA rules, the server's HTML is saved for the Nu HTML
checker, and the main pages are opened once more at 320 CSS px for the reflow check.

The three tests below share that crawl (it runs in whichever of them comes first) and each asserts
its own part, so that a failure says which check failed:
- test_no_serious_axe_violations: no axe violation of impact serious or critical;
- test_nu_html_checker_finds_no_errors: vnu.jar --errors-only over the saved pages;
- test_reflow_at_320_css_px: no horizontal page scrolling at 320 px on the main pages, and every
  region that scrolls sideways there can be reached by keyboard.

Tools: axe-core and vnu-jar from the npm registry (tests/a11y/package.json, installed by `make test`
with `npm ci`), Java from Debian. Missing tools skip these tests locally and fail them under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from referral import demo
from referral.cases.models import Referral
from referral.cases.process import State
from referral.consultations.models import Consultation
from referral.consultations.process import ConsultationState
from referral.extensions import db
from referral.signon.settings import Provider

pytestmark = [pytest.mark.browser, pytest.mark.a11y]

TOOLS = Path(__file__).resolve().parent.parent / "a11y"
AXE = TOOLS / "node_modules" / "axe-core" / "axe.min.js"
VNU = TOOLS / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 720}

# The demo's users, one per role (referral/demo.py); None: not logged in.
ROLES = {
    "anonymous": None,
    "teacher": "lehrkraft@demo.example",
    "school_lead": "schulleitung@demo.example",
    "asd_worker": "asd@demo.example",
    "asd_lead": "asd-leitung@demo.example",
    "insofa": "insofa@demo.example",
    "coordinator": "koordination@demo.example",
    "admin": "admin@demo.example",
}
# The refusal page of a login through an identity provider (the crawl's provider is configured below).
LABEL = "Mit dem Konto der Stadt anmelden"
ANONYMOUS_START = ["/login", "/password/reset", "/login/oidc/stadt/callback?error=access_denied"]
# Where the crawl starts besides the start page: lists behind a GET filter form, which has no links to follow
# (the ASD's inbox shows open cases; answered and closed ones only with the filter "alle").
EXTRA_START = {"asd_worker": ["/inbox?state=all"], "asd_lead": ["/inbox?state=all"]}

# Pages per route pattern. The referral and consultation pages differ by state, so more of them.
CAP_PER_PATTERN = 3
CAPS = {"cases.show": 10, "consultations.show": 5}
# Never followed: downloads, and GETs that change something (opening a notification marks it read).
NOT_FOLLOWED = {
    "signon.start",  # leads to the identity provider, another site
    "api.openapi",  # the API's JSON document, not a page (its page is api.docs, crawled)
    "cases.pdf",
    "cases.download",
    "administration.users_csv",
    "audit.export",
    "evaluation.export",
    "notifications.open_",
    "security.logout",
    "static",
    "bootstrap.static",
    "security.static",
}
# Opened again at 320 CSS px: start pages, lists, forms, detail pages, evaluation, administration.
MAIN_PAGES = {
    "home.index",
    "home.school_start",
    "cases.my_referrals",
    "cases.inbox",
    "cases.new",
    "cases.edit",
    "cases.show",
    "cases.assessment",
    "cases.feedback",
    "consultations.index",
    "consultations.new",
    "consultations.show",
    "evaluation.index",
    "evaluation.district_overview",
    "surveys.referral_survey",
    "surveys.quarterly",
    "surveys.rounds",
    "surveys.comments",
    "coordination.referrals",
    "audit.search",
    "directory.index",
    "guide.index",
    "guide.versions",
    "guide.old_version",
    "guide.edit",
    "notifications.index",
    "administration.overview",
    "administration.users",
    "administration.user",
    "administration.schools",
    "administration.districts",
    "administration.deadlines",
    "administration.changes",
    "security.login",
}


def _tool_missing(message: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the accessibility checks must run: {message}", pytrace=False)
    pytest.skip(message)


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page as shown (axe is injected by the context)."""
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' '))}));
        }""",
        WCAG_TAGS,
    )


@dataclass
class Visit:
    role: str
    url: str
    endpoint: str
    status: int
    file: Path
    violations: list[dict] = field(default_factory=list)


@dataclass
class Crawl:
    visits: list[Visit] = field(default_factory=list)
    reflow: list[dict] = field(default_factory=list)  # one entry per main page and role at 320 px
    pages_dir: Path | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # server errors, broken error states
    role_seconds: dict[str, float] = field(default_factory=dict)
    states: dict[tuple[str, int], str] = field(default_factory=dict)  # (route, id) of the demo data -> its state

    def states_seen(self, side: set[str]) -> set[str]:
        """The states of the referrals and consultations whose pages the roles of `side` visited."""
        seen = set()
        for visit in self.visits:
            if visit.role in side and visit.endpoint in ("cases.show", "cases.edit", "consultations.show"):
                number = int(urlsplit(visit.url).path.rstrip("/").split("/")[2])
                seen.add(self.states.get((visit.endpoint.split(".")[0], number)))
        return seen - {None}

    def per_role(self) -> Counter:
        return Counter(visit.role for visit in self.visits)

    def report_lines(self) -> list[str]:
        lines = [
            f"  {role:<12} {count:>4} pages  ({self.role_seconds.get(role, 0):.0f} s)"
            for role, count in self.per_role().items()
        ]
        lines.append(
            f"  {'total':<12} {len(self.visits):>4} pages visited (axe-core, Nu HTML checker); "
            f"{len(self.reflow)} main pages again at 320 px; crawl took {self.seconds:.0f} s"
        )
        lines.append(f"  the pages' HTML: {self.pages_dir}")
        return lines

    def summary(self) -> str:
        roles = ", ".join(f"{role} {count}" for role, count in self.per_role().items())
        return (
            f"accessibility crawl: {len(self.visits)} pages visited ({roles}); "
            f"{len(self.reflow)} checked at 320 px; {self.seconds:.0f} s; HTML in {self.pages_dir}"
        )


_CRAWL: dict[str, Crawl] = {}  # one crawl per test session, shared by the three tests


@pytest.fixture
def crawl(request, tmp_path_factory) -> Crawl:
    if "result" not in _CRAWL:
        if not AXE.is_file():
            _tool_missing(
                f"axe-core is not installed ({AXE} missing); `make test` installs it with "
                "`npm ci --prefix tests/a11y` (needs Node.js and npm: apt-get install -y nodejs npm)."
            )
        request.getfixturevalue("app")
        live_server = request.getfixturevalue("live_server")
        browsers = request.getfixturevalue("browsers")
        pages_dir = (
            Path(os.environ["A11Y_PAGES_DIR"])
            if os.environ.get("A11Y_PAGES_DIR")
            else tmp_path_factory.mktemp("a11y-pages")
        )
        if pages_dir.exists():
            shutil.rmtree(pages_dir)
        pages_dir.mkdir(parents=True)
        _CRAWL["result"] = Crawler(live_server, browsers, pages_dir).run()
        print("\n" + _CRAWL["result"].summary())
    return _CRAWL["result"]


class Crawler:
    def __init__(self, live_server, browsers, pages_dir: Path):
        self.server = live_server
        self.browsers = browsers
        self.pages_dir = pages_dir
        self.axe_source = AXE.read_text(encoding="utf-8")
        self.adapter = live_server.app.url_map.bind("127.0.0.1")
        self.result = Crawl(pages_dir=pages_dir)

    # --- data and browser ------------------------------------------------------------------------

    def run(self) -> Crawl:
        started = time.monotonic()
        # An identity provider, so that the login page shows its button and the admin's account pages
        # their "Anmeldedienste" section; nothing here calls it.
        self.server.app.config["OIDC_PROVIDERS"] = {
            "stadt": Provider("stadt", "https://login.stadt.example", "rp", "geheim", LABEL, frozenset(), None)
        }
        demo.load()
        db.session.commit()
        in_assessment = db.session.scalar(select(Referral.id).where(Referral.state == State.IN_ASSESSMENT))
        for kind, model in (("cases", Referral), ("consultations", Consultation)):
            for number, state in db.session.execute(select(model.id, model.state)):
                self.result.states[(kind, number)] = str(state.value)
        db.session.commit()  # end the read transaction: the server writes to the same database
        browser = self.browsers.browser  # starts Chromium (or skips / fails under CI, with the reason)
        for role, email in ROLES.items():
            role_started = time.monotonic()
            context = browser.new_context(
                base_url=self.server.url, locale="de-DE", timezone_id="Europe/Berlin", viewport=DESKTOP
            )
            context.set_default_timeout(15_000)
            # Through the DevTools protocol, so the app's Content-Security-Policy (script-src 'self') stays on.
            context.add_init_script(script=self.axe_source)
            page = context.new_page()
            page.on(
                "response",
                lambda response: (
                    response.status >= 500
                    and self.result.problems.append(f"{response.status} {response.request.method} {response.url}")
                ),
            )
            page.on(
                "pageerror",
                lambda error, role=role, page=page: self.result.problems.append(
                    f"{role}: JavaScript error on {page.url}: {error}"
                ),
            )
            if email:
                self._log_in(page, email)
            main_pages = self._crawl_role(role, page, ["/", *EXTRA_START.get(role, [])] if email else ANONYMOUS_START)
            self._error_states(role, page, in_assessment)
            self._reflow(role, browser, context, main_pages)
            context.close()
            self.result.role_seconds[role] = time.monotonic() - role_started
        self.result.problems += [f"server error:\n{error}" for error in self.server.errors]
        self.result.seconds = time.monotonic() - started
        return self.result

    def _log_in(self, page, email: str) -> None:
        page.goto("/login")
        page.get_by_label("E-Mail-Adresse").fill(email)
        page.get_by_label("Passwort").fill(demo.PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Anmelden").click()
        if urlsplit(page.url).path == "/login":
            raise AssertionError(f"{email} could not log in")

    # --- the crawl ---------------------------------------------------------------------------------

    def _endpoint(self, url: str) -> tuple[str | None, str]:
        """The route (endpoint) of a same-origin GET URL, and the URL without its fragment; None: not followed."""
        parts = urlsplit(url)
        base = urlsplit(self.server.url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return None, url
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        try:
            endpoint, _ = self.adapter.match(parts.path, method="GET")
        except RequestRedirect as redirect:
            return self._endpoint(redirect.new_url)
        except HTTPException:  # 404, or a POST-only route
            return None, clean
        return (None if endpoint in NOT_FOLLOWED else endpoint), clean

    def _crawl_role(self, role: str, page, start: list[str]) -> dict[str, str]:
        """Breadth-first over same-origin GET links; returns the first URL seen of each main page."""
        queue = deque(self.server.url + path for path in start)
        seen: set[str] = set(queue)
        checked: set[str] = set()
        per_pattern: Counter = Counter()
        main_pages: dict[str, str] = {}
        while queue:
            url = queue.popleft()
            endpoint, url = self._endpoint(url)
            if endpoint is None or url in checked:
                continue
            pattern = (endpoint, frozenset(key for key, _ in parse_qsl(urlsplit(url).query)))
            if per_pattern[pattern] >= CAPS.get(endpoint, CAP_PER_PATTERN):
                continue
            per_pattern[pattern] += 1
            response = page.goto(url)
            final_endpoint, final_url = self._endpoint(page.url)
            if final_url != url and final_url in checked:  # redirected to a page checked already ("/")
                continue
            checked.add(final_url)
            if final_endpoint in MAIN_PAGES:
                main_pages.setdefault(final_endpoint, final_url)
            self._check(role, page, response, final_endpoint or endpoint)
            for link in page.eval_on_selector_all("a[href]:not([download])", "links => links.map(a => a.href)"):
                link = urlunsplit(urlsplit(link)._replace(fragment=""))
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
        return main_pages

    def _check(self, role: str, page, response, endpoint: str, label: str = "") -> Visit:
        """Run axe-core on the page as shown and save the server's HTML for the Nu checker."""
        number = len(self.result.visits) + 1
        file = self.pages_dir / f"{number:04d}-{role}-{endpoint.replace('.', '-')}{label}.html"
        body = response.text() if response is not None else page.content()
        file.write_text(body, encoding="utf-8")
        violations = axe_violations(page)
        visit = Visit(
            role=role,
            url=page.url,
            endpoint=endpoint,
            status=response.status if response else 0,
            file=file,
            violations=violations,
        )
        self.result.visits.append(visit)
        return visit

    # --- the forms' error states -------------------------------------------------------------------

    def _error_states(self, role: str, page, in_assessment: int) -> None:
        forms = {  # (page, its submit button, the error marked at a field?)
            "anonymous": [("/login", "Anmelden", False)],  # one message for all failures, by design
            "teacher": [
                ("/referrals/new", "Mitteilung einreichen", True),
                ("/consultations/new", "Anfrage an den InsoFa-Pool senden", True),
            ],
            "asd_worker": [
                (f"/referrals/{in_assessment}/assessment", "Einschätzung speichern", True),
                (f"/referrals/{in_assessment}/feedback", "Rückmeldung geben", True),
            ],
        }.get(role, [])
        for path, button, at_field in forms:
            page.goto(path)
            self._clear_inputs(page)
            with page.expect_navigation() as navigation:
                page.get_by_role("button", name=button, exact=True).click()
            response = navigation.value
            endpoint, _ = self._endpoint(page.url)
            visit = self._check(role, page, response, endpoint or path, label="-errors")
            if at_field and not page.locator("[aria-invalid=true]").count():
                self.result.problems.append(f"{role}: submitting {path} empty showed no field errors ({visit.url})")
        # The error pages: a page that does not exist, and one the role may not see.
        for path, status in {"teacher": [("/gibt-es-nicht", 404), ("/admin/", 403)]}.get(role, []):
            response = page.goto(path)
            visit = self._check(role, page, response, f"error-{status}")
            if visit.status != status:
                self.result.problems.append(f"{role}: {path} answered {visit.status}, not the error page {status}")

    @staticmethod
    def _clear_inputs(page) -> None:
        """Empty what the form brings filled in (e.g. the feedback's contact), as a hurried user would."""
        for field_ in page.locator(
            "main form input[type=text], main form input[type=tel], main form input[type=email], "
            "main form input:not([type]), main form textarea"
        ).all():
            if field_.is_visible() and field_.is_editable():
                field_.fill("")

    # --- reflow at 320 CSS px -----------------------------------------------------------------------

    def _reflow(self, role: str, browser, desktop, main_pages: dict[str, str]) -> None:
        context = browser.new_context(
            base_url=self.server.url,
            locale="de-DE",
            timezone_id="Europe/Berlin",
            viewport=NARROW,
            storage_state=desktop.storage_state(),
        )
        context.add_init_script(script=self.axe_source)
        page = context.new_page()
        for endpoint, url in main_pages.items():
            page.goto(url)
            measured = page.evaluate(
                """async () => {
                    const result = await axe.run(document, {
                        runOnly: {type: 'rule', values: ['scrollable-region-focusable']},
                        resultTypes: ['violations']});
                    return {scrollWidth: document.documentElement.scrollWidth,
                            unreachable: result.violations.flatMap(v => v.nodes.map(n => n.target.join(' ')))};
                }"""
            )
            self.result.reflow.append({"role": role, "endpoint": endpoint, "url": page.url, **measured})
        context.close()


# --- the three checks ------------------------------------------------------------------------------


def test_axe_check_finds_a_known_violation(browsers):
    """The harness itself: axe injected under the app's CSP finds what it must (else a clean crawl proves nothing)."""
    if not AXE.is_file():
        _tool_missing(f"axe-core is not installed ({AXE} missing); `make test` installs it.")
    context = browsers.browser.new_context(base_url=browsers.server.url, viewport=DESKTOP)
    context.add_init_script(script=AXE.read_text(encoding="utf-8"))
    page = context.new_page()
    page.goto("/login")  # served with the app's Content-Security-Policy
    page.evaluate("""() => { const img = document.createElement('img'); img.src = 'data:,'; img.id = 'ohne-alt';
                             document.querySelector('main').append(img); }""")
    found = {(v["id"], v["impact"]): v["targets"] for v in axe_violations(page)}
    context.close()
    assert found.get(("image-alt", "critical")) == ["#ohne-alt"], found


def test_no_serious_axe_violations(crawl):
    assert len(crawl.visits) > 50, crawl.summary()  # a crawl that found nothing proves nothing
    assert set(crawl.per_role()) == set(ROLES), crawl.summary()
    assert not crawl.problems, "\n".join(crawl.problems)
    # The pages of referrals and consultations in every state were among them, for the school and the ASD.
    school_side = crawl.states_seen({"teacher", "school_lead"})
    assert school_side >= {s.value for s in State} | {s.value for s in ConsultationState}, school_side
    asd_side = crawl.states_seen({"asd_worker", "asd_lead"})
    assert asd_side >= {s.value for s in State} - {State.DRAFT.value}, asd_side
    assert crawl.states_seen({"insofa"}) >= {s.value for s in ConsultationState} - {"cancelled"}
    found = []
    for visit in crawl.visits:
        for violation in visit.violations:
            if violation["impact"] in FAILING_IMPACTS:
                found.append(
                    f"{visit.role} {visit.url}: {violation['id']} ({violation['impact']}, "
                    f"{violation['help']}): {', '.join(violation['targets'][:5])}"
                )
    assert not found, f"{len(found)} serious or critical axe-core violations:\n" + "\n".join(found)


@pytest.fixture
def java() -> str:
    """Java for the Nu HTML checker, looked for before the crawl starts."""
    java = shutil.which("java")
    if java is None:
        _tool_missing(
            "Java is not installed (apt-get install -y openjdk-17-jre-headless); the Nu HTML checker needs it."
        )
    if not VNU.is_file():
        _tool_missing(
            f"vnu-jar is not installed ({VNU} missing); `make test` installs it with `npm ci --prefix tests/a11y`."
        )
    return java


def test_nu_html_checker_finds_no_errors(java, crawl):
    files = sorted(str(visit.file) for visit in crawl.visits)
    run = subprocess.run(
        [java, "-jar", str(VNU), "--errors-only", "--format", "json", *files],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # vnu writes its report as one JSON line to stderr; anything else there (a JVM warning) is not the report.
    lines = [line for line in (run.stderr + "\n" + run.stdout).splitlines() if line.startswith('{"')]
    assert lines, f"the Nu HTML checker gave no report (exit {run.returncode}):\n{run.stderr[-2000:]}"
    report = json.loads(lines[-1])
    by_file = {str(visit.file): visit for visit in crawl.visits}
    errors = []
    for message in report["messages"]:
        path = urlsplit(message.get("url", "")).path
        visit = by_file.get(path)
        where = f"{visit.role} {visit.url}" if visit else path
        errors.append(
            f"{where} (line {message.get('lastLine')}): {message['message']} "
            f"[{message.get('extract', '').strip()[:80]}]"
        )
    print(f"\nNu HTML checker: {len(files)} pages, {len(errors)} errors")
    assert run.returncode in (0, 1), run.stderr[-2000:]
    assert not errors, f"{len(errors)} Nu HTML checker errors over {len(files)} pages:\n" + "\n".join(errors)


def test_reflow_at_320_css_px(crawl):
    checked = {(entry["role"], entry["endpoint"]) for entry in crawl.reflow}
    # Every role's start page and its own main pages were among them.
    for role, endpoint in [
        ("teacher", "cases.new"),
        ("teacher", "cases.show"),
        ("asd_worker", "cases.inbox"),
        ("asd_worker", "cases.show"),
        ("coordinator", "evaluation.index"),
        ("admin", "administration.users"),
        ("insofa", "consultations.show"),
    ]:
        assert (role, endpoint) in checked, f"{role} {endpoint} was not checked at 320 px"
    wide = [
        f"{e['role']} {e['url']}: page is {e['scrollWidth']} px wide" for e in crawl.reflow if e["scrollWidth"] > 320
    ]
    unreachable = [
        f"{e['role']} {e['url']}: sideways scrolling region not reachable by keyboard: {target}"
        for e in crawl.reflow
        for target in e["unreachable"]
    ]
    assert not wide + unreachable, f"reflow at 320 CSS px ({len(crawl.reflow)} pages):\n" + "\n".join(
        wide + unreachable
    )
