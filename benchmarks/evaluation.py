"""How fast the coordinator's evaluation and the ASD lead's overview answer at a city's scale.

    .venv/bin/python benchmarks/evaluation.py [REFERRALS] [DATABASE_URL]
    .venv/bin/python benchmarks/evaluation.py --compare SMALL_URL BIG_URL [RUNS]

The first form builds a fresh database (SQLite in a temporary folder by default; a PostgreSQL URL is wiped first),
generates REFERRALS (default 50,000) referrals over three years with `flask demo generate`'s
generator, and times each page through the app (test client, real database): one warm-up, then
the median of 5 requests, with the number of SQL queries per request.

The second builds nothing: it measures two existing, migrated databases (say 1,000 and 200,000
referrals, see the README) side by side, requests to both interleaved, and prints per page p50 and
p95 of each, the ratio of the p95s and the queries per request. It refreshes the evaluation's
aggregates first (as `flask evaluation refresh` would) and uses the first coordinator and ASD lead
it finds (a coordinator is created if there is none).
"""

from __future__ import annotations

import contextvars
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402

from referral import create_app  # noqa: E402
from referral.accounts.models import Membership, Role, User  # noqa: E402
from referral.extensions import db  # noqa: E402
from referral.generator import generate  # noqa: E402

PAGES = [
    ("Auswertung, laufendes Schuljahr", "/coordination/evaluation"),
    ("Auswertung, 3 Jahre, alle Bezirke", "/coordination/evaluation?period=free&first={first}&last={last}"),
    (
        "Auswertung, 3 Jahre, ein Bezirk",
        "/coordination/evaluation?period=free&first={first}&last={last}&district={district}",
    ),
    ("CSV-Export, 3 Jahre", "/coordination/evaluation.csv?period=free&first={first}&last={last}"),
    ("Bezirksübersicht", "/district-overview"),
]


def fetch(client, target):
    """The whole response, streamed ones included, read in the request's own context."""
    response = client.get(target)
    response.get_data()
    response.close()
    return response


def main(count: int, url: str | None) -> None:
    tmp = tempfile.mkdtemp(prefix="referral-bench-")
    url = url or f"sqlite:///{tmp}/bench.db"
    app = create_app(
        overrides={"TESTING": True, "SESSION_FILE_DIR": f"{tmp}/s", "UPLOAD_FOLDER": f"{tmp}/u"},
        env={"DATABASE_URL": url, "SECRET_KEY": "bench-" + "x" * 40},
    )
    with app.app_context():
        if url.startswith("postgresql"):
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
        started = time.perf_counter()
        made = generate(count, years=3, report=lambda line: None)
        generated = time.perf_counter() - started
        coordinator = User(email="koordination@bench.example", name="Koordination", password="x")
        coordinator.memberships.append(Membership(role=Role.COORDINATOR))
        db.session.add(coordinator)
        db.session.commit()
        lead = db.session.scalar(select(User).join(Membership).where(Membership.role == Role.ASD_LEAD).limit(1))
        district = lead.memberships[0].district_id
        ids = {"coordinator": coordinator.fs_uniquifier, "lead": lead.fs_uniquifier}
        dialect = db.engine.dialect.name
        queries = [0]
        event.listen(db.engine, "before_cursor_execute", lambda *args: queries.__setitem__(0, queries[0] + 1))
    print(
        f"{dialect}: {made['referrals']} referrals, {made['consultations']} consultations "
        f"generated in {generated:.0f} s"
    )
    from referral.timeutil import to_local, utcnow

    today = to_local(utcnow()).date()
    values = {"first": today.replace(year=today.year - 3).isoformat(), "last": today.isoformat(), "district": district}
    for label, path in PAGES:
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = ids["lead" if "district-overview" in path else "coordinator"]
            session["_fresh"] = True
        target = path.format(**values)
        timings = []
        for attempt in range(6):
            before = queries[0]
            started = time.perf_counter()
            response = contextvars.Context().run(fetch, client, target)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (target, response.status_code)
            if attempt:
                timings.append(elapsed)
        print(f"  {label:<36} median {statistics.median(timings) * 1000:7.0f} ms   ({queries[0] - before} SQL queries)")


def _client(url: str):
    tmp = tempfile.mkdtemp(prefix="referral-bench-")
    app = create_app(
        overrides={"TESTING": True, "SESSION_FILE_DIR": f"{tmp}/s", "UPLOAD_FOLDER": f"{tmp}/u"},
        env={"DATABASE_URL": url},
    )
    queries = [0]
    with app.app_context():
        try:
            from referral.evaluation import aggregates
        except ImportError:  # the code before the aggregates: nothing to refresh
            aggregates = None
        if aggregates is not None:
            started = time.perf_counter()
            aggregates.refresh()
            print(f"  refreshed aggregates of {url.rsplit('/', 1)[-1]} in {time.perf_counter() - started:.1f} s")
        coordinator = db.session.scalar(
            select(User).join(Membership).where(Membership.role == Role.COORDINATOR, User.active.is_(True)).limit(1)
        )
        if coordinator is None:
            coordinator = User(email="koordination@bench.example", name="Koordination", password="x")
            coordinator.memberships.append(Membership(role=Role.COORDINATOR))
            db.session.add(coordinator)
            db.session.commit()
        lead = db.session.scalar(
            select(User).join(Membership).where(Membership.role == Role.ASD_LEAD, User.active.is_(True)).limit(1)
        )
        district = next(m.district_id for m in lead.memberships if m.role == Role.ASD_LEAD)
        ids = {"coordinator": coordinator.fs_uniquifier, "lead": lead.fs_uniquifier}
        event.listen(db.engine, "before_cursor_execute", lambda *args: queries.__setitem__(0, queries[0] + 1))
    clients = {}
    for who, user in ids.items():
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = user
            session["_fresh"] = True
        clients[who] = client
    return clients, district, queries


def compare(small_url: str, big_url: str, runs: int) -> None:
    from referral.timeutil import to_local, utcnow

    today = to_local(utcnow()).date()
    sides = {"small": _client(small_url), "big": _client(big_url)}
    print(f"{'page':<36} {'p50 small':>9} {'p95 small':>9} {'p50 big':>8} {'p95 big':>8} {'ratio':>6}  queries")
    for label, path in PAGES:
        timings: dict[str, list[float]] = {"small": [], "big": []}
        counts: dict[str, set[int]] = {"small": set(), "big": set()}
        for attempt in range(runs + 1):
            for side, (clients, district, queries) in sides.items():
                values = {"first": today.replace(year=today.year - 3).isoformat(), "last": today.isoformat()}
                target = path.format(district=district, **values)
                client = clients["lead" if "district-overview" in path else "coordinator"]
                before = queries[0]
                started = time.perf_counter()
                response = contextvars.Context().run(fetch, client, target)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (target, response.status_code)
                if attempt:  # the first is a warm-up
                    timings[side].append(elapsed * 1000)
                    counts[side].add(queries[0] - before)

        def p(side, q, timings=timings):
            return statistics.quantiles(timings[side], n=100, method="inclusive")[q - 1]

        print(
            f"{label:<36} {p('small', 50):9.0f} {p('small', 95):9.0f} {p('big', 50):8.0f} {p('big', 95):8.0f} "
            f"{p('big', 95) / p('small', 95):6.2f}  {'/'.join(map(str, sorted(counts['small'])))} → "
            f"{'/'.join(map(str, sorted(counts['big'])))}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 20)
        sys.exit()
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000, sys.argv[2] if len(sys.argv) > 2 else None)
