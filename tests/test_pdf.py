"""The referral as a PDF: its text content, checked by extracting it again."""
from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import select

from referral.audit.models import AuditEntry
from referral.cases.process import State
from referral.extensions import db

from . import factories


def pdf_text(response) -> tuple[list[str], str]:
    reader = PdfReader(io.BytesIO(response.data))
    pages = [page.extract_text() for page in reader.pages]
    return pages, "\n".join(pages)


def test_the_asd_downloads_the_whole_referral(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    factories.services.add_addendum(referral, world.teacher, "Nachtrag: „Emma“ – fehlte heute wieder " * 40)
    db.session.commit()
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"] and referral.number in response.headers["Content-Disposition"]
    pages, text = pdf_text(response)
    assert len(pages) >= 2, "long enough to need a second page"
    for number, page in enumerate(pages, start=1):
        assert "Vertraulich – Sozialdaten" in page and referral.number in page, number
        assert f"Seite {number} von {len(pages)}" in page
    for expected in (factories.CHILD_FIRST, factories.CHILD_LAST, "1. Kind", "3. Beobachtungen", "4. Was die Schule",
                     "7. Meldende Person", "Rückfragen und Nachträge", "„Emma“", "Rückmeldung des ASD",
                     "Gefährdungseinschätzung", "Verlauf", referral.school.name):
        assert expected in text, expected
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.export_pdf")).all()
    assert entry.actor_id == world.asd.id and entry.object_id == str(referral.id)


def test_the_schools_copy_leaves_out_what_the_school_may_not_see(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    response = as_user(world.teacher).get(f"/referrals/{referral.id}/pdf")
    _, text = pdf_text(response)
    assert factories.CHILD_LAST in text and "Rückmeldung des ASD" in text
    assert "Gefährdungseinschätzung" not in text, "the ASD's assessment is internal"


def test_nobody_else_gets_the_pdf(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    for user in (world.teacher_b, world.asd_hm, world.coordinator, world.admin, world.insofa, world.teacher_a2):
        assert as_user(user).get(f"/referrals/{referral.id}/pdf").status_code == 404
    draft = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    assert as_user(world.teacher).get(f"/referrals/{draft.id}/pdf").status_code == 404


def test_xss_and_unusual_characters_in_the_pdf(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    referral.observation = '<script>alert("x")</script> Emoji 🙂 und ẞ'
    db.session.commit()
    _, text = pdf_text(as_user(world.asd).get(f"/referrals/{referral.id}/pdf"))
    assert '<script>alert("x")</script>' in text, "shown literally; a PDF runs no scripts"
