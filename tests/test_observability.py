"""What the operator watches: /metrics (protected; counts per endpoint, outbox, overdue per district,
audit chain) and the logs (one JSON object per line, with request id, route, status, duration, user id,
and no personal data), in the app and under gunicorn with gunicorn.conf.py and two workers."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db
from referral.notifications.delivery import enqueue
from referral.notifications.models import OutboxMail
from referral.observability import logs
from referral.timeutil import utcnow

from . import factories, servers

TOKEN = "metrics-" + "k" * 40


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def requests_to(found: dict, endpoint: str) -> float:
    return sum(
        v
        for (name, labels), v in found.items()
        if name == "referral_http_requests_total" and ("endpoint", endpoint) in labels
    )


# --- Who may read the metrics -------------------------------------------------------------------------


def test_without_token_or_networks_the_metrics_do_not_exist(app, client):
    app.config.update(METRICS_TOKEN=None, METRICS_ALLOWED_NETWORKS=[])
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=bearer()).status_code == 404


def test_the_token_is_required_when_set(app, client):
    app.config.update(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Zugangsschlüssel" in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer("metrics-" + "x" * 40)).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401  # not as bearer
    answered = client.get("/metrics", headers=bearer())
    assert answered.status_code == 200 and answered.mimetype == "text/plain"
    assert "referral_audit_chain_length" in answered.get_data(as_text=True)


def test_only_the_allowed_networks_may_scrape(app, client):
    app.config.update(METRICS_TOKEN=None, METRICS_ALLOWED_NETWORKS=[ipaddress.ip_network("10.20.0.0/16")])
    assert client.get("/metrics").status_code == 403  # the test client comes from 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.21.0.5"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200
    # Both set: both must hold.
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 401
    assert client.get("/metrics", headers=bearer()).status_code == 403
    assert client.get("/metrics", headers=bearer(), environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200


def test_production_refuses_a_short_token_and_bad_networks():
    from referral.config import ConfigError, load

    env = {
        "REFERRAL_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": "postgresql://x@localhost/x",
        "REFERRAL_DATA_KEYS": "k",
        "SERVER_NAME": "mitteilungen.stadt.example",
    }
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load(servers.ROOT / "instance", {**env, "METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_NETWORKS"):
        load(servers.ROOT / "instance", {"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, nonsense", "SECRET_KEY": "s" * 40})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load(servers.ROOT / "instance", {"LOG_FORMAT": "xml", "SECRET_KEY": "s" * 40})
    settings = load(servers.ROOT / "instance", {**env, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,fd00::/8"})
    assert settings["LOG_FORMAT"] == "json" and settings["METRICS_TOKEN"] is None
    assert [str(n) for n in settings["METRICS_ALLOWED_NETWORKS"]] == ["10.0.0.0/8", "fd00::/8"]


# --- What the metrics say -----------------------------------------------------------------------------


def test_metrics_count_requests_per_endpoint_and_read_outbox_overdue_and_audit(app, world, as_user, client):
    app.config.update(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
    # In district WE (dated 5 Nov 2026, long past): one late with acknowledgement and feedback, one
    # late with feedback, one closed; nothing in HM.
    late_ack = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    late_feedback = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    factories.referral_in(State.CLOSED, world.teacher, world.asd, lead=world.asd_lead)
    old = enqueue("jemand@test.example", "Alt", "Text")
    old.created_at = utcnow() - timedelta(hours=2)
    db.session.commit()
    before = samples(client.get("/metrics", headers=bearer()).get_data(as_text=True))

    asd = as_user(world.asd)
    for referral in (late_ack, late_feedback, late_ack):
        assert asd.get(f"/referrals/{referral.id}").status_code == 200
    assert asd.get("/referrals/999999").status_code == 404
    assert asd.get("/no/such/page/4711").status_code == 404

    text = client.get("/metrics", headers=bearer()).get_data(as_text=True)
    found = samples(text)
    assert requests_to(found, "cases.show") - requests_to(before, "cases.show") == 4
    not_found = {"endpoint": "cases.show", "method": "GET", "status": "404"}
    assert (
        value(found, "referral_http_requests_total", **not_found)
        - (value(before, "referral_http_requests_total", **not_found) or 0)
        == 1
    )  # the counts live as long as the process: other tests' requests are in them too
    assert value(found, "referral_http_request_duration_seconds_count", endpoint="cases.show", method="GET") >= 4
    assert requests_to(found, "none") - requests_to(before, "none") == 1  # no route: no URL either
    # Labels name endpoints, never URLs or ids.
    for (name, labels), _ in found.items():
        for label, label_value in labels:
            assert "/" not in label_value and str(late_ack.id) != label_value, (name, label, label_value)
            assert "4711" not in label_value and "999999" not in label_value

    waiting = db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None)))
    assert waiting >= 1 and value(found, "referral_outbox_mails") == waiting
    assert 7200 <= value(found, "referral_outbox_oldest_age_seconds") < 7200 + 120

    assert value(found, "referral_overdue_referrals", district="WE") == 2
    assert value(found, "referral_overdue_referrals", district="HM") == 0
    assert value(found, "referral_overdue_referrals_by_deadline", district="WE", deadline="acknowledge") == 1
    assert value(found, "referral_overdue_referrals_by_deadline", district="WE", deadline="feedback") == 2
    assert value(found, "referral_overdue_referrals_by_deadline", district="HM", deadline="feedback") == 0

    db.session.expire_all()
    head = db.session.scalar(select(func.max(AuditEntry.id)))
    assert head > 0 and value(found, "referral_audit_chain_length") == head
    assert value(found, "referral_metrics_collector_up", collector="overdue_metrics") == 1

    # Counts only: nobody's name or address, no child's data.
    for user in world.users.values():
        assert user.email not in text and user.name not in text
    assert factories.CHILD_FIRST not in text and factories.CHILD_LAST not in text
    assert "Wanne-Eickel" not in text  # the district by its code only


def test_mails_sent_leave_the_outbox_metrics(app, client):
    app.config.update(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
    mail = enqueue("jemand@test.example", "Betreff", "Text")
    db.session.commit()
    assert value(samples(client.get("/metrics", headers=bearer()).get_data(as_text=True)), "referral_outbox_mails") == 1
    mail.sent_at = utcnow()  # as the delivery worker records it
    db.session.commit()
    found = samples(client.get("/metrics", headers=bearer()).get_data(as_text=True))
    assert value(found, "referral_outbox_mails") == 0 and value(found, "referral_outbox_oldest_age_seconds") == 0


def test_the_daily_jobs_runs_and_last_success_are_counted(app, client):
    from datetime import date

    from referral.jobs.models import JobRun

    app.config.update(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
    ended = utcnow().replace(microsecond=0)
    db.session.add_all(
        [
            JobRun(job="retention", day=date(2026, 11, 30), outcome="ok", ended_at=ended - timedelta(days=1)),
            JobRun(job="retention", day=date(2026, 12, 1), outcome="ok", ended_at=ended),
            JobRun(job="reminders", day=date(2026, 12, 1), outcome="failed", ended_at=ended, error="RuntimeError"),
        ]
    )
    db.session.commit()
    found = samples(client.get("/metrics", headers=bearer()).get_data(as_text=True))
    assert value(found, "referral_job_runs_total", job="retention", outcome="ok") == 2
    assert value(found, "referral_job_runs_total", job="reminders", outcome="failed") == 1
    assert value(found, "referral_job_runs_total", job="audit-verify", outcome="ok") == 0
    last = value(found, "referral_job_last_success_timestamp_seconds", job="retention")
    assert last == ended.replace(tzinfo=UTC).timestamp()
    assert value(found, "referral_job_last_success_timestamp_seconds", job="reminders") == 0


def test_a_failing_collector_is_reported_and_the_others_still_answer(app, client, monkeypatch):
    from referral.observability import metrics

    def broken(now):
        raise RuntimeError("kaputt")
        yield  # pragma: no cover

    monkeypatch.setattr(metrics, "SCRAPE_COLLECTORS", [broken, *metrics.SCRAPE_COLLECTORS])
    app.config.update(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=[])
    answered = client.get("/metrics", headers=bearer())
    found = samples(answered.get_data(as_text=True))
    assert answered.status_code == 200
    assert value(found, "referral_metrics_collector_up", collector="broken") == 0
    assert value(found, "referral_metrics_collector_up", collector="audit_metrics") == 1


# --- Logs ---------------------------------------------------------------------------------------------


@pytest.fixture
def json_logs(app, capsys):
    """The app's logs as JSON lines, as in production; read() parses what was written so far."""
    logs.configure("json", "INFO")
    capsys.readouterr()

    class Lines:
        def read(self) -> list[dict]:
            written = capsys.readouterr().err
            lines = [line for line in written.splitlines() if line.strip()]
            parsed = []
            for line in lines:
                try:
                    parsed.append(json.loads(line))
                except ValueError:
                    pytest.fail(f"not a JSON log line: {line!r}")
            return parsed

    yield Lines()
    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == logs.REQUEST_LOGGER]


