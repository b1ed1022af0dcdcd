"""The referral as a PDF of record: its text (extracted again), its layout, PDF/A and tagging, and the
characters it can print.

The layout test fills every field of a referral to its limit (12 persons, 30 messages, a transfer,
assessment and feedback), renders it through the route as the ASD and as the school, and asserts
that no two text lines on a page intersect and none leaves the page (pdfminer.six boxes).
No PDF/A validator (veraPDF) is installable from PyPI, Debian or npm here, so the PDF/A and tagging
requirements are checked structurally with pypdf.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import re
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pdfminer.high_level import extract_pages
from pdfminer.layout import LTPage, LTTextLine
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject
from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.cases import services
from referral.cases.models import BodyMark, Person, Referral, ReferralCategory
from referral.cases.process import State
from referral.cases.vocabulary import (
    AssessmentResult,
    BodySide,
    Category,
    InformedStatus,
    Measure,
    PersonKind,
    Relation,
    Urgency,
    regions_for,
)
from referral.extensions import db

from . import factories
from .test_referral_form import complete_form, field_error

NAMES = {
    "Turkish": ["Ayşe Yıldız", "Çağrı Öztürk", "İlkay Şahin"],
    "Polish": ["Łukasz Żółć", "Grzegorz Brzęczyszczykiewicz"],
    "Croatian/Serbian": ["Ines Ivanović", "Đorđe Šćekić", "Ђорђе Шћекић"],
    "Vietnamese": ["Nguyễn Thị Ánh Tuyết", "Trần Văn Đức"],
    "Greek": ["Γιώργος Παπαδόπουλος"],
    "Romanian": ["Ștefan Țurcanu"],
}
ARABIC = "محمد الأحمد"
ALL_NAMES = [name for names in NAMES.values() for name in names]
WORDS = [
    *" ".join(ALL_NAMES).split(),
    "Straße",
    "„Zitat“",
    "–",
    "Übergriff",
    ARABIC.split()[0],
    "§",
    "8a",
    "SGB",
    "VIII",
]


def pdf_text(response) -> tuple[list[str], str]:
    reader = PdfReader(io.BytesIO(response.data))
    pages = [page.extract_text() for page in reader.pages]
    return pages, "\n".join(pages)


def filled(length: int, offset: int = 0) -> str:
    """Text of exactly `length` characters: words from the languages above, wrapping like real text."""
    words = itertools.cycle(WORDS[offset % len(WORDS) :] + WORDS[: offset % len(WORDS)])
    text = ""
    while len(text) < length:
        text += next(words) + " "
    text = text[:length]
    return text[:-1] + "x" if text.endswith(" ") else text


def unbroken(length: int) -> str:
    """One word of `length` characters (an address typed without blanks): it must wrap, not leave the page."""
    return ("Brzęczyszczykiewiczstraße" * (length // 20 + 1))[:length]


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def referral_at_the_limits(world) -> Referral:
    """Every field at its limit (forms.py, models.py), 12 persons (MAX_PERSONS), 30 messages, a transfer
    (Wanne-Eickel → Herne-Mitte), assessment and feedback, all through the app's operations."""
    from referral.cases.forms import MAX_PERSONS

    teacher, asd_we, asd_hm = world.teacher, world.asd, world.asd_hm
    for i, account in enumerate((teacher, asd_we, asd_hm, world.asd_lead)):
        account.name = filled(120, i)  # User.name: String(120)
    world.schools["a"].name = "Grundschule " + filled(108, 5)  # School.name: String(120)
    world.districts["we"].name = "WE " + filled(117, 6)
    world.districts["hm"].name = "HM " + filled(117, 7)
    db.session.commit()

    referral = factories.complete_draft(teacher, urgency=Urgency.ACUTE)
    referral.child_first_name, referral.child_last_name = filled(100, 1), filled(100, 2)
    referral.child_gender, referral.child_class = filled(40, 3), filled(20, 4)
    referral.child_address = unbroken(300)
    referral.child_language = filled(100, 5)
    referral.interpreter_needed = True
    referral.persons = [
        Person(
            position=i,
            kind=list(PersonKind)[i % len(PersonKind)],
            first_name=filled(100, i),
            last_name=filled(100, i + 1),
            birth_date=date(1980, 1, 1) + timedelta(days=400 * i),
            address=filled(300, i + 2),
            phone=filled(40, i + 3),
            relation=list(Relation)[i % len(Relation)],
            custody=bool(i % 2),
        )
        for i in range(MAX_PERSONS)
    ]
    referral.categories = [ReferralCategory(category=c) for c in Category]
    referral.body_marks = [BodyMark(side=side, region=region) for side in BodySide for region in regions_for(side)]
    referral.observed_by, referral.observation_source = filled(200, 8), filled(200, 9)
    referral.observation, referral.child_words = filled(10000, 10), filled(10000, 11)
    for i, action in enumerate(referral.school_actions):
        action.done, action.reason, action.detail = False, filled(2000, 12 + i), filled(2000, 13 + i)
    referral.affected_informed, referral.affected_informed_on = InformedStatus.NO_OTHER, None
    referral.affected_informed_reason = filled(2000, 14)
    referral.phone_call_with = filled(200, 15)
    referral.reporter_name, referral.reporter_phone, referral.reporter_reachable = (
        filled(120, 16),
        filled(40, 17),
        filled(200, 18),
    )

    now = datetime(2026, 11, 5, 9, 0)
    services.submit(referral, teacher, now=now)
    services.acknowledge(referral, asd_we, now=now + timedelta(hours=1))
    services.transfer(
        referral,
        asd_we,
        world.districts["hm"],
        TRANSFER_REASON + filled(2000 - len(TRANSFER_REASON), 19),
        now=now + timedelta(hours=2),
    )
    services.acknowledge(referral, asd_hm, now=now + timedelta(hours=3))
    services.take_over(referral, asd_hm, now=now + timedelta(hours=4))
    at = now + timedelta(hours=5)
    for i in range(10):
        services.ask(referral, asd_hm, filled(10000, 20 + i), now=at + timedelta(minutes=3 * i))
        services.answer(referral, teacher, filled(10000, 30 + i), now=at + timedelta(minutes=3 * i + 1))
        services.add_addendum(referral, teacher, filled(10000, 40 + i), now=at + timedelta(minutes=3 * i + 2))
    for i in range(3):
        services.add_attachment(referral, teacher, filled(196, 50 + i) + ".png", png())
    services.record_assessment(
        referral,
        asd_hm,
        result=AssessmentResult.ACUTE,
        specialists=[asd_hm, world.asd_lead],
        other_specialists="\n".join(filled(120, 60 + i) for i in range(16))[:2000],
        school_involved=True,
        measures=[m for m in Measure if m is not Measure.NONE],
    )
    services.give_feedback(
        referral,
        asd_hm,
        now=now + timedelta(days=2),
        indications_confirmed=True,
        asd_became_active=True,
        asd_still_active=True,
        contact_name=filled(120, 70),
        contact_phone=filled(40, 71),
        affected_informed=InformedStatus.NO_OTHER,
        affected_informed_on=None,
        affected_informed_reason=filled(2000, 72),
    )
    db.session.commit()
    return referral


