"""The `flask` commands call the same operations as the pages."""

from sqlalchemy import func, select

from referral import demo
from referral.accounts.models import Role, User
from referral.cases.models import Referral
from referral.cases.process import State
from referral.extensions import db
from referral.timeutil import utcnow

from .conftest import csrf_token


def test_create_user_with_membership_who_can_then_log_in(runner, client, app):
    db.session.add(demo.District(code="WE", name="Wanne-Eickel", duty_phone="1"))
    db.session.commit()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Neue.Fachkraft@Example.org",
            "--name",
            "Nora Neu",
            "--role",
            "asd_worker",
            "--scope",
            "WE",
            "--password",
            "ein-langes-passwort",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User)).one()
    assert user.email == "neue.fachkraft@example.org" and user.password.startswith("$argon2")
    assert [(m.role, m.district.code) for m in user.memberships] == [(Role.ASD_WORKER, "WE")]
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": "neue.fachkraft@example.org", "password": "ein-langes-passwort", "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_create_user_refuses_a_wrong_scope_and_writes_nothing(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "x@example.org",
            "--name",
            "X",
            "--role",
            "teacher",
            "--scope",
            "Gibt es nicht",
            "--password",
            "ein-langes-passwort",
        ]
    )
    assert result.exit_code != 0 and "Unknown school" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_data_has_one_user_per_role_and_referrals_in_every_state(runner):
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    states = set(db.session.scalars(select(Referral.state)))
    assert states == set(State)
    from referral.consultations.models import Consultation
    from referral.consultations.process import ConsultationState

    assert set(db.session.scalars(select(Consultation.state))) == set(ConsultationState)
    assert any(c.overdue(utcnow()) for c in db.session.scalars(select(Consultation)))
    roles = {m.role for u in db.session.scalars(select(User)) for m in u.memberships}
    assert roles == set(Role)
    again = runner.invoke(args=["demo", "load", "--if-empty"])
    assert again.exit_code == 0 and "not loaded again" in again.output
    assert runner.invoke(args=["demo", "load"]).exit_code != 0
    logins = runner.invoke(args=["demo", "logins"]).output
    assert demo.PASSWORD in logins and "lehrkraft@demo.example" in logins


def test_demo_logins_work(runner, client):
    runner.invoke(args=["demo", "load"])
    for email, *_ in demo.USERS:
        client.post("/logout", data={"csrf_token": csrf_token(client, "/login")})
        response = client.post(
            "/login", data={"email": email, "password": demo.PASSWORD, "csrf_token": csrf_token(client, "/login")}
        )
        assert response.status_code == 302, email


def test_make_run_serves_on_the_port_from_PORT_and_says_so():
    """`make run` takes the port from PORT (default 5000) for the printed address and for `flask run`."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def planned(*args, **env) -> str:  # make -n: the commands it would run, none of them run
        environment = {k: v for k, v in os.environ.items() if k != "PORT"} | env
        done = subprocess.run(
            ["make", "-n", "run", *args], cwd=root, env=environment, capture_output=True, text=True, check=True
        )
        return done.stdout

    assert "http://127.0.0.1:5000 " in planned() and "--port 5000" in planned()
    from_command_line = planned("PORT=8123")
    assert (
        "http://127.0.0.1:8123 " in from_command_line and "flask run --host 127.0.0.1 --port 8123" in from_command_line
    )
    from_environment = planned(PORT="8124")
    assert "http://127.0.0.1:8124 " in from_environment and "--port 8124" in from_environment
    assert "5000" not in from_environment
