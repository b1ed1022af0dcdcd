"""How fast the audit log is written and verified.

    .venv/bin/python benchmarks/audit_verify.py [ENTRIES] [DATABASE_URL]

Appends ENTRIES entries (default 50,000; one transaction per 1,000) to a fresh database and runs
the whole-chain verification, reporting entries per second for both.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from referral import create_app  # noqa: E402
from referral.audit import chain  # noqa: E402
from referral.audit.log import record  # noqa: E402
from referral.extensions import db  # noqa: E402


def main(count: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{tmp}/bench.db"
        app = create_app(
            overrides={"TESTING": True, "SESSION_FILE_DIR": f"{tmp}/s"},
            env={"DATABASE_URL": url, "SECRET_KEY": "bench-" + "x" * 40},
        )
        with app.app_context():
            if url.startswith("postgresql"):
                with db.engine.begin() as connection:
                    connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            upgrade()
            start = time.perf_counter()
            for i in range(count):
                record(
                    "referral.view",
                    object_type="referral",
                    object_id=i % 5000,
                    role="asd_worker",
                    scope="Bezirk X",
                    school_id=1,
                    district_id=1,
                )
                if i % 1000 == 999:
                    db.session.commit()
            db.session.commit()
            written = time.perf_counter() - start
            start = time.perf_counter()
            verdict = chain.verify()
            checked = time.perf_counter() - start
            print(
                f"{url.split('://')[0]}: wrote {count} entries in {written:.1f} s ({count / written:,.0f}/s); "
                f"verified in {checked:.1f} s ({count / checked:,.0f}/s): {verdict}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000, sys.argv[2] if len(sys.argv) > 2 else None)
