"""Every key page at two database sizes, the app against a bare floor, and the batch jobs: one table.

    .venv/bin/python benchmarks/scale.py SMALL_URL BIG_URL [--rounds 50] [--seconds 10]

SMALL_URL and BIG_URL are PostgreSQL databases built beforehand (README, "Benchmark at state scale");
this script builds nothing. For each it starts the app as production runs it (gunicorn with
gunicorn.conf.py, 2 sync workers, REFERRAL_ENV=production, sessions and throttling in Redis on
127.0.0.1:6379, a database number of its own), plus a bare Flask + Jinja app serving the inbox's HTML
(benchmarks/floor.py) on the same settings. Then:

- logs in through the real login pages as generated users (second factor: the authenticator set-up of
  the first login, or a code from the user's stored secret; one coordinator account is created with
  `flask users create` when the database has none),
- requests each page ROUNDS times, small and big interleaved, one request at a time: p50, p95, ratio,
- counts each page's SQL queries once per database in this process (test client, same database and
  settings, a SQLAlchemy event counter; gunicorn's workers are left as production runs them),
- inbox throughput with 8 connections for SECONDS against the app and the floor (wrk, else threads),
- `flask audit verify` (entries/s), `flask retention run --dry-run` (time, peak memory), and `flask keys
  rotate` on a copy of the big database when one can be made (`CREATE DATABASE ... TEMPLATE`).

What it writes to the given databases is what production writes when these pages are viewed (audit
entries, reading markers), plus the benchmark users' second-factor set-up and the coordinator account.
"""

from __future__ import annotations

import argparse
import contextvars
import html
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
BIN = Path(PYTHON).parent
HOST = "referral.bench.example"  # SERVER_NAME; the requests name it in Host
PASSWORD = "Generiert-Nicht-Zum-Anmelden-1"  # referral/generator.py
COORDINATOR = "koordination.benchmark@generiert.example"
REDIS_DB = os.environ.get("BENCH_REDIS_DB", "14")  # sessions and counters apart from anything else
DEEP = 200  # pages deep into the inbox

GOALS = {
    "ratio": "≤ 1.5",
    "queries": "same",
    "throughput": "≥ 20 % of floor",
    "verify": "≥ 100,000/s",
    "retention": "≤ 300 MB",
    "rotation": "≥ 20,000/s",
}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- The environment both the servers and the in-process app get -----------------------------------


