"""The referral as a PDF for the case file (fpdf2; built-in fonts, nothing loaded from outside).

Every page carries "Vertraulich – Sozialdaten", the case number and "Seite x von y". What a reader
may not see on the page is not in their PDF either (the ASD's assessment, the feedback for OGS staff).
"""
from __future__ import annotations

from fpdf import FPDF

from ..templating import local_date, local_datetime, yes_no

CONFIDENTIAL = "Vertraulich – Sozialdaten"


def printable(value) -> str:
    """Text the built-in fonts can show (Windows-1252: German, quotes, dashes); anything else as '?'."""
    text = "" if value is None else str(value)
    return text.encode("cp1252", errors="replace").decode("cp1252")


class ReferralPDF(FPDF):
    def __init__(self, number: str):
        super().__init__(format="A4")
        self.core_fonts_encoding = "windows-1252"
        self.number = number
        self.set_auto_page_break(True, margin=20)
        self.set_title(printable(f"Mitteilung {number}"))
        self.set_creator("Mitteilungen Schule-ASD")
        self.alias_nb_pages()

    def header(self):
        self.set_font("helvetica", "B", 9)
        self.set_text_color(160, 0, 0)
        self.cell(0, 6, printable(f"{CONFIDENTIAL} · {self.number}"), align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(2)

    def footer(self):
        self.set_y(-14)
        self.set_font("helvetica", "", 8)
        self.cell(0, 6, printable(f"{CONFIDENTIAL} · {self.number} · Seite {self.page_no()} von {{nb}}"), align="C")

    def heading(self, text: str, size: int = 12):
        self.ln(2)
        self.set_font("helvetica", "B", size)
        self.multi_cell(0, 6, printable(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font("helvetica", "", 10)

    def pairs(self, rows):
        for label, value in rows:
            self.set_font("helvetica", "B", 10)
            self.multi_cell(55, 5, printable(label), new_x="RIGHT", new_y="TOP")
            self.set_font("helvetica", "", 10)
            self.multi_cell(0, 5, printable(value if value not in (None, "") else "–"), new_x="LMARGIN", new_y="NEXT")

    def text(self, value: str):  # noqa: A003 - a paragraph
        self.set_font("helvetica", "", 10)
        self.multi_cell(0, 5, printable(value or "–"), new_x="LMARGIN", new_y="NEXT")


def render(referral, *, asd_side: bool, may_read_feedback: bool, history) -> bytes:
    pdf = ReferralPDF(referral.number or f"Entwurf {referral.id}")
    pdf.add_page()
    pdf.heading(f"Mitteilung an den ASD nach § 4 Abs. 3 KKG – {referral.number}", 15)
    pdf.pairs([
        ("Schule", referral.school.name), ("ASD-Bezirk", referral.district.name), ("Status", referral.state.label),
        ("Dringlichkeit", referral.urgency.label if referral.urgency else ""),
        ("Eingereicht", local_datetime(referral.submitted_at)),
        ("Eingang bestätigt", local_datetime(referral.acknowledged_at)),
        ("Zuständige Fachkraft", referral.assignee.name if referral.assignee else ""),
    ])
    if referral.purged_at:
        pdf.text(f"Namen, Texte, Nachrichten und Anhänge wurden am {local_date(referral.purged_at)} gelöscht "
                 "(Aufbewahrungsfrist).")

    pdf.heading("1. Kind")
    pdf.pairs([("Name", referral.child_name), ("Geburtsdatum", local_date(referral.child_birth_date)),
               ("Geschlecht", referral.child_gender), ("Klasse", referral.child_class), ("Anschrift", referral.child_address),
               ("Familiensprache", f"{referral.child_language or '–'} (Dolmetschung: {yes_no(referral.interpreter_needed)})")])
    pdf.heading("2. Eltern und Haushalt")
    for person in referral.persons:
        details = [f"{person.first_name} {person.last_name}".strip()]
        if person.relation:
            details.append(person.relation.label)
        if person.custody is not None:
            details.append(f"sorgeberechtigt: {yes_no(person.custody)}")
        if person.address:
            details.append(f"Anschrift: {person.address}")
        if person.phone:
            details.append(f"Tel. {person.phone}")
        pdf.pairs([(person.kind.label, ", ".join(details))])
    pdf.heading("3. Beobachtungen")
    pdf.pairs([("Kategorien", ", ".join(c.label for c in referral.category_codes)),
               ("Beobachtet am", local_date(referral.observed_on)), ("Beobachtet von", referral.observed_by),
               ("Quelle", referral.observation_source)])
    pdf.text(referral.observation)
    if referral.child_words:
        pdf.pairs([("Äußerung des Kindes", referral.child_words)])
    if referral.body_marks:
        pdf.pairs([("Körperskizze", "; ".join(f"{m.side.label}: {m.region.label}" for m in referral.body_marks))])
    pdf.heading("4. Was die Schule bereits getan hat")
    for action in referral.school_actions_in_order:
        if action.done:
            answer = f"ja, am {local_date(action.done_on)}"
        elif action.done is False:
            answer = f"nein, weil {action.reason}"
        else:
            answer = "keine Angabe"
        pdf.pairs([(action.kind.label, answer + (f" – {action.detail}" if action.detail else ""))])
    pdf.heading("5. Information der Betroffenen")
    informed = referral.affected_informed.label if referral.affected_informed else ""
    if referral.affected_informed_on:
        informed += f" {local_date(referral.affected_informed_on)}"
    if referral.affected_informed_reason:
        informed += f": {referral.affected_informed_reason}"
    pdf.text(informed)
    pdf.heading("6. Dringlichkeit")
    urgency = referral.urgency.label if referral.urgency else ""
    if referral.phone_call_at:
        urgency += f". Telefonat mit dem ASD am {local_datetime(referral.phone_call_at)} mit {referral.phone_call_with}."
    pdf.text(urgency)
    pdf.heading("7. Meldende Person")
    pdf.pairs([("Name", referral.reporter_name),
               ("Funktion", referral.reporter_function.label if referral.reporter_function else ""),
               ("Telefon", referral.reporter_phone), ("Erreichbar", referral.reporter_reachable)])
    pdf.heading("8. Anhänge")
    pdf.text(", ".join(f"{a.filename} ({a.content_type})" for a in referral.attachments) or "keine")

    pdf.heading("Rückfragen und Nachträge")
    for message in referral.messages:
        pdf.pairs([(f"{message.kind.label}, {local_datetime(message.created_at)}", f"{message.author.name}: {message.body}")])
    if not referral.messages:
        pdf.text("keine")
    if referral.feedback and may_read_feedback:
        feedback = referral.feedback
        pdf.heading("Rückmeldung des ASD (§ 4 Abs. 4 KKG)")
        pdf.pairs([("Gegeben am", local_datetime(feedback.given_at)),
                   ("Anhaltspunkte bestätigt", yes_no(feedback.indications_confirmed)),
                   ("ASD tätig geworden", yes_no(feedback.asd_became_active)),
                   ("ASD weiterhin tätig", yes_no(feedback.asd_still_active)),
                   ("Ansprechperson", f"{feedback.contact_name}, {feedback.contact_phone}")])
    if asd_side and referral.assessment:
        assessment = referral.assessment
        pdf.heading("Gefährdungseinschätzung (nur ASD)")
        pdf.pairs([("Ergebnis", assessment.result.label),
                   ("Beteiligte Fachkräfte", ", ".join([u.name for u in assessment.specialists]
                                                       + assessment.other_specialists.splitlines())),
                   ("Schule einbezogen", yes_no(assessment.school_involved)),
                   ("Maßnahmen", ", ".join(m.label for m in assessment.measure_codes))])
    pdf.heading("Verlauf")
    from .process import RULES

    for change in history:
        line = f"{RULES[change.action].label} – {change.actor.name}"
        pdf.pairs([(local_datetime(change.at), line + (f" ({change.reason})" if change.reason else ""))])
    return bytes(pdf.output())
