"""How fast the audit log is written, sealed and verified.

    .venv/bin/python benchmarks/audit_verify.py [ENTRIES] [DATABASE_URL]
    .venv/bin/python benchmarks/audit_verify.py --existing DATABASE_URL

Fresh mode (default): builds the schema in a new SQLite file, or in DATABASE_URL after DROPPING its
public schema (give it a database of your own), appends ENTRIES entries (default 50,000): the first
2,000 through the app's `record` (one transaction per 100, the request path), the rest in bulk
(Core inserts of 10,000 rows, hashed by `chain.entry_hash`, as the demo generator writes them);
then seals everything into blocks and runs the whole-log verification, reporting entries per
second for each step.

--existing: only seals what is waiting and verifies, on a database that already holds a log (e.g. a
copy of a generated scale database); nothing is dropped.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from referral import create_app  # noqa: E402
from referral.audit import chain  # noqa: E402
from referral.audit.log import record  # noqa: E402
from referral.audit.models import AuditEntry  # noqa: E402
from referral.extensions import db  # noqa: E402
from referral.timeutil import utcnow  # noqa: E402

APP_PATH = 2_000
BULK = 10_000


def _write(count: int) -> str:
    start = time.perf_counter()
    through_app = min(count, APP_PATH)
    for i in range(through_app):
        record(
            "referral.view",
            object_type="referral",
            object_id=i % 5000,
            role="asd_worker",
            scope="Bezirk X",
            school_id=1,
            district_id=1,
        )
        if i % 100 == 99:
            db.session.commit()
    db.session.commit()
    app_seconds = time.perf_counter() - start
    start, at = time.perf_counter(), utcnow() - timedelta(days=365)
    table = AuditEntry.__table__
    for first in range(through_app, count, BULK):
        rows = []
        for i in range(first, min(first + BULK, count)):
            values = {
                "at": at + timedelta(seconds=i),
                "actor_id": None,
                "actor_role": "asd_worker",
                "actor_scope": "Bezirk X",
                "action": "referral.view" if i % 7 else "referral.edit",
                "object_type": "referral",
                "object_id": str(i % 5000),
                "school_id": 1 + i % 60,
                "district_id": 1 + i % 6,
                "fields": [] if i % 7 else ["text", "state"],
                "request_id": f"{i:036d}",
            }
            rows.append({**values, "hash": chain.entry_hash(values)})
        with db.engine.begin() as connection:
            connection.execute(table.insert(), rows)
    bulk, bulk_seconds = count - through_app, time.perf_counter() - start
    return f"wrote {through_app} entries through record() at {through_app / app_seconds:,.0f}/s" + (
        f", {bulk} in bulk at {bulk / bulk_seconds:,.0f}/s" if bulk else ""
    )


def _seal_and_verify() -> str:
    start = time.perf_counter()
    sealed = chain.seal_pending()
    seal_seconds = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    verdict = chain.verify()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.session.rollback()
    # The CPU time is this process's only (not the database server's): on a busy machine the wall
    # time also counts waiting for a core.
    return (
        f"sealed {sealed} entries in {seal_seconds:.1f} s; verified {verdict.checked} entries in {seconds:.1f} s "
        f"({verdict.checked / seconds:,.0f}/s; client CPU {cpu:.1f} s, {verdict.checked / max(cpu, 1e-9):,.0f}/s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):\n{verdict}"
    )


def main(count: int, url: str | None, existing: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{tmp}/bench.db"
        app = create_app(
            overrides={"TESTING": True, "SESSION_FILE_DIR": f"{tmp}/s"},
            env={"DATABASE_URL": url, "SECRET_KEY": "bench-" + "x" * 40},
        )
        with app.app_context():
            written = ""
            if not existing:
                if url.startswith("postgresql"):
                    with db.engine.begin() as connection:
                        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                upgrade()
                written = _write(count) + "; "
                if url.startswith("postgresql"):  # as autovacuum would soon after a bulk load
                    with db.engine.begin() as connection:
                        connection.execute(text("ANALYZE"))
            print(f"{url.split('://')[0]}: {written}{_seal_and_verify()}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--existing"]
    if "--existing" in sys.argv:
        main(0, arguments[0], existing=True)
    else:
        main(int(arguments[0]) if arguments else 50_000, arguments[1] if len(arguments) > 1 else None, False)
