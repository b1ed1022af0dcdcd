"""The contact directory: who sees which entries, who maintains them, and where they appear."""

from __future__ import annotations

from sqlalchemy import select

from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.directory.models import Contact, ContactKind
from referral.extensions import db

from . import factories
from .conftest import csrf_token


def directory(world) -> dict[str, Contact]:
    contacts = {
        "asd_a": Contact(
            kind=ContactKind.ASD_CONTACT, school=world.schools["a"], name="Anna Kontakt", phone="02325 16-1201"
        ),
        "social_a": Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["a"], name="Sami Sozial"),
        "social_b": Contact(kind=ContactKind.SCHOOL_SOCIAL_WORK, school=world.schools["b"], name="Bea Beraterin"),
        "pool": Contact(kind=ContactKind.INSOFA, name="Ines Pool", phone="02323 4000"),
    }
    db.session.add_all(contacts.values())
    db.session.commit()
    return contacts


def test_schools_see_their_school_their_district_and_the_pool(world, as_user):
    directory(world)
    teacher = as_user(world.teacher)
    assert "Sami Sozial" in teacher.get(f"/contacts/schools/{world.schools['a'].id}").get_data(as_text=True)
    assert teacher.get(f"/contacts/schools/{world.schools['b'].id}").status_code == 404
    assert teacher.get(f"/contacts/schools/{world.schools['a2'].id}").status_code == 404, "not another school"
    assert "Anna Kontakt" in teacher.get(f"/contacts/districts/{world.districts['we'].id}").get_data(as_text=True)
    assert teacher.get(f"/contacts/districts/{world.districts['hm'].id}").status_code == 404
    assert "Ines Pool" in teacher.get("/contacts/pool").get_data(as_text=True)


def test_asd_staff_see_their_districts_schools_and_the_coordinator_all(world, as_user):
    directory(world)
    asd = as_user(world.asd)
    assert asd.get(f"/contacts/schools/{world.schools['a2'].id}").status_code == 200
    assert asd.get(f"/contacts/schools/{world.schools['b'].id}").status_code == 404
    coordinator = as_user(world.coordinator)
    assert "Bea Beraterin" in coordinator.get(f"/contacts/schools/{world.schools['b'].id}").get_data(as_text=True)
    index = coordinator.get("/contacts/").get_data(as_text=True)
    assert "Schule B" in index and "Schule A2" in index


def test_school_start_and_referral_page_show_the_asd_contact(world, as_user):
    directory(world)
    start = as_user(world.teacher).get("/school").get_data(as_text=True)
    assert (
        "Allgemeine Ansprechperson des ASD Wanne-Eickel für Ihre Schule: Anna Kontakt" in start
        and "02325 16-1201" in start
    )
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    page = as_user(world.teacher).get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert "Allgemeine Ansprechperson des ASD Wanne-Eickel für Ihre Schule: Anna Kontakt" in page


def test_after_a_transfer_the_school_sees_the_responsible_districts_contact_and_who_is_who(world, as_user):
    """§ 86 SGB VIII: the receiving district is responsible; the sending district's contact for the school
    is no longer named on the referral, and the feedback's contact is labelled apart from the directory's."""
    directory(world)
    db.session.add(
        Contact(kind=ContactKind.ASD_CONTACT, school=world.schools["b"], name="Hugo HM-Kontakt", phone="02323 7")
    )
    db.session.commit()
    teacher = as_user(world.teacher)
    referral = factories.referral_in(State.ACKNOWLEDGED, world.teacher, world.asd)
    before = teacher.get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert (
        "Allgemeine Ansprechperson des ASD Wanne-Eickel für Ihre Schule: Anna Kontakt" in before
        and "02325 111" in before
    )

    factories.services.transfer(referral, world.asd, world.districts["hm"], "Eltern wohnen in Herne-Mitte")
    db.session.commit()
    after = teacher.get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert 'ASD Herne-Mitte: <a href="tel:02323222"><strong>02323 222</strong>' in after, "the responsible duty phone"
    assert (
        "Zuständig für diese Mitteilung ist jetzt der ASD Herne-Mitte. Er hat keine feste Ansprechperson für "
        "Ihre Schule" in after
    )
    for sending in ("Anna Kontakt", "02325 16-1201", "02325 111", "Hugo HM-Kontakt"):
        assert sending not in after, f"{sending} is not the school's contact for this referral"
    start = teacher.get("/school").get_data(as_text=True)
    assert "Allgemeine Ansprechperson des ASD Wanne-Eickel für Ihre Schule: Anna Kontakt" in start, (
        "for everything else"
    )

    hm = world.asd_hm
    factories.services.acknowledge(referral, hm)
    factories.services.take_over(referral, hm)
    factories.record_assessment(referral, hm, world.asd_lead_hm)
    factories.services.give_feedback(
        referral, hm, **(factories.feedback_values(hm) | {"contact_phone": "02323 222-17"})
    )
    db.session.commit()
    answered = teacher.get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert (
        '<dt class="col-sm-8">Ansprechperson für diese Mitteilung</dt><dd class="col-sm-4">Mira HM, 02323 222-17 '
        "(ASD Herne-Mitte)</dd>" in answered
    )
    assert "Ihre Ansprechperson im ASD" not in answered and "Anna Kontakt" not in answered