TRANSFER_REASON = "Mutter mit Kind ins Frauenhaus gezogen. "


def text_lines(data: bytes) -> list[tuple[LTPage, list[LTTextLine]]]:
    def lines(item):
        if isinstance(item, LTTextLine):
            if item.get_text().strip():
                yield item
        elif hasattr(item, "__iter__"):
            for child in item:
                yield from lines(child)

    return [(page, list(lines(page))) for page in extract_pages(io.BytesIO(data))]


def overlaps(a, b, tolerance: float = 0.5) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)


def assert_nothing_overprints(data: bytes) -> list[str]:
    """Asserts on every page that no text line intersects another or leaves the page; the pages' text."""
    pages = text_lines(data)
    for number, (page, lines) in enumerate(pages, start=1):
        for line in lines:
            assert page.x0 <= line.x0 and line.x1 <= page.x1 and page.y0 <= line.y0 and line.y1 <= page.y1, (
                f"page {number}: {line.get_text()!r} leaves the page"
            )
        for a, b in itertools.combinations(lines, 2):
            assert not overlaps(a, b), f"page {number}: {a.get_text()!r} overprints {b.get_text()!r}"
    return ["".join(line.get_text() for line in lines) for _, lines in pages]


def plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def without_arabic(text: str) -> str:
    return plain(re.sub(r"[\u0600-\u06FF]+", " ", text))