def test_each_request_is_one_json_line_with_request_id_route_status_duration_and_user_id(
    app, world, client, login, json_logs
):
    login(world.teacher)
    json_logs.read()
    answered = client.get("/referrals?page=1&suche=Geheimwert-4711")
    lines = json_logs.read()
    [line] = request_lines(lines)
    assert line["request_id"] == answered.headers["X-Request-ID"]
    assert line["route"] == "cases.my_referrals" and line["method"] == "GET" and line["status"] == 200
    assert line["user_id"] == world.teacher.id and line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    written = json.dumps(lines)
    assert "Geheimwert-4711" not in written and "suche" not in written and "/referrals" not in written


def test_the_log_names_the_audit_entrys_request_id_and_no_personal_data(app, world, client, json_logs):
    from .conftest import csrf_token

    token = csrf_token(client, "/login")
    json_logs.read()
    answered = client.post(
        "/login?next=%2Freferrals%3Fsuche%3DGeheim",
        data={"email": world.teacher.email, "password": factories.PASSWORD, "csrf_token": token},
    )
    assert answered.status_code == 302
    lines = json_logs.read()
    [line] = request_lines(lines)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login.success")).one()
    assert line["request_id"] == entry.request_id == answered.headers["X-Request-ID"]
    assert line["user_id"] == world.teacher.id and line["route"] == "security.login" and line["status"] == 302
    written = json.dumps(lines)
    assert world.teacher.email not in written and world.teacher.name not in written
    assert factories.PASSWORD not in written and "Geheim" not in written


