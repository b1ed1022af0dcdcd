"""The admin's pages: invitations, accounts, districts, schools, deadlines, each change recorded."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from referral.accounts.models import Role, User
from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.cases.vocabulary import Urgency
from referral.extensions import db
from referral.kernel.settings import Setting
from referral.organisation.models import District, School

from . import factories
from .conftest import csrf_token
from .test_attacks import error_for

STRONG_PASSWORD = "Fuchs-Laterne-Mondsichel-47"


def entries(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def invite(client, world, email="neu@schule-a.example", role="teacher", scope=None, **extra):
    scope = scope or f"school:{world.schools['a'].id}"
    data = {
        "email": email,
        "name": "Nora Neu",
        "phone": "",
        "role": role,
        "scope": scope,
        "csrf_token": csrf_token(client, "/admin/users/invite"),
        **extra,
    }
    return client.post("/admin/users/invite", data=data)


def link_in(mail) -> str:
    return re.search(r"https?://\S+", mail.body).group(0).replace("http://localhost", "")


def set_password(client, link, password=STRONG_PASSWORD, confirm=None):
    return client.post(
        link,
        data={"password": password, "password_confirm": confirm or password, "csrf_token": csrf_token(client, link)},
    )


def test_an_invitation_from_mail_to_first_login(as_user, client, world, outbox):
    admin = as_user(world.admin)
    response = invite(admin, world)
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "neu@schule-a.example"))
    assert user.password is None and [m.role for m in user.memberships] == [Role.TEACHER]

    [mail] = outbox
    assert mail.to == ["neu@schule-a.example"] and mail.subject == "Einladung: Mitteilungen Schule-ASD"
    assert "Guten Tag Nora Neu" in mail.body and "72 Stunden" in mail.body
    link = link_in(mail)
    assert link.startswith("/invitation/")

    page = client.get(link).get_data(as_text=True)
    assert "Willkommen, Nora Neu" in page and 'for="password"' in page
    weak = set_password(client, link, "passwort1234")
    assert weak.status_code == 422 and "Es wurde nichts gespeichert" in weak.get_data(as_text=True)
    assert "passwort1234" not in weak.get_data(as_text=True), "a password is never shown back"
    mismatch = set_password(client, link, STRONG_PASSWORD, "Anders-Als-Oben-Lang-99")
    assert "stimmen nicht überein" in mismatch.get_data(as_text=True)

    done = set_password(client, link)
    assert done.status_code == 302 and done.location.startswith("/login")
    assert client.get(link).status_code == 404, "an invitation link works once"
    login = client.post(
        "/login",
        data={"email": "neu@schule-a.example", "password": STRONG_PASSWORD, "csrf_token": csrf_token(client, "/login")},
    )
    assert login.status_code == 302 and client.get("/school").status_code == 200

    [invited] = entries("user.invite")
    assert invited.actor_id == world.admin.id and invited.object_id == str(user.id) and invited.actor_role == "admin"
    assert invited.request_id and "email" in invited.fields
    assert entries("membership.add") and entries("user.accept_invitation")[0].actor_id == user.id


def test_an_invitation_expires_after_72_hours(as_user, client, world, outbox, monkeypatch):
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 72 * 3600 - 60)
    invite(as_user(world.admin), world)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    response = client.get(link_in(outbox[0]))
    assert response.status_code == 404 and "Dieser Link gilt nicht mehr" in response.get_data(as_text=True)


def test_a_new_invitation_replaces_the_old_link(as_user, client, world, outbox):
    admin = as_user(world.admin)
    invite(admin, world)
    user = db.session.scalar(select(User).where(User.email == "neu@schule-a.example"))
    again = admin.post(
        f"/admin/users/{user.id}/invite-again", data={"csrf_token": csrf_token(admin, f"/admin/users/{user.id}")}
    )
    assert again.status_code == 302 and len(outbox) == 2
    assert client.get(link_in(outbox[0])).status_code == 404
    assert client.get(link_in(outbox[1])).status_code == 200
    assert client.get("/invitation/forged-token").status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "kein-at-zeichen"}, "gültige E-Mail-Adresse"),
        ({"email": "teacher@test.example"}, "gibt es bereits ein Konto"),
        ({"name": ""}, "Bitte den Namen angeben"),
        ({"role": "asd_worker"}, "bitte einen Bezirk wählen"),
        ({"role": "coordinator"}, "ganze Stadt"),
        ({"role": "superuser"}, "angebotenen Möglichkeiten"),
        ({"scope": "school:99999"}, "angebotenen Möglichkeiten"),
    ],
)
def test_invitation_errors_are_german_and_keep_the_input(as_user, world, outbox, change, message):
    admin = as_user(world.admin)
    response = invite(admin, world, **change) if "email" not in change else invite(admin, world, email=change["email"])
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and "Es wurde nichts gespeichert" in html
    assert 'value="Nora Neu"' in html or change.get("name") == ""
    assert outbox == [] and db.session.scalar(select(User).where(User.email == "kein-at-zeichen")) is None
    assert entries("user.invite") == []


def test_memberships_are_added_and_removed(as_user, world):
    admin = as_user(world.admin)
    url = f"/admin/users/{world.teacher.id}"
    add = admin.post(
        f"{url}/memberships",
        data={"role": "school_lead", "scope": f"school:{world.schools['a'].id}", "csrf_token": csrf_token(admin, url)},
    )
    assert add.status_code == 302
    db.session.expire_all()
    lead = next(m for m in world.teacher.memberships if m.role is Role.SCHOOL_LEAD)
    assert as_user(world.teacher).get("/referrals").status_code == 200
    wrong = admin.post(
        f"{url}/memberships",
        data={"role": "asd_lead", "scope": f"school:{world.schools['a'].id}", "csrf_token": csrf_token(admin, url)},
    )
    assert wrong.status_code == 422 and "bitte einen Bezirk wählen" in wrong.get_data(as_text=True)
    remove = admin.post(f"{url}/memberships/{lead.id}/delete", data={"csrf_token": csrf_token(admin, url)})
    assert remove.status_code == 302
    db.session.expire_all()
    assert [m.role for m in world.teacher.memberships] == [Role.TEACHER]
    assert [e.object_id for e in entries("membership.remove")] == [str(world.teacher.id)]


def test_the_admin_cannot_lock_themself_out(as_user, world):
    admin = as_user(world.admin)
    url = f"/admin/users/{world.admin.id}"
    own = world.admin.memberships[0]
    admin.post(f"{url}/memberships/{own.id}/delete", data={"csrf_token": csrf_token(admin, url)})
    admin.post(f"{url}/deactivate", data={"csrf_token": csrf_token(admin, url)})
    db.session.expire_all()
    assert world.admin.active and world.admin.memberships
    assert admin.get("/admin/users").status_code == 200


def test_deactivation_ends_access_at_once_and_the_school_keeps_the_referrals(as_user, world):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    teacher = as_user(world.teacher)
    assert teacher.get("/referrals").status_code == 200
    admin = as_user(world.admin)
    url = f"/admin/users/{world.teacher.id}"
    assert admin.post(f"{url}/deactivate", data={"csrf_token": csrf_token(admin, url)}).status_code == 302
    assert teacher.get("/referrals").status_code == 302
    assert as_user(world.school_lead).get(f"/referrals/{referral.id}").status_code == 200
    assert admin.post(f"{url}/reactivate", data={"csrf_token": csrf_token(admin, url)}).status_code == 302
    db.session.expire_all()
    assert world.teacher.active and [e.action for e in entries("user.deactivate") + entries("user.reactivate")] == [
        "user.deactivate",
        "user.reactivate",
    ]
    assert "active" in entries("user.deactivate")[0].fields


def test_ending_sessions_and_resetting_two_factor(as_user, world):
    world.asd.tf_primary_method, world.asd.tf_totp_secret = "authenticator", "JBSWY3DPEHPK3PXP"
    db.session.commit()
    asd = as_user(world.asd)
    admin = as_user(world.admin)
    url = f"/admin/users/{world.asd.id}"
    assert admin.post(f"{url}/end-sessions", data={"csrf_token": csrf_token(admin, url)}).status_code == 302
    assert asd.get("/inbox").status_code == 302, "the session that was open has ended"
    db.session.refresh(world.asd)
    assert as_user(world.asd).get("/inbox").status_code == 200, "a new login works"
    assert admin.post(f"{url}/reset-2fa", data={"csrf_token": csrf_token(admin, url)}).status_code == 302
    db.session.expire_all()
    assert world.asd.tf_primary_method is None and world.asd.tf_totp_secret is None
    assert set(entries("user.reset_two_factor")[0].fields) >= {"tf_primary_method", "tf_totp_secret"}
    assert "JBSWY3DPEHPK3PXP" not in str(entries("user.reset_two_factor")[0].fields), "names of fields, never values"


def test_user_list_searches_and_paginates(as_user, world):
    for i in range(30):
        factories.user(f"massen{i:02d}@test.example", f"Massen {i:02d}", (Role.TEACHER, world.schools["a"]))
    db.session.commit()
    admin = as_user(world.admin)
    first = admin.get("/admin/users?q=massen").get_data(as_text=True)
    assert "Massen 00" in first and "Massen 29" not in first and "Seite 1 von 2" in first and "30 Konten" in first
    assert "Massen 29" in admin.get("/admin/users?q=massen&page=2").get_data(as_text=True)
    assert "Tina Teacher" not in first
    percent = admin.get("/admin/users?q=%25").get_data(as_text=True)
    assert "Keine Konten gefunden" in percent, "a % is searched for literally"


def test_the_account_csv_neutralises_formulas(as_user, world):
    factories.user(
        "formel@test.example", '=HYPERLINK("http://evil.example";"klick")', (Role.TEACHER, world.schools["a"])
    )
    factories.user("minus@test.example", "-2+3", (Role.TEACHER, world.schools["a"]))
    db.session.commit()
    response = as_user(world.admin).get("/admin/users.csv")
    body = response.get_data(as_text=True)
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    assert body.startswith("\ufeff") and body.splitlines()[0].startswith("\ufeffName;E-Mail")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    names = {row[0] for row in rows[1:]}
    assert '\'=HYPERLINK("http://evil.example";"klick")' in names and "'-2+3" in names
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert entries("export.users")


def test_districts_and_schools_are_maintained(as_user, world):
    admin = as_user(world.admin)
    new = admin.post(
        "/admin/districts/new",
        data={
            "name": "Sodingen",
            "code": "so",
            "duty_phone": "02323 333",
            "duty_hours": "Mo–Fr 8–16",
            "inbox_email": "asd-so@stadt.example",
            "csrf_token": csrf_token(admin, "/admin/districts/new"),
        },
    )
    assert new.status_code == 302
    district = db.session.scalar(select(District).where(District.name == "Sodingen"))
    assert district.code == "SO"
    duplicate = admin.post(
        "/admin/districts/new",
        data={
            "name": "Sodingen",
            "code": "SX",
            "duty_phone": "02323 444",
            "csrf_token": csrf_token(admin, "/admin/districts/new"),
        },
    )
    assert duplicate.status_code == 422 and "Einen Bezirk mit diesem Namen gibt es bereits" in duplicate.get_data(
        as_text=True
    )
    same_code = admin.post(
        "/admin/districts/new",
        data={
            "name": "Crange",
            "code": "SO",
            "duty_phone": "02323 444",
            "csrf_token": csrf_token(admin, "/admin/districts/new"),
        },
    )
    assert "Einen Bezirk mit diesem Kürzel gibt es bereits" in error_for(same_code.get_data(as_text=True), "code")
    short = admin.post(
        "/admin/districts/new",
        data={
            "name": "Crange",
            "code": "CR",
            "duty_phone": "---",
            "csrf_token": csrf_token(admin, "/admin/districts/new"),
        },
    )
    assert "mindestens 6 Ziffern" in short.get_data(as_text=True)
    bad = admin.post(
        f"/admin/districts/{district.id}",
        data={
            "name": "Sodingen",
            "code": "S1",
            "duty_phone": "ruf an",
            "csrf_token": csrf_token(admin, "/admin/districts/new"),
        },
    )
    html = bad.get_data(as_text=True)
    assert "2 bis 4 Großbuchstaben" in html and "nur Ziffern" in html and 'value="ruf an"' in html

    school = admin.post(
        "/admin/schools/new",
        data={
            "name": "Grundschule Neu",
            "district_id": district.id,
            "phone": "02323 1",
            "email": "",
            "address": "Weg 1",
            "csrf_token": csrf_token(admin, "/admin/schools/new"),
        },
    )
    assert school.status_code == 302
    created = db.session.scalar(select(School).where(School.name == "Grundschule Neu"))
    moved = admin.post(
        f"/admin/schools/{created.id}",
        data={
            "name": "Grundschule Neu",
            "district_id": world.districts["we"].id,
            "phone": "02323 1",
            "email": "",
            "address": "Weg 1",
            "csrf_token": csrf_token(admin, "/admin/schools/new"),
        },
    )
    assert moved.status_code == 302
    db.session.expire_all()
    assert created.district_id == world.districts["we"].id
    assert [e.fields for e in entries("school.update")] == [["district_id"]]
    assert entries("district.create")[0].object_id == str(district.id)
    assert "Grundschule Neu" in admin.get("/admin/schools").get_data(as_text=True)
    assert "Sodingen" in admin.get("/admin/districts").get_data(as_text=True)


def test_deadlines_apply_to_referrals_submitted_afterwards(as_user, world):
    admin = as_user(world.admin)
    form = {
        "ack_acute_hours": "4",
        "ack_working_days": "1",
        "feedback_working_days": "15",
        "consultation_accept_working_days": "2",
        "retention_days": "180",
        "draft_retention_days": "90",
        "csrf_token": csrf_token(admin, "/admin/deadlines"),
    }
    assert admin.post("/admin/deadlines", data=form).status_code == 302
    assert db.session.get(Setting, "feedback_working_days").value == 15
    assert entries("settings.update")[0].fields == ["ack_acute_hours", "feedback_working_days"]
    wrong = admin.post("/admin/deadlines", data={**form, "ack_acute_hours": "0", "feedback_working_days": "zehn"})
    html = wrong.get_data(as_text=True)
    assert "von 1 bis 24" in html and 'value="zehn"' in html
    acute = factories.referral_in(State.SUBMITTED, world.teacher, world.asd, urgency=Urgency.ACUTE)
    assert acute.acknowledge_due_at - acute.received_at == timedelta(hours=4)


def test_the_admin_sees_no_case_content(as_user, world):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    admin = as_user(world.admin)
    for url in (
        "/admin/",
        "/admin/users",
        "/admin/districts",
        "/admin/schools",
        "/admin/deadlines",
        "/admin/changes",
        f"/admin/users/{world.teacher.id}",
        "/admin/users.csv",
    ):
        body = admin.get(url).get_data(as_text=True)
        assert factories.CHILD_LAST not in body and referral.number not in body, url
    assert admin.get(f"/referrals/{referral.id}").status_code in (403, 404)


def test_the_change_record_lists_who_did_what(as_user, world):
    admin = as_user(world.admin)
    url = f"/admin/users/{world.teacher.id}"
    admin.post(url, data={"name": "Tina Umbenannt", "phone": "", "csrf_token": csrf_token(admin, url)})
    page = admin.get("/admin/changes").get_data(as_text=True)
    assert "Konto geändert" in page and "Adam Admin" in page and "Name, Telefon" in page
    assert "Tina Umbenannt" not in page and "0123 456" not in page, "field names only, never values"
