"""The evaluation as one report: every table with its small numbers hidden, for the page, the
printable page and the CSV alike (so that no output shows more than another)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..cases.vocabulary import AssessmentResult, Category, Urgency
from ..consultations.vocabulary import ConsultationUrgency, Recommendation
from ..extensions import db
from ..organisation.models import District
from . import charts, figures
from .suppression import HIDDEN, count, cross_table, share, value


@dataclass
class Table:
    key: str
    title: str
    explanation: str
    header: list[str]
    rows: list[list] = field(default_factory=list)  # first cell: the row's label
    chart: str | None = None  # data: URL of an SVG image
    chart_alt: str = ""
    explanations: list[tuple[str, str]] = field(default_factory=list)


def _n(v):
    """A count for a chart: hidden counts are left out (no bar)."""
    return None if v == HIDDEN or v == "x" else v


KEY_ROWS = [
    ("Mitteilungen", lambda k: count(k.referrals),
     "Anzahl der im Zeitraum eingereichten Mitteilungen (ohne Entwürfe)."),
    ("Fachberatungen", lambda k: count(k.consultations), "Anzahl der im Zeitraum angefragten Fachberatungen."),
    ("Eingang fristgerecht bestätigt", lambda k: share(k.ack_in_time, k.ack_due),
     "Anteil der Mitteilungen, deren Eingang bis zur Frist bestätigt wurde, an allen, die bestätigt sind oder deren "
     "Frist abgelaufen ist (akut: 2 Stunden, sonst 1 Arbeitstag; nach einer Abgabe zählt die Frist des neuen Bezirks)."),
    ("Rückmeldung fristgerecht", lambda k: share(k.feedback_in_time, k.feedback_due),
     "Anteil mit Rückmeldung innerhalb von 10 Arbeitstagen nach Einreichung, an allen mit Rückmeldung oder "
     "abgelaufener Frist."),
    ("Rückmeldung überhaupt gegeben", lambda k: share(k.with_feedback, k.referrals),
     "Anteil der Mitteilungen des Zeitraums mit Rückmeldung an die Schule (bis heute)."),
    ("Anhaltspunkte bestätigt", lambda k: share(k.confirmed, k.with_feedback),
     "Anteil der Rückmeldungen, in denen der ASD die gewichtigen Anhaltspunkte bestätigt hat."),
    ("Vorab Fachberatung durch eine InsoFa", lambda k: share(k.consulted, k.referrals),
     "Anteil der Mitteilungen, die aus einer Fachberatung begonnen wurden oder in denen die Schule „InsoFa "
     "beraten: ja“ angegeben hat."),
    ("Betroffene vorab informiert", lambda k: share(k.informed, k.referrals),
     "Anteil der Mitteilungen, in denen die Schule die Betroffenen vorab über die Mitteilung informiert hat."),
    ("Zeit bis Eingangsbestätigung, Median", lambda k: value(k.ack_hours[0], k.ack_n, "Std."),
     "Stunden vom Eingang im zuständigen Bezirk bis zur Bestätigung (Kalenderzeit); Median: die Hälfte war schneller."),
    ("Zeit bis Eingangsbestätigung, 90 %", lambda k: value(k.ack_hours[1], k.ack_n, "Std."),
     "90. Perzentil (Rangmethode): 9 von 10 Mitteilungen waren höchstens so lange unbestätigt."),
    ("… in Arbeitszeit, Median", lambda k: value(k.ack_working_hours[0], k.ack_n, "Std."),
     "Wie oben, aber nur Stunden an Arbeitstagen (ohne Wochenenden und Feiertage in NRW)."),
    ("… in Arbeitszeit, 90 %", lambda k: value(k.ack_working_hours[1], k.ack_n, "Std."), ""),
    ("Zeit bis Rückmeldung, Median", lambda k: value(k.feedback_days[0], k.feedback_n, "Tage"),
     "Kalendertage von der Einreichung bis zur Rückmeldung an die Schule."),
    ("Zeit bis Rückmeldung, 90 %", lambda k: value(k.feedback_days[1], k.feedback_n, "Tage"), ""),
    ("… in Arbeitstagen, Median", lambda k: value(k.feedback_working_days[0], k.feedback_n, "Arbeitstage"),
     "Wie oben, gezählt nur an Arbeitstagen."),
    ("… in Arbeitstagen, 90 %", lambda k: value(k.feedback_working_days[1], k.feedback_n, "Arbeitstage"), ""),
]
SHARE_ROWS = {1: "ack_in_time/ack_due", 2: "feedback_in_time/feedback_due", 3: "with_feedback/referrals",
              5: "consulted/referrals", 6: "informed/referrals"}


def build(scope: figures.Scope, previous: figures.Scope, now: datetime, period_label: str,
          previous_label: str, with_charts: bool = True) -> list[Table]:
    tables: list[Table] = []
    model_ids = tuple(db.session.scalars(select(District.id).where(District.model_project.is_(True))))

    # Key figures: this period, the one before, and the model district against the others.
    columns = {f"{period_label}": figures.key_figures(scope, now),
               f"Vorzeitraum ({previous_label})": figures.key_figures(previous, now)}
    if model_ids and scope.school_id is None:
        columns["Modellbezirk"] = figures.key_figures(
            figures.Scope(scope.start, scope.end, district_ids=model_ids), now)
        columns["übrige Bezirke"] = figures.key_figures(
            figures.Scope(scope.start, scope.end, exclude_districts=model_ids), now)
    key = Table("kennzahlen", "Kennzahlen und Vergleich",
                "Wie jede Zeile berechnet wird, steht unter der Tabelle."
                + (" Modellbezirk und übrige Bezirke: derselbe Zeitraum, ohne Bezirksfilter." if len(columns) > 2 else ""),
                ["Kennzahl", *columns])
    key.rows = [[label, *(fn(k) for k in columns.values())] for label, fn, _ in KEY_ROWS]
    key.explanations = [(label, text) for label, _, text in KEY_ROWS if text]
    if with_charts:
        labels = [KEY_ROWS[i][0] for i in SHARE_ROWS]
        series = {}
        for name, k in columns.items():
            values = []
            for path in SHARE_ROWS.values():
                part, whole = (getattr(k, a) for a in path.split("/"))
                values.append(round(100 * part / whole) if whole >= 3 else None)
            series[name] = values
        key.chart = charts.bars("Anteile in Prozent", labels, series, percent=True)
        key.chart_alt = "Balkendiagramm der Anteile je Spalte; die Zahlen stehen in der Tabelle."
    tables.append(key)

    months = figures.per_month(scope)
    month_table = Table("monate", "Mitteilungen und Fachberatungen je Monat",
                        "Nach Monat der Einreichung bzw. Anfrage (UTC). Werte unter 3 als „<3“.",
                        ["Monat", "Mitteilungen", "Fachberatungen"],
                        [[m, count(r), count(c)] for m, (r, c) in months.items()])
    if with_charts:
        month_table.chart = charts.line("Je Monat", list(months), {
            "Mitteilungen": [_n(row[1]) for row in month_table.rows],
            "Fachberatungen": [_n(row[2]) for row in month_table.rows]})
        month_table.chart_alt = "Liniendiagramm: Mitteilungen und Fachberatungen je Monat; Monate mit weniger als 3 ohne Punkt."
    tables.append(month_table)

    tables.append(Table("bezirke", "Je Bezirk", "Zuständiger Bezirk (nach einer Abgabe: der aufnehmende).",
                        ["Bezirk", "Mitteilungen", "Fachberatungen"],
                        [[d, count(r), count(c)] for d, r, c in figures.per_district(scope)]))
    tables.append(Table("schulen", "Je Schule", "Alle Schulen im Filter, auch ohne Fälle.",
                        ["Schule (Bezirk)", "Mitteilungen", "Fachberatungen"],
                        [[f"{s} ({d})", count(r), count(c)] for d, s, r, c in figures.per_school(scope)]))

    urgency = figures.per_urgency(scope)
    consult_urgency = figures.consultations_per_urgency(scope)
    tables.append(Table("dringlichkeit", "Je Dringlichkeit",
                        "Dringlichkeit aus Sicht der Schule; Fachberatungen kennen nur „dringend“ und „normal“.",
                        ["Dringlichkeit", "Mitteilungen", "Fachberatungen"],
                        [[u.short, count(urgency.get(u.value)), "–"] for u in Urgency]
                        + [[f"Fachberatung {u.short}", "–", count(consult_urgency.get(u.value))] for u in ConsultationUrgency]))

    categories = figures.per_category(scope)
    category_table = Table("kategorien", "Je Kategorie",
                           "Mehrfachnennung möglich: eine Mitteilung mit zwei Kategorien zählt in beiden.",
                           ["Kategorie", "Mitteilungen", "Fachberatungen"],
                           [[c.label, count(categories.get(c.value, (0, 0))[0]), count(categories.get(c.value, (0, 0))[1])]
                            for c in Category])
    if with_charts:
        category_table.chart = charts.bars("Je Kategorie", [r[0] for r in category_table.rows], {
            "Mitteilungen": [_n(r[1]) for r in category_table.rows],
            "Fachberatungen": [_n(r[2]) for r in category_table.rows]})
        category_table.chart_alt = "Balkendiagramm der Kategorien; Werte unter 3 ohne Balken. Die Zahlen stehen in der Tabelle."
    tables.append(category_table)

    results = figures.assessment_results(scope)
    result_table = Table("einschaetzung", "Ergebnis der Gefährdungseinschätzung (§ 8a-Statistik)",
                         "Die vier Kategorien der amtlichen Statistik, für Mitteilungen des Zeitraums mit erfasster Einschätzung.",
                         ["Ergebnis", "Mitteilungen"], [[r.label, count(results.get(r.value))] for r in AssessmentResult])
    if with_charts:
        result_table.chart = charts.bars("Ergebnis der Einschätzung", [r[0] for r in result_table.rows],
                                         {"Mitteilungen": [_n(r[1]) for r in result_table.rows]})
        result_table.chart_alt = "Balkendiagramm der Ergebnisse; die Zahlen stehen in der Tabelle."
    tables.append(result_table)

    advice = figures.recommendations(scope)
    tables.append(Table("empfehlungen", "Empfehlungen der Fachberatungen", "Abgeschlossene Fachberatungen des Zeitraums.",
                        ["Empfehlung", "Fachberatungen"], [[r.label, count(advice.get(r.value))] for r in Recommendation]))

    tables.append(Table("abgaben", "Abgaben zwischen Bezirken", "Abgaben im Zeitraum (§ 86 SGB VIII), von → an.",
                        ["von → an", "Anzahl"], [[f"{a} → {b}", count(n)] for a, b, n in figures.transfers(scope)]))

    by_month = figures.school_by_month(scope)
    schools = sorted({s for s, _ in by_month})
    month_labels = sorted({m for _, m in by_month})
    cells = cross_table(by_month, schools, month_labels)
    tables.append(Table("schule_monat", "Mitteilungen je Schule und Monat",
                        "Kleine Zahlen als „<3“; „x“: ausgeblendet, damit sich eine kleine Zahl nicht aus den Summen "
                        "der anderen Tabellen errechnen lässt.",
                        ["Schule", *month_labels], [[s, *(cells[s, m] for m in month_labels)] for s in schools]))
    by_category = figures.school_by_category(scope)
    schools = sorted({s for s, _ in by_category})
    codes = [c.value for c in Category if any(code == c.value for _, code in by_category)]
    cells = cross_table(by_category, schools, codes)
    tables.append(Table("schule_kategorie", "Mitteilungen je Schule und Kategorie",
                        "Wie oben; Mehrfachnennung möglich.",
                        ["Schule", *(Category(c).label for c in codes)], [[s, *(cells[s, c] for c in codes)] for s in schools]))

    total, overdue = figures.overdue_now(scope, now)
    tables.append(Table("ueberfaellig", f"Zurzeit überfällig: {total} Mitteilungen",
                        "Stand jetzt, unabhängig vom Zeitraum; nur Aktenzeichen und Tage über der Frist"
                        + (" (die ersten 100)." if total > 100 else "."),
                        ["Aktenzeichen", "überfällig", "Tage über der Frist"],
                        [[number, what, max(0, (now - due).days)] for number, what, due in overdue]))
    return tables
