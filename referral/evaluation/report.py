"""The evaluation as one report: every table with its small numbers hidden, for the page, the
printable page and the CSV alike (so that no output shows more than another)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..cases.vocabulary import AssessmentResult, Category, Urgency
from ..consultations.vocabulary import ConsultationUrgency, Recommendation
from ..extensions import db
from ..kernel.settings import deadline_settings
from ..kernel.wording import counted
from ..organisation.models import District
from . import charts, figures
from .suppression import HIDDEN, SECONDARY, TOO_FEW, column, count, cross_table, share, value

MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


def month_label(key: str) -> str:
    """'2026-08' → 'August 2026' (spreadsheets would read the former as a date)."""
    year, month = key.split("-")
    return f"{MONTHS[int(month) - 1]} {year}"


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
    in_csv: bool = True  # the list of overdue case numbers is for the page, not for statistics


def _n(v):
    """A count for a chart: hidden counts are left out (no bar)."""
    return None if v in (HIDDEN, SECONDARY) else v


# Every label names its row on its own: screen readers read it as the row header, without the rows above.
KEY_ROWS = [
    (
        "Mitteilungen",
        lambda k: count(k.referrals),
        "Anzahl der im Zeitraum eingereichten Mitteilungen (ohne Entwürfe).",
    ),
    ("Fachberatungen", lambda k: count(k.consultations), "Anzahl der im Zeitraum angefragten Fachberatungen."),
    (
        "Eingang fristgerecht bestätigt",
        lambda k: share(k.ack_in_time, k.ack_due),
        "Anteil der Mitteilungen, deren Eingang bis zur Frist bestätigt wurde, an allen, die bestätigt sind oder deren "
        "Frist abgelaufen ist (akut: {ack_acute}, sonst {ack_days}; "
        "nach einer Abgabe zählt die Frist des neuen Bezirks).",
    ),
    (
        "Rückmeldung fristgerecht",
        lambda k: share(k.feedback_in_time, k.feedback_due),
        "Anteil mit Rückmeldung innerhalb von {feedback_days} nach Einreichung, an allen mit Rückmeldung oder "
        "abgelaufener Frist.",
    ),
    (
        "Rückmeldung überhaupt gegeben",
        lambda k: share(k.with_feedback, k.feedback_due),
        "Anteil mit Rückmeldung (bis heute, auch verspätet) an allen mit Rückmeldung oder abgelaufener Frist.",
    ),
    (
        "Anhaltspunkte bestätigt",
        lambda k: share(k.confirmed, k.with_feedback),
        "Anteil der Rückmeldungen, in denen der ASD die gewichtigen Anhaltspunkte bestätigt hat.",
    ),
    (
        "Vorab Fachberatung durch eine InsoFa",
        lambda k: share(k.consulted, k.referrals),
        "Anteil der Mitteilungen, die aus einer Fachberatung begonnen wurden oder in denen die Schule „InsoFa "
        "beraten: ja“ angegeben hat.",
    ),
    (
        "Betroffene vorab informiert",
        lambda k: share(k.informed, k.referrals),
        "Anteil der Mitteilungen, in denen die Schule die Betroffenen vorab über die Mitteilung informiert hat.",
    ),
    (
        "Zeit bis Eingangsbestätigung: Median",
        lambda k: value(k.ack_hours[0], k.ack_n, "Std."),
        "Stunden vom Eingang im zuständigen Bezirk bis zur Bestätigung, nur bestätigte Mitteilungen (noch "
        "unbestätigte zählen in „Eingang fristgerecht“ und in der Liste der überfälligen). "
        "Median: die Hälfte war schneller.",
    ),
    (
        "Zeit bis Eingangsbestätigung: 90. Perzentil",
        lambda k: value(k.ack_hours[1], k.ack_n, "Std."),
        "9 von 10 bestätigten Mitteilungen waren höchstens so lange unbestätigt (Rangmethode). "
        "Zeiten erst ab 10 Fällen.",
    ),
    (
        "Zeit bis Eingangsbestätigung, nur Arbeitstage: Median",
        lambda k: value(k.ack_working_hours[0], k.ack_n, "Std."),
        "Wie oben, aber nur die Stunden von Arbeitstagen (ganze Tage, ohne Wochenenden und Feiertage in NRW).",
    ),
    (
        "Zeit bis Eingangsbestätigung, nur Arbeitstage: 90. Perzentil",
        lambda k: value(k.ack_working_hours[1], k.ack_n, "Std."),
        "",
    ),
    (
        "Zeit bis Rückmeldung: Median",
        lambda k: value(k.feedback_days[0], k.feedback_n, "Tage"),
        "Kalendertage von der Einreichung bis zur Rückmeldung an die Schule, nur Mitteilungen mit Rückmeldung.",
    ),
    ("Zeit bis Rückmeldung: 90. Perzentil", lambda k: value(k.feedback_days[1], k.feedback_n, "Tage"), ""),
    (
        "Zeit bis Rückmeldung, nur Arbeitstage: Median",
        lambda k: value(k.feedback_working_days[0], k.feedback_n, "Arbeitstage"),
        "Wie oben, gezählt nur an Arbeitstagen.",
    ),
    (
        "Zeit bis Rückmeldung, nur Arbeitstage: 90. Perzentil",
        lambda k: value(k.feedback_working_days[1], k.feedback_n, "Arbeitstage"),
        "",
    ),
]
# The shares in the chart: label, part, whole.
SHARES = [
    ("Eingang fristgerecht bestätigt", "ack_in_time", "ack_due"),
    ("Rückmeldung fristgerecht", "feedback_in_time", "feedback_due"),
    ("Rückmeldung überhaupt gegeben", "with_feedback", "feedback_due"),
    ("Anhaltspunkte bestätigt", "confirmed", "with_feedback"),
    ("Vorab Fachberatung durch eine InsoFa", "consulted", "referrals"),
    ("Betroffene vorab informiert", "informed", "referrals"),
]


def _columns(rows: list[list], first_value: int = 1) -> list[list]:
    """Protect each value column of a one-way table (its total is shown elsewhere)."""
    if not rows:
        return rows
    protected = [
        column([row[i] for row in rows]) if all(isinstance(row[i], int) for row in rows) else [row[i] for row in rows]
        for i in range(first_value, len(rows[0]))
    ]
    return [[*row[:first_value], *(col[n] for col in protected)] for n, row in enumerate(rows)]


def _deadlines() -> dict[str, str]:
    """The deadlines that the explanations quote, as the admin set them."""
    settings = deadline_settings()
    return {
        "ack_acute": counted(settings["ack_acute_hours"], "Stunde", "Stunden"),
        "ack_days": counted(settings["ack_working_days"], "Arbeitstag", "Arbeitstage"),
        "feedback_days": counted(settings["feedback_working_days"], "Arbeitstag", "Arbeitstagen"),
    }


def build(
    scope: figures.Scope,
    previous: figures.Scope,
    now: datetime,
    period_label: str,
    previous_label: str,
    with_charts: bool = True,
) -> list[Table]:
    if scope.end > now:
        period_label += " (bis heute)"
    tables: list[Table] = []
    model_ids = tuple(db.session.scalars(select(District.id).where(District.model_project.is_(True))))

    # Key figures: this period, the one before, and the model district against the others.
    columns = {
        f"{period_label}": figures.key_figures(scope, now),
        f"Vorzeitraum ({previous_label})": figures.key_figures(previous, now),
    }
    if model_ids and scope.school_id is None:
        columns["Modellbezirk"] = figures.key_figures(
            figures.Scope(scope.start, scope.end, district_ids=model_ids), now
        )
        columns["übrige Bezirke"] = figures.key_figures(
            figures.Scope(scope.start, scope.end, exclude_districts=model_ids), now
        )
    key = Table(
        "kennzahlen",
        "Kennzahlen und Vergleich",
        "Wie jede Zeile berechnet wird, steht unter der Tabelle."
        + (" Modellbezirk und übrige Bezirke: derselbe Zeitraum, ohne Bezirksfilter." if len(columns) > 2 else ""),
        ["Kennzahl", *columns],
    )
    key.rows = [[label, *(fn(k) for k in columns.values())] for label, fn, _ in KEY_ROWS]
    if len(columns) == 4:  # model district + the others = the total: neither count may give the other away
        model, others = list(columns.values())[2:]
        for row, attribute in ((key.rows[0], "referrals"), (key.rows[1], "consultations")):
            row[3], row[4] = column([getattr(model, attribute), getattr(others, attribute)])
    deadlines = _deadlines()
    key.explanations = [(label, text.format(**deadlines)) for label, _, text in KEY_ROWS if text]
    if with_charts:
        labels = [label for label, _, _ in SHARES]
        series = {
            name: [
                None
                if share(getattr(k, part), getattr(k, whole)) == TOO_FEW
                else round(100 * getattr(k, part) / getattr(k, whole))
                for _, part, whole in SHARES
            ]
            for name, k in columns.items()
        }
        key.chart_alt = "Balkendiagramm der Anteile je Spalte; die Zahlen stehen in der Tabelle."
        key.chart = charts.bars("Anteile in Prozent", labels, series, key.chart_alt, percent=True)
    tables.append(key)

    months = figures.per_month(scope)
    month_table = Table(
        "monate",
        "Mitteilungen und Fachberatungen je Monat",
        "Nach Monat der Einreichung bzw. Anfrage.",
        ["Monat", "Mitteilungen", "Fachberatungen"],
        _columns([[month_label(m), r, c] for m, (r, c) in months.items()]),
    )
    if with_charts:
        month_table.chart_alt = (
            "Liniendiagramm: Mitteilungen und Fachberatungen je Monat; Monate mit weniger als 3 ohne Punkt."
        )
        month_table.chart = charts.line(
            "Je Monat",
            [r[0] for r in month_table.rows],
            {
                "Mitteilungen": [_n(row[1]) for row in month_table.rows],
                "Fachberatungen": [_n(row[2]) for row in month_table.rows],
            },
            month_table.chart_alt,
        )
    tables.append(month_table)

    if scope.school_id is None:  # for one school, districts and transfers would tell where a family moved
        tables.append(
            Table(
                "bezirke",
                "Je Bezirk",
                "Zuständiger Bezirk (nach einer Abgabe: der aufnehmende).",
                ["Bezirk", "Mitteilungen", "Fachberatungen"],
                _columns([[d, r, c] for d, r, c in figures.per_district(scope)]),
            )
        )
    tables.append(
        Table(
            "schulen",
            "Je Schule",
            "Alle Schulen im Filter, auch ohne Fälle. Mit Bezirksfilter: die Schulen des Bezirks; Mitteilungen "
            "aus Schulen anderer Bezirke, die an ihn abgegeben wurden, zählen beim Bezirk, nicht hier.",
            ["Schule (Bezirk)", "Mitteilungen", "Fachberatungen"],
            _columns([[f"{s} ({d})", r, c] for d, s, r, c in figures.per_school(scope)]),
        )
    )

    urgency = figures.per_urgency(scope)
    consult_urgency = figures.consultations_per_urgency(scope)
    tables.append(
        Table(
            "dringlichkeit",
            "Je Dringlichkeit",
            "Dringlichkeit aus Sicht der Schule; Fachberatungen kennen nur „dringend“ und „normal“.",
            ["Dringlichkeit", "Mitteilungen", "Fachberatungen"],
            [
                [u.short, n, "–"]
                for u, n in zip(Urgency, column([urgency.get(u.value, 0) for u in Urgency]), strict=True)
            ]
            + [
                [f"Fachberatung {u.short}", "–", n]
                for u, n in zip(
                    ConsultationUrgency,
                    column([consult_urgency.get(u.value, 0) for u in ConsultationUrgency]),
                    strict=True,
                )
            ],
        )
    )

    categories = figures.per_category(scope)
    category_table = Table(
        "kategorien",
        "Je Kategorie",
        "Mehrfachnennung möglich: eine Mitteilung mit zwei Kategorien zählt in beiden.",
        ["Kategorie", "Mitteilungen", "Fachberatungen"],
        _columns([[c.label, *categories.get(c.value, (0, 0))] for c in Category]),
    )
    if with_charts:
        category_table.chart_alt = (
            "Balkendiagramm der Kategorien; Werte unter 3 ohne Balken. Die Zahlen stehen in der Tabelle."
        )
        category_table.chart = charts.bars(
            "Je Kategorie",
            [r[0] for r in category_table.rows],
            {
                "Mitteilungen": [_n(r[1]) for r in category_table.rows],
                "Fachberatungen": [_n(r[2]) for r in category_table.rows],
            },
            category_table.chart_alt,
        )
    tables.append(category_table)

    results = figures.assessment_results(scope)
    result_table = Table(
        "einschaetzung",
        "Ergebnis der Gefährdungseinschätzung (§ 8a-Statistik)",
        "Die vier Kategorien der amtlichen Statistik, für Mitteilungen des Zeitraums mit erfasster Einschätzung.",
        ["Ergebnis", "Mitteilungen"],
        _columns([[r.label, results.get(r.value, 0)] for r in AssessmentResult]),
    )
    if with_charts:
        result_table.chart_alt = "Balkendiagramm der Ergebnisse; die Zahlen stehen in der Tabelle."
        result_table.chart = charts.bars(
            "Ergebnis der Einschätzung",
            [r[0] for r in result_table.rows],
            {"Mitteilungen": [_n(r[1]) for r in result_table.rows]},
            result_table.chart_alt,
        )
    tables.append(result_table)

    advice = figures.recommendations(scope)
    tables.append(
        Table(
            "empfehlungen",
            "Empfehlungen der Fachberatungen",
            "Abgeschlossene Fachberatungen des Zeitraums.",
            ["Empfehlung", "Fachberatungen"],
            _columns([[r.label, advice.get(r.value, 0)] for r in Recommendation]),
        )
    )

    if scope.school_id is None:
        tables.append(
            Table(
                "abgaben",
                "Abgaben zwischen Bezirken",
                "Abgaben im Zeitraum (§ 86 SGB VIII), von → an.",
                ["von → an", "Anzahl"],
                _columns([[f"{a} → {b}", n] for a, b, n in figures.transfers(scope)]),
            )
        )

    by_month = figures.school_by_month(scope)
    schools = sorted({s for s, _ in by_month})
    month_labels = sorted({m for _, m in by_month})
    cells = cross_table(by_month, schools, month_labels)
    tables.append(
        Table(
            "schule_monat",
            "Mitteilungen je Schule und Monat",
            "Kleine Zahlen als „<3“; „x“: ausgeblendet, damit sich eine kleine Zahl nicht aus den Summen "
            "der anderen Tabellen errechnen lässt.",
            ["Schule", *(month_label(m) for m in month_labels)],
            [[s, *(cells[s, m] for m in month_labels)] for s in schools],
        )
    )
    by_category = figures.school_by_category(scope)
    schools = sorted({s for s, _ in by_category})
    codes = [c.value for c in Category if any(code == c.value for _, code in by_category)]
    cells = cross_table(by_category, schools, codes)
    tables.append(
        Table(
            "schule_kategorie",
            "Mitteilungen je Schule und Kategorie",
            "Wie oben; Mehrfachnennung möglich.",
            ["Schule", *(Category(c).label for c in codes)],
            [[s, *(cells[s, c] for c in codes)] for s in schools],
        )
    )

    from .surveys import tables as survey_tables  # here: it builds on Table above

    tables += survey_tables(scope, model_ids)

    total, overdue = figures.overdue_now(scope, now)
    tables.append(
        Table(
            "ueberfaellig",
            f"Zurzeit überfällige Mitteilungen: {count(total)}",
            "Stand jetzt, unabhängig vom Zeitraum; nur Aktenzeichen und Tage über der Frist"
            + (" (die ersten 100)." if total > 100 else ".")
            + " Nicht in der CSV-Datei: eine Arbeitsliste, "
            "keine Statistik.",
            ["Aktenzeichen", "überfällig", "Tage über der Frist"],
            [[number, what, max(0, (now - due).days)] for number, what, due in overdue],
            in_csv=False,
        )
    )
    return tables
