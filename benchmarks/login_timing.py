"""Login response time for an unknown address vs. a wrong password for a real account.

    .venv/bin/python benchmarks/login_timing.py [ROUNDS]

Prints the median and spread of each, and their difference. The two must not be told apart: for an
unknown address Flask-Security hashes the given password all the same (one argon2 operation each).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from referral import create_app  # noqa: E402
from referral.accounts.models import Membership, Role, User  # noqa: E402
from referral.extensions import db  # noqa: E402


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            overrides={
                "TESTING": True,
                "WTF_CSRF_ENABLED": False,
                "SESSION_FILE_DIR": f"{tmp}/s",
                "MAIL_BACKEND": "locmem",
                "LOGIN_FAILURES_PER_ACCOUNT": "100000 per minute",
                "LOGIN_ATTEMPTS_PER_ADDRESS": "100000 per minute",
            },
            env={"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "SECRET_KEY": "bench-" + "x" * 40},
        )
        with app.app_context():
            upgrade()
            from flask_security import hash_password

            user = User(email="real@bench.example", name="Real", password=hash_password("Richtig-Langes-Passwort-1"))
            user.memberships.append(Membership(role=Role.COORDINATOR))
            db.session.add(user)
            db.session.commit()
        client = app.test_client()
        timings: dict[str, list[float]] = {"unknown address": [], "wrong password": []}
        for i in range(rounds):
            for label, email in (
                ("unknown address", f"nobody{i}@bench.example"),
                ("wrong password", "real@bench.example"),
            ):
                start = time.perf_counter()
                response = client.post("/login", data={"email": email, "password": "Falsches-Passwort-123"})
                timings[label].append(time.perf_counter() - start)
                assert response.status_code == 200
        medians = {}
        for label, values in timings.items():
            medians[label] = statistics.median(values)
            print(
                f"{label:16s} median {medians[label] * 1000:7.1f} ms   "
                f"p10 {statistics.quantiles(values, n=10)[0] * 1000:7.1f} ms   "
                f"p90 {statistics.quantiles(values, n=10)[-1] * 1000:7.1f} ms"
            )
        difference = medians["unknown address"] - medians["wrong password"]
        print(
            f"difference of medians: {difference * 1000:+.1f} ms "
            f"({difference / medians['wrong password'] * 100:+.1f} % of a wrong-password login), {rounds} rounds"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
