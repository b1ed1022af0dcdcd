"""The referral as a PDF of record: PDF/A-2a (archivable and tagged), laid out by WeasyPrint.

WeasyPrint lays the document out as HTML/CSS, so text flows and cannot overprint other text, and
it writes the structure tree (headings, paragraphs, tables with header cells, lists) that makes
the file accessible. The only fonts are DejaVu Sans regular and bold (printable.py), embedded as
subsets with ToUnicode maps. Every page carries "Vertraulich – Sozialdaten", the case number and
"Seite x von y". What a reader may not see on the page is not in their PDF either (the ASD's
assessment, the feedback for OGS staff, the reason of a transfer for the school).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from flask import render_template

from .. import printable
from .process import RULES

PDF_VARIANT = "pdf/a-2a"


class NotMade(Exception):
    """No PDF rather than a wrong one: a German message for the reader, a line for the operator's log."""

    def __init__(self, for_the_user: str, for_the_log: str):
        super().__init__(for_the_log)
        self.for_the_user = for_the_user
        self.for_the_log = for_the_log


def _unprintable(found: printable.Unprintable) -> NotMade:
    # The log names the field and the code point only: no content of the referral.
    return NotMade(
        f"Das PDF kann nicht erstellt werden: {where(found.field)} enthält das Zeichen "
        f"{printable.describe(found.char)}, "
        "das die Schrift des PDF nicht enthält. Statt es als „?“ oder leeres Kästchen in die Akte zu drucken, wird "
        "kein PDF erstellt. Der Fehler ist protokolliert; bitte informieren Sie die Administration.",
        f"field {found.field} contains {found.code_point}, which the PDF fonts lack",
    )


def stored_text(referral, *, asd_side: bool, may_read_feedback: bool, history) -> Iterator[tuple[str, str | None]]:
    """Every stored text that goes into this reader's PDF, with the name of its field."""
    yield "school.name", referral.school.name
    yield "district.name", referral.district.name
    if referral.assignee:
        yield "assignee.name", referral.assignee.name
    for name in (
        "child_first_name",
        "child_last_name",
        "child_gender",
        "child_class",
        "child_address",
        "child_language",
        "observed_by",
        "observation_source",
        "observation",
        "child_words",
        "affected_informed_reason",
        "phone_call_with",
        "reporter_name",
        "reporter_phone",
        "reporter_reachable",
    ):
        yield name, getattr(referral, name)
    for i, person in enumerate(referral.persons):
        for name in ("first_name", "last_name", "address", "phone"):
            yield f"persons[{i}].{name}", getattr(person, name)
    for action in referral.school_actions:
        yield f"school_actions[{action.kind.value}].reason", action.reason
        yield f"school_actions[{action.kind.value}].detail", action.detail
    for i, attachment in enumerate(referral.attachments):
        yield f"attachments[{i}].filename", attachment.filename
    for i, message in enumerate(referral.messages):
        yield f"messages[{i}].author", message.author.name
        yield f"messages[{i}].body", message.body
    if referral.feedback and may_read_feedback:
        yield "feedback.contact_name", referral.feedback.contact_name
        yield "feedback.contact_phone", referral.feedback.contact_phone
        if asd_side:
            yield "feedback.affected_informed_reason", referral.feedback.affected_informed_reason
    if asd_side and referral.assessment:
        for i, user in enumerate(referral.assessment.specialists):
            yield f"assessment.specialists[{i}]", user.name
        yield "assessment.other_specialists", referral.assessment.other_specialists
    for i, change in enumerate(history):
        yield f"history[{i}].actor", change.actor.name
        if change.assignee:
            yield f"history[{i}].assignee", change.assignee.name
        if change.to_district:
            yield f"history[{i}].to_district", change.to_district.name
            yield f"history[{i}].from_district", change.from_district.name if change.from_district else ""
        if change.reason:  # history_for() has taken it out where the reader may not see it
            yield f"history[{i}].reason", change.reason


# Where a stored field appears, in the reader's words (field names as in stored_text).
_PLACES = [
    ("child_", "Abschnitt 1 (Kind)"),
    ("persons", "Abschnitt 2 (Eltern und Haushalt)"),
    ("observ", "Abschnitt 3 (Beobachtungen)"),
    ("school_actions", "Abschnitt 4 (Was die Schule bereits getan hat)"),
    ("affected_", "Abschnitt 5 (Information der Betroffenen)"),
    ("phone_call", "Abschnitt 6 (Dringlichkeit)"),
    ("reporter_", "Abschnitt 7 (Meldende Person)"),
    ("attachments", "Abschnitt 8 (Anhänge)"),
    ("messages", "den Rückfragen und Nachträgen"),
    ("feedback", "der Rückmeldung des ASD"),
    ("assessment", "der Gefährdungseinschätzung"),
    ("history", "dem Verlauf"),
]


def where(field: str) -> str:
    place = next((place for prefix, place in _PLACES if field.startswith(prefix)), None)
    return f"Ein gespeicherter Text in {place}" if place else "Ein gespeicherter Name (Schule, Bezirk oder Person)"


def _fonts_only(allowed: set[str]):
    """A URL fetcher that loads the font files and nothing else (no other file, no network)."""
    from weasyprint import URLFetcher

    class FontsOnly(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme != "file" or unquote(parts.path) not in allowed:
                raise ValueError(f"not loaded into the PDF: {url}")
            return super().fetch(url, headers)

    return FontsOnly(allowed_protocols={"file"}, fail_on_errors=True)


def render(referral, *, asd_side: bool, may_read_feedback: bool, history) -> bytes:
    """The PDF for this reader; NotMade when it cannot be printed as stored (missing font, a character the
    fonts lack) instead of a PDF with "?" or empty boxes."""
    from weasyprint import HTML

    try:
        fonts = printable.font_paths()
    except printable.FontMissing as error:
        raise NotMade(
            "Das PDF kann zurzeit nicht erstellt werden: die Schrift für das PDF fehlt auf dem Server. "
            "Der Fehler ist protokolliert; bitte informieren Sie die Administration.",
            str(error),
        ) from error
    found = printable.check_fields(
        stored_text(referral, asd_side=asd_side, may_read_feedback=may_read_feedback, history=history)
    )
    if found is not None:
        raise _unprintable(found)
    html = render_template(
        "cases/pdf.html",
        referral=referral,
        asd_side=asd_side,
        may_read_feedback=may_read_feedback,
        history=history,
        RULES=RULES,
        font_faces=[(weight, path.as_uri()) for weight, path in sorted(fonts.items())],
    )
    # The net under stored_text(): whatever reached the document, no character goes to the fonts' fallback.
    missed = printable.check_fields([("document", html)])
    if missed is not None:
        raise _unprintable(missed)
    fetcher = _fonts_only({str(path) for path in fonts.values()})
    return HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant=PDF_VARIANT, pdf_tags=True)