def keep(name: str, data: bytes) -> None:
    """KEEP_PDF_DIR=/tmp/pdfs keeps the generated files, to look at them (pdftoppm -png -r 60 …)."""
    if os.environ.get("KEEP_PDF_DIR"):
        Path(os.environ["KEEP_PDF_DIR"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["KEEP_PDF_DIR"]) / name).write_bytes(data)


# --- what is in it, for whom -------------------------------------------------------------------------


def test_the_asd_downloads_the_whole_referral(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    factories.services.add_addendum(referral, world.teacher, "Nachtrag: „Emma“ – fehlte heute wieder " * 40)
    db.session.commit()
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert (
        "attachment" in response.headers["Content-Disposition"]
        and referral.number in response.headers["Content-Disposition"]
    )
    pages, text = pdf_text(response)
    assert len(pages) >= 2, "long enough to need a second page"
    for number, page in enumerate(pages, start=1):
        assert "Vertraulich – Sozialdaten" in page and referral.number in page, number
        assert f"Seite {number} von {len(pages)}" in page
    for expected in (
        factories.CHILD_FIRST,
        factories.CHILD_LAST,
        "1. Kind",
        "3. Beobachtungen",
        "4. Was die Schule",
        "7. Meldende Person",
        "Rückfragen und Nachträge",
        "„Emma“",
        "Rückmeldung des ASD",
        "Gefährdungseinschätzung",
        "Verlauf",
        referral.school.name,
    ):
        assert expected in text, expected
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.export_pdf")).all()
    assert entry.actor_id == world.asd.id and entry.object_id == str(referral.id)


def test_the_schools_copy_leaves_out_what_the_school_may_not_see(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    response = as_user(world.teacher).get(f"/referrals/{referral.id}/pdf")
    _, text = pdf_text(response)
    assert factories.CHILD_LAST in text and "Rückmeldung des ASD" in text
    assert "Gefährdungseinschätzung" not in text, "the ASD's assessment is internal"


def test_an_ogs_reporters_copy_has_no_feedback(world, as_user):
    from referral.cases.vocabulary import ReporterFunction

    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd, reporter=ReporterFunction.OGS)
    _, text = pdf_text(as_user(world.teacher).get(f"/referrals/{referral.id}/pdf"))
    assert factories.CHILD_LAST in text
    assert "Rückmeldung des ASD" not in text and "0234 999" not in text, "§ 4 Abs. 4 KKG: no feedback for OGS staff"
    _, lead_text = pdf_text(as_user(world.school_lead).get(f"/referrals/{referral.id}/pdf"))
    assert "Rückmeldung des ASD" in lead_text and "0234 999" in lead_text


def test_nobody_else_gets_the_pdf(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    for user in (world.teacher_b, world.asd_hm, world.coordinator, world.admin, world.insofa, world.teacher_a2):
        assert as_user(user).get(f"/referrals/{referral.id}/pdf").status_code == 404
    draft = factories.referral_in(State.DRAFT, world.teacher, world.asd)
    assert as_user(world.teacher).get(f"/referrals/{draft.id}/pdf").status_code == 404


def test_markup_in_text_is_printed_literally(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    referral.observation = '<script>alert("x")</script> <b>fett</b> &amp; ẞ'
    db.session.commit()
    _, text = pdf_text(as_user(world.asd).get(f"/referrals/{referral.id}/pdf"))
    assert '<script>alert("x")</script> <b>fett</b> &amp; ẞ' in text, "shown literally; a PDF runs no scripts"


def test_the_transfer_reason_stays_inside_the_asd(world, as_user):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    services.transfer(referral, world.asd, world.districts["hm"], "Mutter mit Kind ins Frauenhaus gezogen")
    db.session.commit()
    school_copy = as_user(world.teacher).get(f"/referrals/{referral.id}/pdf")
    keep("transferred-school.pdf", school_copy.data)
    _, school = pdf_text(school_copy)
    _, asd = pdf_text(as_user(world.asd_hm).get(f"/referrals/{referral.id}/pdf"))
    for text in (school, asd):  # both learn that and where the case went
        assert "von Wanne-Eickel an Herne-Mitte" in plain(text)
    assert "Frauenhaus" not in school and "Grund" not in school, "§ 64 Abs. 4 SGB VIII: not for the school"
    assert "Grund: Mutter mit Kind ins Frauenhaus gezogen" in plain(asd)


# --- layout: nothing overprints, whatever the lengths ------------------------------------------------


def test_a_referral_at_every_limit_prints_without_any_overlap(world, as_user):
    referral = referral_at_the_limits(world)
    assert len(referral.persons) == 12 and len(referral.messages) == 30
    for reader in (world.asd_hm, world.teacher):
        response = as_user(reader).get(f"/referrals/{referral.id}/pdf")
        assert response.status_code == 200, reader
        keep(f"limits-{'asd' if reader is world.asd_hm else 'school'}.pdf", response.data)
        pages = assert_nothing_overprints(response.data)
        assert len(pages) > 20
        flat = without_arabic("\n".join(pages))  # right-to-left runs come out in visual order (see the Arabic test)
        for value in (
            referral.child_first_name,
            referral.persons[11].last_name,
            referral.messages[29].body[:300],
            referral.school_actions[4].reason[:300],
        ):
            assert without_arabic(value) in flat


def test_the_two_line_labels_of_the_old_layout_do_not_overprint(world, as_user):
    """The defects reported: 'InsoFa beraten' over 'Andere Fachkräfte', questions over answers over the feedback."""
    referral = factories.referral_in(State.INFO_REQUESTED, world.teacher, world.asd)
    for action in referral.school_actions:
        action.done, action.reason = False, "weil es so war " * 12
    services.answer(referral, world.teacher, "Antwort " * 80)
    db.session.commit()
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    assert_nothing_overprints(response.data)


# --- every character as typed ------------------------------------------------------------------------


def names_referral(world) -> Referral:
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    referral.child_first_name, referral.child_last_name = "Ayşe", "Yıldız"
    referral.persons = [
        Person(
            position=i,
            kind=PersonKind.HOUSEHOLD,
            first_name=name.split()[0],
            last_name=name.split(maxsplit=1)[1],
            address=f"{name}-Straße {i}",
        )
        for i, name in enumerate(ALL_NAMES + [ARABIC])
    ]
    referral.observation = "Beobachtet von " + ", ".join(ALL_NAMES) + "."
    referral.child_words = f"„{ARABIC}“ hat das Kind gesagt."
    services.add_addendum(referral, world.teacher, "Nachtrag zu " + "; ".join(ALL_NAMES))
    db.session.commit()
    return referral


def test_names_from_the_families_languages_come_back_exactly(world, as_user):
    referral = names_referral(world)
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 200
    keep("names-asd.pdf", response.data)
    from pdfminer.high_level import extract_text

    text = plain(extract_text(io.BytesIO(response.data)))
    assert not re.search(r"\w\?\w", text) and "\ufffd" not in text, "no letter turned into '?' (as in 'Ay?e Y?ld?z')"
    assert "Ayşe Yıldız" in text
    for name in ALL_NAMES:
        assert name in text, name
        assert f"{name}-Straße" in text, name
    assert "Beobachtet von " + ", ".join(ALL_NAMES) + "." in text
    assert "Nachtrag zu " + "; ".join(ALL_NAMES) in text


def test_arabic_is_embedded_and_maps_back_to_its_letters(world, as_user):
    """Arabic is shaped (joined letter forms, the lam-alef ligature) and laid out right to left, so text
    extraction yields the glyphs in visual order, each glyph mapped by ToUnicode to the letters it shows.
    Asserted honestly: read right to left, glyph by glyph, the mapped letters give exactly what was typed."""
    referral = names_referral(world)
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    runs = []
    for _, lines in text_lines(response.data):
        for line in lines:
            glyphs = [
                item.get_text() for item in line
            ]  # LTChar per glyph (a ligature maps to two letters), LTAnno for spaces
            run: list[str] = []
            for glyph in glyphs + ["|"]:
                if re.fullmatch(r"[\u0600-\u06FF]+", glyph) or (run and glyph == " "):
                    run.append(glyph)
                elif run:
                    runs.append(unicodedata.normalize("NFC", "".join(reversed(run)).strip()))
                    run = []
    assert runs, "Arabic letters are extracted"
    assert ARABIC in runs, runs
    assert all(run == ARABIC for run in runs), runs


# --- PDF/A and tagging -------------------------------------------------------------------------------


def resolve(obj):
    return obj.get_object() if isinstance(obj, IndirectObject) else obj


def structure_types(node, found: list[str]) -> list[str]:
    node = resolve(node)
    if isinstance(node, ArrayObject):
        for kid in node:
            structure_types(kid, found)
    elif isinstance(node, DictionaryObject):
        if "/S" in node:
            found.append(str(node["/S"]))
        if "/K" in node:
            structure_types(node["/K"], found)
    return found


def fonts_of(reader: PdfReader):
    for page in reader.pages:
        resources = resolve(page.get("/Resources", {}))
        for font in resolve(resources.get("/Font", {})).values():
            yield resolve(font)


def test_the_pdf_is_pdf_a_2a_with_embedded_fonts_and_tagged(world, as_user):
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)  # with assessment tables
    data = as_user(world.asd).get(f"/referrals/{referral.id}/pdf").data
    assert data.startswith(b"%PDF-1.7")
    reader = PdfReader(io.BytesIO(data))
    root = reader.trailer["/Root"]

    xmp = resolve(root["/Metadata"]).get_data().decode()
    assert re.search(r'pdfaid:part(="|>)2', xmp) and re.search(r'pdfaid:conformance(="|>)A', xmp), xmp
    [intent] = [resolve(i) for i in root["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1" and b"acsp" in resolve(intent["/DestOutputProfile"]).get_data()[:64], (
        "an ICC colour profile"
    )

    fonts = list(fonts_of(reader))
    assert fonts
    for font in fonts:
        assert font["/Subtype"] in ("/Type0", "/TrueType"), font["/Subtype"]
        # Only the @font-face family (DejaVu Sans from PDF_FONT_DIR), subset: no core font, no fallback font.
        assert re.fullmatch(r"/[A-Z]{6}\+Akte-Sans(-Bold)?", str(font["/BaseFont"])), font["/BaseFont"]
        descriptor = (
            resolve(resolve(font["/DescendantFonts"][0])["/FontDescriptor"])
            if font["/Subtype"] == "/Type0"
            else resolve(font["/FontDescriptor"])
        )
        assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, "embedded"
        assert "/ToUnicode" in font, "text maps back to Unicode"

    assert resolve(root["/MarkInfo"])["/Marked"] is True or str(resolve(root["/MarkInfo"])["/Marked"]) == "True"
    assert str(root["/Lang"]) == "de"
    assert resolve(root["/ViewerPreferences"])["/DisplayDocTitle"]
    assert reader.metadata.title == f"Mitteilung {referral.number} – Vertraulich – Sozialdaten"
    tags = structure_types(resolve(root["/StructTreeRoot"])["/K"], [])
    for tag in ("/Document", "/H1", "/H2", "/H3", "/P", "/Table", "/TR", "/TH", "/TD", "/L", "/LI"):
        assert tag in tags, tag
    assert tags.index("/H1") < tags.index("/H2"), "the title comes first"


def marked_text(data: bytes) -> dict[tuple[int, int], str]:
    """The text of each marked-content sequence, by (page index, MCID), as the content streams say."""
    from pdfminer.pdfdevice import TagExtractor
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    found = {}
    for index, page in enumerate(PDFPage.get_pages(io.BytesIO(data))):
        out = io.BytesIO()
        resources = PDFResourceManager()
        PDFPageInterpreter(resources, TagExtractor(resources, out, codec="utf-8")).process_page(page)
        for mcid, text in re.findall(r'<\w+ MCID="(\d+)">([^<]*)</\w+>', out.getvalue().decode()):
            found[(index, int(mcid))] = text
    return found


def tagged(data: bytes, wanted: set[str]) -> list[tuple[str, str]]:
    """(structure type, text) of the wanted elements, in the order of the structure tree (the reading order)."""
    reader = PdfReader(io.BytesIO(data))
    pages = {page.indirect_reference.idnum: i for i, page in enumerate(reader.pages)}
    texts = marked_text(data)

    def text_of(node, page) -> str:
        node = resolve(node)
        if isinstance(node, int):
            return texts.get((page, node), "")
        if isinstance(node, ArrayObject):
            return "".join(text_of(kid, page) for kid in node)
        if isinstance(node, DictionaryObject):
            if "/Pg" in node:
                page = pages[node.raw_get("/Pg").idnum]
            if "/MCID" in node:
                return texts.get((page, int(node["/MCID"])), "")
            return text_of(node.get("/K", ArrayObject()), page)
        return ""

    found = []

    def walk(node, page):
        node = resolve(node)
        if isinstance(node, ArrayObject):
            for kid in node:
                walk(kid, page)
        elif isinstance(node, DictionaryObject):
            if "/Pg" in node:
                page = pages[node.raw_get("/Pg").idnum]
            if str(node.get("/S")) in wanted:
                found.append((str(node["/S"]), text_of(node, page)))
            elif "/K" in node:
                walk(node["/K"], page)

    walk(resolve(reader.trailer["/Root"]["/StructTreeRoot"])["/K"], None)
    return found


def test_reading_order_follows_the_forms_sections(world, as_user):
    """The structure tree (what a screen reader follows) has the title, then the form's sections in order."""
    referral = factories.referral_in(State.FEEDBACK_GIVEN, world.teacher, world.asd)
    data = as_user(world.asd).get(f"/referrals/{referral.id}/pdf").data
    headings = tagged(data, {"/H1", "/H2"})
    assert headings == [("/H1", f"Mitteilung an den ASD nach § 4 Abs. 3 KKG – {referral.number}")] + [
        ("/H2", h)
        for h in (
            "1. Kind",
            "2. Eltern und Haushalt",
            "3. Beobachtungen",
            "4. Was die Schule bereits getan hat",
            "5. Information der Betroffenen",
            "6. Dringlichkeit",
            "7. Meldende Person",
            "8. Anhänge",
            "Rückfragen und Nachträge",
            "Rückmeldung des ASD (§ 4 Abs. 4 KKG)",
            "Gefährdungseinschätzung (nur ASD)",
            "Verlauf",
        )
    ]
    cells = tagged(data, {"/TH", "/TD"})
    assert cells[:4] == [("/TH", "Schule"), ("/TD", "Schule A"), ("/TH", "ASD-Bezirk"), ("/TD", "Wanne-Eickel")], (
        "label cells are header cells, each before its value"
    )


# --- characters the fonts lack: refused at input, and by the PDF route for older data --------------


@pytest.fixture
def teacher(world, login, app):
    app.config["WTF_CSRF_ENABLED"] = False
    return login(world.teacher)


def test_a_character_the_pdf_cannot_print_is_refused_at_the_field_and_nothing_is_saved(teacher, world):
    before = db.session.scalar(select(func.count()).select_from(Referral))
    data = complete_form(child_first_name="Wang 王", observation="Alles gesehen.", save="1")
    response = teacher.post("/referrals/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(html, "child_first_name") == (
        "Das Zeichen „王“ (U+738B) kann im PDF für die Fallakte nicht gedruckt werden. "
        "Bitte in lateinischer Umschrift eingeben."
    )
    assert 'value="Wang 王"' in html and "Alles gesehen." in html, "what was typed stays"
    assert db.session.scalar(select(func.count()).select_from(Referral)) == before


@pytest.mark.parametrize(
    "field", ["observation", "persons-0-last_name", "school_actions-0-reason", "reporter_reachable"]
)
def test_emoji_the_fonts_lack_are_refused_in_printed_fields(teacher, world, field):
    """U+1F642 is not in DejaVu Sans (U+1F600 is: coverage comes from the font's cmap, not from a list)."""
    response = teacher.post(
        "/referrals/new", data=complete_form(**{field: "gut 🙂", "save": "1", "school_actions-0-done": "no"})
    )
    assert response.status_code == 422
    assert "„🙂“ (U+1F642)" in field_error(response.get_data(as_text=True), field)


def test_arabic_and_vietnamese_are_accepted(teacher, world):
    response = teacher.post(
        "/referrals/new",
        data=complete_form(
            child_first_name=ARABIC,
            child_last_name="Nguyễn Thị Ánh Tuyết",
            **{"persons-0-last_name": "Ђорђе Шћекић"},
            save="1",
        ),
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    referral = db.session.scalars(select(Referral)).one()
    assert (referral.child_first_name, referral.child_last_name) == (ARABIC, "Nguyễn Thị Ánh Tuyết")


def test_decomposed_vietnamese_is_accepted(teacher, world):
    typed = unicodedata.normalize("NFD", "Trần Văn Đức")
    assert typed != "Trần Văn Đức"
    response = teacher.post("/referrals/new", data=complete_form(child_last_name=typed, save="1"))
    assert response.status_code == 302


def test_messages_and_asd_forms_refuse_unprintable_text(world, as_user, app):
    app.config["WTF_CSRF_ENABLED"] = False
    referral = factories.referral_in(State.IN_ASSESSMENT, world.teacher, world.asd)
    asd = as_user(world.asd)
    response = asd.post(f"/referrals/{referral.id}/ask", data={"ask-body": "Frage 🙂"})
    assert "„🙂“ (U+1F642)" in response.get_data(as_text=True)
    assert not referral.messages
    response = asd.post(
        f"/referrals/{referral.id}/transfer",
        data={"to_district": world.districts["hm"].id, "reason": "nach 東京 gezogen"},
    )
    assert "„東“ (U+6771)" in response.get_data(as_text=True)
    db.session.refresh(referral)
    assert referral.district_id == world.districts["we"].id
    factories.record_assessment(referral, world.asd, world.asd2)
    db.session.commit()
    response = asd.post(
        f"/referrals/{referral.id}/feedback",
        data={
            "indications_confirmed": "yes",
            "asd_became_active": "yes",
            "asd_still_active": "no",
            "contact_name": "Li 李",
            "contact_phone": "0234 999",
            "affected_informed": "yes",
            "affected_informed_on": "2026-11-06",
            "confirm": "y",
        },
    )
    assert response.status_code == 422 and "„李“ (U+674E)" in response.get_data(as_text=True)
    db.session.refresh(referral)
    assert referral.feedback is None


def test_stored_text_the_fonts_lack_refuses_the_pdf_with_a_german_message(world, as_user, caplog):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    referral.persons[0].last_name = "王小明"  # stored before input was checked
    db.session.commit()
    client = as_user(world.asd)
    with caplog.at_level(logging.ERROR):
        response = client.get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/referrals/{referral.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Das PDF kann nicht erstellt werden" in page and "Abschnitt 2 (Eltern und Haushalt)" in page
    assert "„王“ (U+738B)" in page
    [log] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "persons[0].last_name" in log.getMessage() and "U+738B" in log.getMessage()
    assert "王" not in log.getMessage() and "小明" not in log.getMessage(), "no personal data in the log"
    assert not db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.export_pdf")).all()


def test_a_missing_font_is_reported_not_replaced(world, as_user, app, caplog, tmp_path):
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    app.config["PDF_FONT_DIR"] = str(tmp_path / "keine-schriften")
    client = as_user(world.asd)
    with caplog.at_level(logging.ERROR):
        response = client.get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 302
    assert "die Schrift für das PDF fehlt" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert any("fonts-dejavu-core" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_a_file_name_the_pdf_cannot_print_is_refused_at_upload(world, login, app):
    app.config["WTF_CSRF_ENABLED"] = False
    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    teacher = login(world.teacher)
    response = teacher.post(
        f"/referrals/{referral.id}/attachments",
        data={"file": (io.BytesIO(png()), "照片.png")},
        content_type="multipart/form-data",
    )
    assert "Der Dateiname enthält das Zeichen „照“ (U+7167)" in response.get_data(as_text=True)
    db.session.refresh(referral)
    assert not referral.attachments
    response = teacher.post(
        f"/referrals/{referral.id}/attachments",
        data={"file": (io.BytesIO(png()), "Zdjęcie Łukasz.png")},
        content_type="multipart/form-data",
    )
    db.session.refresh(referral)
    assert [a.filename for a in referral.attachments] == ["Zdjęcie Łukasz.png"]


def test_text_missing_from_the_field_list_is_still_caught(world, as_user, monkeypatch):
    """stored_text() names the fields for the log; the whole document is checked as well, so a field
    added to the template but not to that list cannot slip a character past the check."""
    from referral.cases import pdf

    referral = factories.referral_in(State.SUBMITTED, world.teacher, world.asd)
    referral.child_class = "二"
    db.session.commit()
    monkeypatch.setattr(pdf, "stored_text", lambda *args, **kwargs: iter(()))
    response = as_user(world.asd).get(f"/referrals/{referral.id}/pdf")
    assert response.status_code == 302 and not response.data.startswith(b"%PDF")
