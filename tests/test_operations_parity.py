"""The console audits what the admin page audits: both call the same operation (accounts/operations.py).

Each case runs once through the admin page and once through `flask users …`, on two accounts set up
alike, and compares the audit entries both leave: action, object, changed fields, school and district.
Only the actor differs: the signed-in admin on the page, the operator (role "cli") at the console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from referral.accounts.models import Membership, Role, User
from referral.audit.models import AuditEntry
from referral.extensions import db

from . import factories
from .conftest import csrf_token


@dataclass
class Case:
    actions: list[str]  # what both sides must record, in this order
    page: Callable  # (admin client, world, target or None, email) -> response
    cli: Callable  # (world, email) -> argument list of `flask users …`
    prepare: Callable | None = None  # (world, email) -> the account the change is made to (None: created by it)


def _post(path: str):
    def page(admin, world, target, email):
        url = f"/admin/users/{target.id}"
        return admin.post(f"{url}/{path}", data={"csrf_token": csrf_token(admin, url)})

    return page


def teacher_at_a(world, email):
    return factories.user(email, "Zora Ziel", (Role.TEACHER, world.schools["a"]))


def teacher_and_lead(world, email):
    return factories.user(
        email, "Zora Ziel", (Role.TEACHER, world.schools["a"]), (Role.SCHOOL_LEAD, world.schools["a"])
    )


def inactive(world, email):
    user = teacher_at_a(world, email)
    user.active = False
    return user


def with_two_factor(world, email):
    user = teacher_at_a(world, email)
    user.tf_primary_method, user.tf_totp_secret, user.mf_recovery_codes = "authenticator", "JBSWY3DPEHPK3PXP", ["x"]
    return user


def invited(world, email):
    user = teacher_at_a(world, email)
    user.password = None
    return user


def invite_page(admin, world, target, email):
    return admin.post(
        "/admin/users/invite",
        data={
            "email": email,
            "name": "Zora Ziel",
            "phone": "0123 4",
            "role": "teacher",
            "scope": f"school:{world.schools['a'].id}",
            "csrf_token": csrf_token(admin, "/admin/users/invite"),
        },
    )


def add_lead_page(admin, world, target, email):
    url = f"/admin/users/{target.id}"
    return admin.post(
        f"{url}/memberships",
        data={"role": "school_lead", "scope": f"school:{world.schools['a'].id}", "csrf_token": csrf_token(admin, url)},
    )


def remove_lead_page(admin, world, target, email):
    url = f"/admin/users/{target.id}"
    lead = next(m for m in target.memberships if m.role is Role.SCHOOL_LEAD)
    return admin.post(f"{url}/memberships/{lead.id}/delete", data={"csrf_token": csrf_token(admin, url)})


CASES = {
    "invite": Case(
        ["user.invite", "membership.add"],
        invite_page,
        lambda w, email: [
            "invite",
            email,
            "--name",
            "Zora Ziel",
            "--phone",
            "0123 4",
            "--role",
            "teacher",
            "--scope",
            "Schule A",
        ],
    ),
    "invite-again": Case(
        ["user.invite_again"], _post("invite-again"), lambda w, email: ["invite-again", email], invited
    ),
    "add-membership": Case(
        ["membership.add"],
        add_lead_page,
        lambda w, email: ["add-membership", email, "--role", "school_lead", "--scope", "Schule A"],
        teacher_at_a,
    ),
    "remove-membership": Case(
        ["membership.remove"],
        remove_lead_page,
        lambda w, email: ["remove-membership", email, "--role", "school_lead", "--scope", "Schule A"],
        teacher_and_lead,
    ),
    "deactivate": Case(["user.deactivate"], _post("deactivate"), lambda w, email: ["deactivate", email], teacher_at_a),
    "reactivate": Case(["user.reactivate"], _post("reactivate"), lambda w, email: ["reactivate", email], inactive),
    "end-sessions": Case(
        ["user.end_sessions"], _post("end-sessions"), lambda w, email: ["end-sessions", email], teacher_at_a
    ),
    "reset-2fa": Case(
        ["user.reset_two_factor"], _post("reset-2fa"), lambda w, email: ["reset-2fa", email], with_two_factor
    ),
}


def _last_seq() -> int:
    return db.session.scalar(select(func.coalesce(func.max(AuditEntry.id), 0)))


def _entries_since(seq: int) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.id > seq).order_by(AuditEntry.id)).all()


def _comparable(entries: list[AuditEntry], target: User) -> list[tuple]:
    return [
        (
            e.action,
            e.object_type,
            "TARGET" if e.object_id == str(target.id) else e.object_id,
            e.fields,
            e.school_id,
            e.district_id,
        )
        for e in entries
    ]


@pytest.mark.parametrize("name", CASES)
def test_the_console_and_the_page_leave_the_same_audit_entries(name, as_user, runner, world, outbox):
    case = CASES[name]
    targets = {}
    if case.prepare:
        for side in ("seite", "konsole"):
            targets[side] = case.prepare(world, f"ziel-{side}@test.example")
        db.session.commit()

    before = _last_seq()
    response = case.page(as_user(world.admin), world, targets.get("seite"), "ziel-seite@test.example")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    by_page = _entries_since(before)

    before = _last_seq()
    result = runner.invoke(args=["users", *case.cli(world, "ziel-konsole@test.example")])
    assert result.exit_code == 0, result.output
    by_console = _entries_since(before)

    page_target = db.session.scalar(select(User).where(User.email == "ziel-seite@test.example"))
    console_target = db.session.scalar(select(User).where(User.email == "ziel-konsole@test.example"))
    assert [e.action for e in by_page] == case.actions
    assert _comparable(by_console, console_target) == _comparable(by_page, page_target)
    assert all(e.actor_id == world.admin.id and (e.actor_role, e.actor_scope) == ("admin", "Stadt") for e in by_page)
    assert all(
        e.actor_id is None and e.actor_role == "cli" and e.actor_scope.startswith("Konsole: ") for e in by_console
    )
    # And the change itself is the same on both sides.
    assert (
        page_target.active,
        page_target.password is None,
        page_target.tf_totp_secret,
        sorted((m.role, m.school_id) for m in page_target.memberships),
    ) == (
        console_target.active,
        console_target.password is None,
        console_target.tf_totp_secret,
        sorted((m.role, m.school_id) for m in console_target.memberships),
    )


def test_the_console_names_the_os_user_behind_sudo(runner, world, monkeypatch, as_user):
    monkeypatch.setenv("SUDO_USER", "hkrause")
    teacher_at_a(world, "ziel@test.example")
    db.session.commit()
    assert runner.invoke(args=["users", "end-sessions", "ziel@test.example"]).exit_code == 0
    [entry] = _entries_since(0)
    assert (entry.action, entry.actor_role, entry.actor_scope, entry.actor_id) == (
        "user.end_sessions",
        "cli",
        "Konsole: hkrause",
        None,
    )
    assert "Konsole: hkrause" in as_user(world.admin).get("/admin/changes").get_data(as_text=True), "the admin sees who"


def test_the_console_creates_an_account_with_a_password_and_records_it(runner, world):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "erste.admin@test.example",
            "--name",
            "Erste Admin",
            "--role",
            "admin",
            "--password",
            "Fuchs-Laterne-Mondsichel-47",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "erste.admin@test.example"))
    entries = _entries_since(0)
    assert [(e.action, e.object_id, e.fields) for e in entries] == [
        ("user.create", str(user.id), ["email", "name", "password", "phone"]),
        ("membership.add", str(user.id), ["Administration – Stadt"]),
    ]
    assert "Fuchs" not in str([(e.fields, e.object_id) for e in entries]), "names of fields, never the password"


def test_a_refused_console_command_changes_and_records_nothing(runner, world):
    result = runner.invoke(
        args=["users", "add-membership", world.teacher.email, "--role", "teacher", "--scope", "Schule A"]
    )
    assert result.exit_code != 0 and "hat das Konto bereits" in result.output
    assert _entries_since(0) == []
    assert (
        db.session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == world.teacher.id))
        == 1
    )


def test_the_admin_pages_and_commands_change_accounts_only_through_operations():
    """No audit entry of a change and no change is written in a view or command itself: they call operations."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "referral"
    for path in ("administration/routes.py", "cli.py", "accounts/routes.py"):
        source = (root / path).read_text()
        assert "accounts.services" not in source and "import services as accounts" not in source, path
        assert "memberships.append" not in source and "changed_fields" not in source, path
        assert "db.session.add(" not in source and "populate_obj" not in source, path
        assert "record(" not in source or path == "administration/routes.py", path  # the export's entry (a read)