def test_an_exceptions_traceback_stays_inside_its_json_object(app, world, as_user, json_logs, monkeypatch):
    def broken_start_page():
        raise RuntimeError("kaputt-im-Test")

    monkeypatch.setitem(app.view_functions, "home.index", broken_start_page)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error page, and the log
    answered = as_user(world.asd).get("/?name=Geheimwert")
    assert answered.status_code == 500 and "Es ist ein Fehler aufgetreten" in answered.get_data(as_text=True)
    lines = json_logs.read()  # every line parsed as JSON: the traceback did not spill over lines
    [error] = [line for line in lines if line["level"] == "ERROR"]
    assert "RuntimeError: kaputt-im-Test" in error["traceback"] and "Traceback" in error["traceback"]
    assert error["message"] == "Exception on home.index [GET]"
    assert error["request_id"] == answered.headers["X-Request-ID"] and error["user_id"] == world.asd.id
    [line] = request_lines(lines)
    assert line["status"] == 500 and line["request_id"] == error["request_id"]
    assert "Geheimwert" not in json.dumps(lines)


def test_text_logs_for_development_name_the_request_id(app, client, capsys):
    logs.configure("text", "INFO")
    capsys.readouterr()
    answered = client.get("/login")
    err = capsys.readouterr().err
    assert f"[{answered.headers['X-Request-ID']}] GET security.login 200" in err


# --- gunicorn with gunicorn.conf.py -------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _access_pids(log: str) -> set[int]:
    pids = set()
    for raw in log.splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(raw)
            if line.get("logger") == "gunicorn.access" and str(line.get("path", "")).startswith("/referrals/"):
                pids.add(line["pid"])
    return pids


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_gunicorn_with_its_config_adds_up_the_workers_counts_and_logs_json(database_url, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # from an earlier run: wiped at start
    with servers.gunicorn(
        database_url,
        tmp_path,
        "--config",
        str(servers.ROOT / "gunicorn.conf.py"),
        "--workers",
        "2",
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        LOG_FORMAT="json",
    ) as live:
        opener = urllib.request.build_opener(_NoRedirects)

        def ask(path: str) -> None:
            with contextlib.suppress(urllib.error.HTTPError):  # the redirect to the login page
                opener.open(live.url + path, timeout=30).read()

        # Concurrent requests, in rounds until both workers have answered some of them (which worker
        # accepts a connection is up to the kernel; a loaded machine may give one worker a whole round).
        per_thread, threads, sent = 6, 6, 0
        for _ in range(10):
            paths = [f"/referrals/{n}?suche=Geheimwert-{n}" for n in range(sent, sent + per_thread * threads)]
            workers = [
                threading.Thread(target=lambda part=paths[i::threads]: [ask(p) for p in part]) for i in range(threads)
            ]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()
            sent += len(paths)
            if len(_access_pids(live.log.read_text())) == 2:
                break

        assert _get(live.url + "/metrics") == 401
        # Whichever worker answers a scrape, it reports the sum of both.
        for _ in range(4):
            request = urllib.request.Request(live.url + "/metrics", headers=bearer())
            with urllib.request.urlopen(request, timeout=30) as response:
                found = samples(response.read().decode())
            assert requests_to(found, "cases.show") == sent
    log = live.log.read_text()
    assert "counter_999999.db" not in {p.name for p in metrics_dir.iterdir()}

    lines = []
    for raw in log.splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pytest.fail(f"not a JSON log line: {raw!r}")
    access = [line for line in lines if line["logger"] == "gunicorn.access" and line["path"].startswith("/referrals/")]
    assert len(access) == sent
    assert all(line["status"] == 302 and line["method"] == "GET" and line["request_id"] for line in access)
    assert len({line["pid"] for line in access}) == 2, "both workers answered"
    app_lines = {line["request_id"]: line for line in lines if line["logger"] == logs.REQUEST_LOGGER}
    assert all(app_lines[line["request_id"]]["route"] == "cases.show" for line in access)
    assert "Geheimwert" not in log and "suche" not in log
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