def base_env(url: str) -> dict[str, str]:
    from referral.config import _instance_data_keys, _instance_secret

    instance = ROOT / "instance"
    env = dict(os.environ)
    env.update(
        {
            "REFERRAL_ENV": "production",
            "DATABASE_URL": url,
            # A stable key: the second factor's stored secrets are encrypted with one derived from it.
            "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or _instance_secret(instance),
            "REFERRAL_DATA_KEYS": os.environ.get("REFERRAL_DATA_KEYS") or _instance_data_keys(instance),
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "SERVER_NAME": HOST,
            # As behind nginx: it terminates TLS and says so in X-Forwarded-Proto.
            "TRUSTED_PROXIES": "1",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "1",
            "UPLOAD_FOLDER": tempfile.mkdtemp(prefix="referral-bench-uploads-"),
            "FLASK_APP": "wsgi",
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("REFERRAL_OWN_METRICS_DIR", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One gunicorn master with production's settings, its log in a file."""

    def __init__(self, name: str, env: dict[str, str], target: str, logdir: Path):
        self.name, self.port = name, free_port()
        env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log = open(logdir / f"{name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", target],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn ended; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz", headers={"Host": HOST, "X-Forwarded-Proto": "https"})
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name}: no answer on port {self.port}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the workers (user + system), from /proc: what a request costs
        the app, whatever else runs on the machine."""
        ticks = os.sysconf("SC_CLK_TCK")
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for child in children:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


# --- A browser's worth of HTTP: one connection, cookies, no automatic redirects ---------------------


class Browser:
    def __init__(self, port: int, address: str = "127.0.0.1"):
        # The client's address as nginx passes it on (X-Forwarded-For): each benchmark user has one
        # of its own, as people at different schools would, so that the per-address login limits
        # see people, not the benchmark.
        self.port, self.address = port, address
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": self.address}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        """Status, Location and body."""
        headers = self.headers()
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            # Flask-WTF checks on HTTPS that a form comes from this site, as a browser's would.
            headers["Referer"] = f"https://{HOST}{path}"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Sync workers close the connection after each response; open the next one.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        location = response.getheader("Location", "") or ""
        if location.startswith("http"):
            parts = urlsplit(location)
            location = parts.path + (f"?{parts.query}" if parts.query else "")
        return response.status, location, data.decode("utf-8", "replace")

    def get(self, path: str) -> tuple[int, str, str]:
        return self.request("GET", path)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    if not found:
        raise SystemExit("no CSRF token on the page")
    return found.group(1)


# --- The in-process app: user lookup, second-factor codes, query counts ------------------------------


class Local:
    """The app in this process on one database (same settings as the servers)."""

    def __init__(self, env: dict[str, str]):
        from sqlalchemy import event

        from referral import create_app
        from referral.extensions import db

        self.env = env
        saved = dict(os.environ)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        try:
            # Quiet: the servers' logs go to files; this process prints the table.
            self.app = create_app(env={**env, "LOG_LEVEL": "WARNING"})
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.db = db
        self.queries = 0
        with self.app.app_context():

            def count(*args) -> None:
                self.queries += 1

            event.listen(db.engine, "before_cursor_execute", count)

    def run(self, function, *args):
        """In a context of its own: the app's context variables do not leak between calls."""

        def inside():
            with self.app.app_context():
                try:
                    return function(*args)
                finally:
                    self.db.session.remove()

        return contextvars.Context().run(inside)

    def user(self, email: str):
        from sqlalchemy import select

        from referral.accounts.models import User

        return self.run(lambda: self.db.session.scalar(select(User).where(User.email == email)))

    def totp(self, email: str) -> str:
        from sqlalchemy import select

        from referral.accounts.models import User

        def code() -> str:
            secret = self.db.session.scalar(select(User.tf_totp_secret).where(User.email == email))
            return self.app.extensions["security"]._totp_factory.generate_totp_password(secret)

        return self.run(code)

    def first_email(self, role, **scope) -> str:
        from sqlalchemy import select

        from referral.accounts.models import Membership, User

        def find():
            query = select(User.email).join(Membership).where(Membership.role == role, User.active.is_(True))
            for key, value in scope.items():
                query = query.where(getattr(Membership, key) == value)
            return self.db.session.scalar(query.order_by(User.email).limit(1))

        return self.run(find)

    def ensure_coordinator(self) -> None:
        from referral.accounts.models import Role

        if self.first_email(Role.COORDINATOR):
            return
        runner = self.app.test_cli_runner()
        result = contextvars.Context().run(
            runner.invoke,
            args=[
                "users",
                "create",
                COORDINATOR,
                "--name",
                "Koordination (Benchmark)",
                "--role",
                "coordinator",
                "--password",
                PASSWORD,
            ],
        )
        if result.exit_code:
            raise SystemExit(f"could not create the coordinator: {result.output}")
        log(result.output.strip())

    def count_queries(self, email: str, path: str) -> int:
        """The page's SQL statements in one request (after one warm-up), through the test client."""
        uniquifier = self.user(email).fs_uniquifier
        client = self.app.test_client()
        with client.session_transaction(base_url=f"https://{HOST}") as session:
            session["_user_id"] = uniquifier
            session["_fresh"] = True

        def fetch():
            response = client.get(path, base_url=f"https://{HOST}", headers={"X-Forwarded-Proto": "https"})
            response.get_data()
            response.close()
            return response.status_code

        contextvars.Context().run(fetch)
        before = self.queries
        status = contextvars.Context().run(fetch)
        if status != 200:
            raise SystemExit(f"in-process {path}: status {status}")
        return self.queries - before


# --- Logging in through the pages ------------------------------------------------------------------


def login(port: int, local: Local, email: str, address: str) -> Browser:
    browser = Browser(port, address)
    status, _, page = browser.get("/login")
    status, location, _ = browser.request(
        "POST", "/login", {"email": email, "password": PASSWORD, "csrf_token": csrf_of(page)}
    )
    if status != 302:
        raise SystemExit(f"login of {email}: status {status}")
    if location.startswith("/tf-setup"):
        # First login with the second factor required: set up the authenticator as a person would.
        _, _, page = browser.get("/tf-setup")
        _, _, page = browser.request("POST", "/tf-setup", {"setup": "authenticator", "csrf_token": csrf_of(page)})
        key = re.search(r"<div>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3,})</div>", page)
        if not key:
            raise SystemExit(f"{email}: no authenticator key on the set-up page")
        from passlib.totp import TOTP

        code = TOTP(key=key.group(1).replace("-", ""), format="base32").generate().token
        status, location, _ = browser.request("POST", "/tf-validate", {"code": code, "csrf_token": csrf_of(page)})
    elif location.startswith("/tf-validate"):
        _, _, page = browser.get(location)
        status, location, _ = browser.request(
            "POST", "/tf-validate", {"code": local.totp(email), "csrf_token": csrf_of(page)}
        )
    if status != 302 or location.startswith(("/login", "/tf-")):
        raise SystemExit(f"login of {email}: ended at {status} {location}")
    return browser


# --- The pages -------------------------------------------------------------------------------------


@dataclass
class Page:
    name: str  # for --pages
    label: str
    who: str  # worker, lead, school, coordinator
    path: str = ""
    paths: dict[str, str] = field(default_factory=dict)  # per size, when found by walking
    note: dict[str, str] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)


def pages() -> list[Page]:
    today = date.today()
    three_years = urlencode(
        {"period": "free", "first": today.replace(year=today.year - 3).isoformat(), "last": today.isoformat()}
    )
    return [
        Page("inbox", "ASD inbox, page 1 (open)", "worker", "/inbox"),
        Page("closed", "ASD inbox, state=closed", "worker", "/inbox?state=closed"),
        Page("overdue", "ASD inbox, overdue only", "worker", "/inbox?overdue=y"),
        Page("deep", f"ASD inbox, deep page (≤ {DEEP})", "worker"),
        Page("school", "school's list, page 1", "school", "/referrals"),
        Page("referral", "referral page (ASD)", "worker"),
        Page("coordinator", "coordinator's list", "coordinator", "/coordination/referrals"),
        Page("district", "district overview (lead)", "lead", "/district-overview"),
        Page("evaluation", "evaluation, current school year", "coordinator", "/coordination/evaluation"),
        Page(
            "evaluation-3y", "evaluation, 3 years city-wide", "coordinator", f"/coordination/evaluation?{three_years}"
        ),
        Page("csv-3y", "evaluation CSV, 3 years", "coordinator", f"/coordination/evaluation.csv?{three_years}"),
    ]


NEXT = re.compile(r'<a\b[^>]*href="([^"]+)"[^>]*>\s*(?:Weiter|Nächste|nächste Seite|Ältere)\b', re.IGNORECASE)
NEXT_REL = re.compile(r'<a\b[^>]*rel="next"[^>]*href="([^"]+)"|<a\b[^>]*href="([^"]+)"[^>]*rel="next"')


def next_link(page: str) -> str | None:
    found = NEXT_REL.search(page)
    if found:
        return html.unescape(found.group(1) or found.group(2))
    found = NEXT.search(page)
    return html.unescape(found.group(1)) if found else None


def deep_inbox(browser: Browser) -> tuple[str, str]:
    """A page about DEEP pages into the whole inbox (state=all): `?page=N` when the list is numbered,
    else the next links followed one by one (keyset pagination); the note says how deep it got."""
    path = "/inbox?state=all"
    status, _, page = browser.get(path)
    link = next_link(page)
    numbered = re.search(r"Seite\s+\d+\s+von\s+(\d+)", page)
    if link and "page=" in link and numbered:
        last = min(DEEP, int(numbered.group(1)))
        return f"/inbox?state=all&page={last}", f"page {last}"
    depth = 1
    while link and depth < DEEP:
        path = link
        status, _, page = browser.get(path)
        if status != 200:
            raise SystemExit(f"deep inbox: {path} answered {status}")
        depth += 1
        link = next_link(page)
    return path, f"{depth} pages deep"


def first_referral(page: str) -> str:
    found = re.search(r'href="(/referrals/\d+)"', page)
    if not found:
        raise SystemExit("no referral on the inbox page")
    return found.group(1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


# --- Throughput --------------------------------------------------------------------------------------


def throughput(
    server: Server, path: str, cookies: dict[str, str], seconds: float, connections: int
) -> tuple[float, float, str]:
    """Requests per second, worker CPU milliseconds per request, and the tool used."""
    cpu = server.cpu_seconds()
    rate, served, tool = _load(server.port, path, cookies, seconds, connections)
    return rate, (server.cpu_seconds() - cpu) * 1000 / max(1, served), tool


def _load(port: int, path: str, cookies: dict[str, str], seconds: float, connections: int) -> tuple[float, int, str]:
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if shutil.which("wrk"):
        command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{int(seconds)}s"]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        output = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
        ).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
        served = int(re.search(r"(\d+) requests in", output).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        if errors:
            raise SystemExit(f"wrk: {errors.group(1)} failed responses on {path}")
        return rate, served, "wrk"
    done = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < stop:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                raise SystemExit(f"throughput: {path} answered {response.status}")
            with lock:
                done[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.perf_counter() - started), done[0], "Python threads"


# --- Batch jobs --------------------------------------------------------------------------------------


def flask_command(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Seconds, peak memory (kB, from /usr/bin/time -v) and output of one `flask` command."""
    command = [str(BIN / "flask"), *args]
    timed = Path("/usr/bin/time").exists()
    if timed:
        command = ["/usr/bin/time", "-v", *command]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return seconds, int(peak.group(1)) if peak else 0, result.stdout


def psql(url: str, sql: str) -> str:
    parts = urlsplit(url.replace("+psycopg", ""))
    dsn = f"postgresql://{parts.netloc}/postgres"
    return subprocess.run(["psql", dsn, "-Atc", sql], capture_output=True, text=True, check=True).stdout.strip()


def count(url: str, table: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return value


def rotation(url: str, env: dict[str, str]) -> tuple[str, str]:
    """`flask keys rotate` on a copy of the big database; the copy is dropped afterwards."""
    from cryptography.fernet import Fernet

    source = urlsplit(url).path.lstrip("/")
    copy = f"{source}_rotation_{secrets.token_hex(3)}"
    try:
        psql(url, f'CREATE DATABASE "{copy}" TEMPLATE "{source}"')
    except subprocess.CalledProcessError as error:
        return "not measured", f"no copy of {source}: {error.stderr.strip().splitlines()[-1]}"
    try:
        copy_url = url.rsplit("/", 1)[0] + "/" + copy
        rotate_env = {
            **env,
            "DATABASE_URL": copy_url,
            "REFERRAL_DATA_KEYS": f"{Fernet.generate_key().decode()},{env['REFERRAL_DATA_KEYS']}",
        }
        seconds, _, output = flask_command(rotate_env, "keys", "rotate")
        # The command's summary line only: log lines may name other counts of "values".
        values = re.findall(r"Re-encrypted (\d+) values", output)
        if not values:
            return "not measured", f"no value count in the output: {output.strip()[-200:]}"
        total = int(values[-1])
        return f"{total / seconds:,.0f}/s", f"{total:,} values in {seconds:.0f} s"
    finally:
        psql(url, f'DROP DATABASE IF EXISTS "{copy}"')


# --- The run -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("small_url")
    parser.add_argument("big_url")
    parser.add_argument("--rounds", type=int, default=50, help="requests per page and size")
    parser.add_argument("--seconds", type=float, default=10, help="length of each throughput run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-batch", action="store_true", help="skip audit verify, retention and rotation")
    parser.add_argument("--no-rotation", action="store_true", help="skip the key rotation on a copy")
    parser.add_argument("--throughput-only", action="store_true", help="only the inbox against the floor")
    parser.add_argument("--pages", help=f"only these pages, comma-separated (of: {', '.join(p.name for p in pages())})")
    args = parser.parse_args()
    # Stopped with SIGTERM: still stop the servers (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    urls = {"small": args.small_url, "big": args.big_url}
    for size, url in urls.items():
        log(f"{size}: {count(url, 'referral'):,} referrals, {count(url, 'audit_entry'):,} audit entries")

    # The benchmark's own Redis database: sessions and login counters of earlier runs go.
    import redis

    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()
    logdir = Path(tempfile.mkdtemp(prefix="referral-scale-"))
    envs = {size: base_env(url) for size, url in urls.items()}
    locals_ = {size: Local(env) for size, env in envs.items()}
    servers: dict[str, Server] = {}
    try:
        for size in urls:
            servers[size] = Server(size, envs[size], "wsgi:app", logdir)
        for server in servers.values():
            server.wait()
        log(f"servers up (logs in {logdir})")

        from referral.accounts.models import Role

        browsers: dict[str, dict[str, Browser]] = {}
        emails: dict[str, dict[str, str]] = {}
        for size, local in locals_.items():
            local.ensure_coordinator()
            lead = local.first_email(Role.ASD_LEAD)
            district = local.user(lead).memberships[0].district_id
            emails[size] = {
                "worker": local.first_email(Role.ASD_WORKER, district_id=district),
                "lead": lead,
                "school": local.first_email(Role.SCHOOL_LEAD),
                "coordinator": local.first_email(Role.COORDINATOR),
            }
            browsers[size] = {
                who: login(servers[size].port, local, email, f"10.{len(browsers)}.0.{n}")
                for n, (who, email) in enumerate(emails[size].items(), start=1)
            }
            log(f"{size}: logged in as {', '.join(emails[size].values())}")

        plan = [] if args.throughput_only else pages()
        if args.pages:
            wanted = set(args.pages.split(","))
            unknown = wanted - {page.name for page in plan}
            if unknown:
                raise SystemExit(f"--pages: no page named {', '.join(sorted(unknown))}")
            plan = [page for page in plan if page.name in wanted]
        for page in plan:
            for size in urls:
                browser = browsers[size][page.who]
                if page.label.startswith("ASD inbox, deep"):
                    page.paths[size], page.note[size] = deep_inbox(browser)
                elif page.label.startswith("referral page"):
                    page.paths[size] = first_referral(browser.get("/inbox")[2])
                else:
                    page.paths[size] = page.path
                status, _, body = browser.get(page.paths[size])  # warm-up, and the check that it works
                if status != 200:
                    raise SystemExit(f"{size} {page.label}: {page.paths[size]} answered {status}")
                page.queries[size] = locals_[size].count_queries(emails[size][page.who], page.paths[size])
                page.timings[size] = []
        log("pages found; timing")

        for round_ in range(args.rounds if plan else 0):
            for page in plan:
                for size in urls:
                    browser = browsers[size][page.who]
                    started = time.perf_counter()
                    status, _, _ = browser.get(page.paths[size])
                    page.timings[size].append(time.perf_counter() - started)
                    if status != 200:
                        raise SystemExit(f"{size} {page.label}: status {status}")
            if round_ % 10 == 9:
                log(f"  round {round_ + 1}/{args.rounds}")

        # Throughput: the small database's inbox (the application's cost, not the data's) and the floor.
        inbox = browsers["small"]["worker"]
        _, _, captured = inbox.get("/inbox")
        token = csrf_of(captured)
        template = logdir / "floor" / "inbox.html"
        template.parent.mkdir()
        template.write_text("{% raw %}" + captured.replace(token, "{% endraw %}{{ token }}{% raw %}") + "{% endraw %}")
        floor_env = {**envs["small"], "FLOOR_TEMPLATE": str(template)}
        servers["floor"] = Server("floor", floor_env, "benchmarks.floor:app", logdir)
        servers["floor"].wait()
        app_rate, app_cpu, tool = throughput(servers["small"], "/inbox", inbox.cookies, args.seconds, args.connections)
        floor_rate, floor_cpu, _ = throughput(servers["floor"], "/inbox", {}, args.seconds, args.connections)
    finally:
        for server in servers.values():
            server.stop()

    for local in locals_.values():  # a template copy needs the source without connections
        local.run(lambda local=local: local.db.engine.dispose())
    batch: list[tuple[str, str, str, str]] = []
    if not (args.no_batch or args.throughput_only):
        big = envs["big"]
        entries = count(urls["big"], "audit_entry")
        seconds, _, output = flask_command(big, "audit", "verify")
        batch.append(
            (
                "audit verify (big)",
                f"{entries / seconds:,.0f}/s",
                GOALS["verify"],
                f"{entries:,} entries in {seconds:.1f} s (whole command): {output.strip()[:80]}",
            )
        )
        seconds, peak, _ = flask_command(big, "retention", "run", "--dry-run")
        batch.append(
            (
                "retention run --dry-run (big)",
                f"{peak / 1024:,.0f} MB" if peak else "not measured",
                GOALS["retention"],
                f"{seconds:.1f} s; peak RSS from /usr/bin/time -v",
            )
        )
        if args.no_rotation:
            batch.append(("keys rotate (copy of big)", "not measured", GOALS["rotation"], "--no-rotation given"))
        else:
            rate, note = rotation(urls["big"], big)
            batch.append(("keys rotate (copy of big)", rate, GOALS["rotation"], note))

    # --- The table ---
    print()
    print(f"Rounds: {args.rounds} per page and size, sequential, small and big interleaved; times in ms.")
    print()
    print("| page | p50 small | p95 small | p50 big | p95 big | ratio p95 | goal | queries small → big | goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for page in plan:
        small, big = page.timings["small"], page.timings["big"]
        ratio = percentile(big, 0.95) / percentile(small, 0.95)
        label = page.label + (f" ({page.note['small']} / {page.note['big']})" if page.note else "")
        verdict = "✓" if ratio <= 1.5 else "✗"
        same = "✓" if page.queries["small"] == page.queries["big"] else "✗"
        print(
            f"| {label} | {statistics.median(small) * 1000:.0f} | {percentile(small, 0.95) * 1000:.0f} "
            f"| {statistics.median(big) * 1000:.0f} | {percentile(big, 0.95) * 1000:.0f} "
            f"| {ratio:.2f} {verdict} | {GOALS['ratio']} "
            f"| {page.queries['small']} → {page.queries['big']} {same} | {GOALS['queries']} |"
        )
    print()
    share = app_rate / floor_rate * 100
    print("| measure | value | goal | notes |")
    print("|---|---|---|---|")
    print(
        f"| inbox throughput (small, {args.connections} conn., {args.seconds:.0f} s) | {app_rate:,.1f} req/s = "
        f"{share:.1f} % of floor {'✓' if share >= 20 else '✗'} | {GOALS['throughput']} "
        f"| floor {floor_rate:,.0f} req/s; {tool}; 2 sync workers each |"
    )
    print(
        f"| worker CPU per inbox request | {app_cpu:.1f} ms (floor {floor_cpu:.2f} ms) | – "
        "| user + system time of the gunicorn workers during the run ÷ requests served |"
    )
    for name, value, goal, note in batch:
        print(f"| {name} | {value} | {goal} | {note} |")


if __name__ == "__main__":
    main()
