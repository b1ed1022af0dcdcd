"""Browser tests: the real app served on a loopback port, driven by Debian's Chromium through Playwright.

The live server is a second app object on the same test database as the rest of the suite (the
`database_url` fixture), so the `world` fixture's users can log in through the real login form, and
the `app` fixture still empties the tables afterwards (the server is stopped before that).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from .. import servers

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = servers.LOOPBACK


@pytest.fixture
def live_server(app, database_url, tmp_path):
    """The real app on a free loopback port, in a background thread, with real CSRF and no SERVER_NAME.

    Depends on `app`, so that it is shut down before `app` empties the tables.
    """
    served = servers.create_served_app(database_url, tmp_path / "live")
    with servers.in_thread(served, name="live-server") as live:
        yield live


def chromium_executable() -> str:
    """Path of the Chromium to drive; fails under CI (env CI non-empty) if it is missing, else skips."""
    path = os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    message = (
        f"Chromium not found at {path} (set CHROMIUM=/path/to/chromium, or install Debian's: "
        "apt-get install -y chromium)."
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the browser tests must run: {message}", pytrace=False)
    pytest.skip(message)


class Browsers:
    """Starts Playwright and Chromium on first use, from inside the test, so that a missing browser
    is a test FAILURE under CI (or a skip locally), not a fixture error. Closes everything afterwards."""

    def __init__(self, server: servers.Served):
        self.server = server
        self.requests: list[str] = []  # every URL any page of any context requested
        self.page_errors: list[str] = []
        self.server_errors: list[str] = []  # HTTP 5xx answers
        self._playwright = None
        self._browser = None
        self._contexts = []

    def _launch(self):
        executable = chromium_executable()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:  # requirements-test.txt pins playwright
            if os.environ.get("CI"):
                pytest.fail(f"playwright is not installed: {error}", pytrace=False)
            pytest.skip(f"playwright is not installed ({error}); run `make install-test`.")
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)

    @property
    def browser(self):
        """The running Chromium (launched on first use), for a test that sets up its own contexts."""
        if self._browser is None:
            self._launch()
        return self._browser

    def new_page(self):
        """A page in a fresh browser context: one per user, so cookies never mix."""
        if self._browser is None:
            self._launch()
        context = self._browser.new_context(base_url=self.server.url, locale="de-DE", timezone_id="Europe/Berlin")
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = context.new_page()
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on(
            "response",
            lambda response: (
                response.status >= 500
                and self.server_errors.append(f"{response.status} {response.request.method} {response.url}")
            ),
        )
        return page

    def foreign_requests(self) -> list[str]:
        """Requests to anything but the loopback server (data: and about: URLs never leave the browser)."""
        foreign = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "about", "blob"):
                continue
            if parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname != LOOPBACK:
                foreign.append(url)
        return foreign

    def close(self):
        for context in self._contexts:
            context.close()
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()


@pytest.fixture
def browsers(live_server):
    launcher = Browsers(live_server)
    try:
        yield launcher
    finally:
        launcher.close()


def pytest_terminal_summary(terminalreporter):
    """The accessibility crawl's numbers (pages per role and in total), whenever it ran."""
    import sys

    module = sys.modules.get("tests.browser.test_accessibility")
    result = getattr(module, "_CRAWL", {}).get("result") if module else None
    if result is not None:
        terminalreporter.write_sep("-", "accessibility crawl")
        for line in result.report_lines():
            terminalreporter.write_line(line)