def test_without_a_transfer_the_feedbacks_contact_and_the_directorys_are_told_apart(world, as_user):
    directory(world)
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    page = as_user(world.teacher).get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert (
        '<dt class="col-sm-8">Ansprechperson für diese Mitteilung</dt><dd class="col-sm-4">Anna ASD, 0234 999 '
        "(ASD Wanne-Eickel)</dd>" in page
    )
    assert "Allgemeine Ansprechperson des ASD Wanne-Eickel für Ihre Schule: Anna Kontakt" in page
    assert "Ihre Ansprechperson im ASD" not in page, "the old label named both people the same"


def test_the_school_lead_maintains_the_schools_own_contacts_only(world, as_user):
    contacts = directory(world)
    lead = as_user(world.school_lead)
    url = f"/contacts/new/child_protection?school={world.schools['a'].id}"
    created = lead.post(
        url,
        data={
            "name": "Karla Kinderschutz",
            "phone": "02325 555-130",
            "email": "",
            "reachable": "",
            "csrf_token": csrf_token(lead, url),
        },
    )
    assert created.status_code == 302
    assert (
        db.session.scalar(select(Contact.name).where(Contact.kind == ContactKind.CHILD_PROTECTION))
        == "Karla Kinderschutz"
    )
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "contact.create")) == "contact.create"
    token = csrf_token(lead, f"/contacts/schools/{world.schools['a'].id}")
    assert (
        lead.post(
            f"/contacts/new/asd_contact?school={world.schools['a'].id}", data={"name": "X", "csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        lead.post(f"/contacts/{contacts['asd_a'].id}/edit", data={"name": "X", "csrf_token": token}).status_code == 403
    )
    assert lead.post(f"/contacts/{contacts['social_b'].id}/delete", data={"csrf_token": token}).status_code == 404
    teacher = as_user(world.teacher)
    assert (
        teacher.post(
            f"/contacts/{contacts['social_a'].id}/delete", data={"csrf_token": csrf_token(teacher, "/contacts/pool")}
        ).status_code
        == 403
    )
    bad = lead.post(
        f"/contacts/{contacts['social_a'].id}/edit", data={"name": "", "phone": "ruf an", "csrf_token": token}
    )
    html = bad.get_data(as_text=True)
    assert (
        bad.status_code == 422
        and "Bitte den Namen angeben" in html
        and "nur Ziffern" in html
        and 'value="ruf an"' in html
    )
    removed = lead.post(f"/contacts/{contacts['social_a'].id}/delete", data={"csrf_token": token})
    db.session.expire_all()
    assert (
        removed.status_code == 302 and db.session.scalar(select(Contact).where(Contact.name == "Sami Sozial")) is None
    )


def test_the_admin_maintains_the_asd_contacts_and_the_pool(world, as_user):
    contacts = directory(world)
    admin = as_user(world.admin)
    token = csrf_token(admin, "/contacts/pool")
    assert admin.post("/contacts/new/insofa", data={"name": "Olaf Oberst", "csrf_token": token}).status_code == 302
    edited = admin.post(
        f"/contacts/{contacts['asd_a'].id}/edit",
        data={"name": "Anna Neu", "phone": "02325 16-1299", "csrf_token": token},
    )
    assert edited.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contacts["asd_a"].id).phone == "02325 16-1299"
    insofa = as_user(world.insofa)
    assert (
        insofa.post(
            "/contacts/new/insofa", data={"name": "Y", "csrf_token": csrf_token(insofa, "/contacts/pool")}
        ).status_code
        == 403
    )


def test_directory_entries_are_shown_escaped(world, as_user):
    db.session.add(
        Contact(kind=ContactKind.INSOFA, name='<script>alert("pool")</script>', reachable="<img src=x onerror=1>")
    )
    db.session.commit()
    html = as_user(world.teacher).get("/contacts/pool").get_data(as_text=True)
    assert '<script>alert("pool")' not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;pool&#34;)&lt;/script&gt;" in html


def test_the_directory_operations_check_record_and_leave_the_commit_to_the_caller(world):
    import pytest

    from referral.audit import chain
    from referral.directory import operations

    school = world.schools["a"]
    with pytest.raises(operations.NotYours):  # the ASD's own contact is not the school's to name
        operations.add_contact(world.school_lead, ContactKind.ASD_CONTACT, school, {"name": "Niemand"})
    assert db.session.info.get(chain.PENDING, []) == []
    contact = operations.add_contact(
        world.school_lead, ContactKind.SCHOOL_SOCIAL_WORK, school, {"name": "Sami Sozial", "phone": "02325 1"}
    )
    assert not operations.change_contact(world.school_lead, contact, {"name": "Sami Sozial"})
    assert operations.change_contact(world.school_lead, contact, {"phone": "02325 2"})
    with pytest.raises(operations.NotYours):
        operations.remove_contact(world.teacher, contact)
    operations.remove_contact(world.school_lead, contact)
    assert [e.action for e, _ in db.session.info[chain.PENDING]] == [
        "contact.create",
        "contact.update",
        "contact.delete",
    ]
    db.session.rollback()
    assert db.session.scalar(select(Contact).where(Contact.name == "Sami Sozial")) is None
