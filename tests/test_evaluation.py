"""The evaluation against values computed by hand on a small fixed data set (March 2026), the hiding
of small numbers on the page and in the CSV, the permissions and the district overview."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from referral.audit.models import AuditEntry
from referral.cases import services
from referral.cases.vocabulary import AssessmentResult, InformedStatus, Measure, SchoolActionKind, Urgency
from referral.consultations.process import ConsultationState as C
from referral.evaluation.suppression import column, cross_table
from referral.extensions import db
from referral.timeutil import local_to_utc

from . import factories
from .test_workflow import QueryCounter

MARCH = "period=free&first=2026-03-01&last=2026-03-31"


def at(day: int, hour: int, month: int = 3) -> datetime:
    return local_to_utc(datetime(2026, month, day, hour, 0))


def submitted(author, day, hour, *, urgency=Urgency.URGENT, consulted=False, informed=True, month=3):
    referral = factories.complete_draft(author, urgency=urgency)
    for action in referral.school_actions:
        if action.kind is SchoolActionKind.INSOFA_CONSULTED and not consulted:
            action.done, action.done_on, action.reason = False, None, "Keine InsoFa erreichbar."
    if not informed:
        referral.affected_informed, referral.affected_informed_on = InformedStatus.NO_ENDANGERS, None
        referral.affected_informed_reason = "Würde das Kind gefährden."
    services.submit(referral, author, now=at(day, hour, month))
    return referral


def feedback(referral, asd, lead, when, *, result, confirmed):
    services.take_over(referral, asd, now=when - timedelta(hours=2))
    services.record_assessment(
        referral,
        asd,
        result=result,
        specialists=[asd, lead],
        other_specialists="",
        school_involved=True,
        measures=[Measure.HELP_OFFER],
        now=when - timedelta(hours=1),
    )
    values = factories.feedback_values(asd) | {"indications_confirmed": confirmed}
    services.give_feedback(referral, asd, now=when, **values)


@pytest.fixture
def march(world):
    """Four referrals and two consultations in March 2026 (hand-computed figures in the tests), one
    referral in February. District WE is the model district."""
    w = world
    w.districts["we"].model_project = True
    asd, lead = w.asd, w.asd_lead
    # R1, school A: Monday 2 March 9:00, acknowledged after 1 hour, feedback Friday 9:00 (in time), confirmed.
    r1 = submitted(w.teacher, 2, 9, consulted=True)
    services.acknowledge(r1, asd, now=at(2, 10))
    feedback(r1, asd, lead, at(6, 9), result=AssessmentResult.LATENT, confirmed=True)
    # R2, school A: Friday 6 March 15:00, acknowledged Monday 9:00 (66 h; 18 h on working days; in time), no feedback.
    r2 = submitted(w.teacher, 6, 15)
    services.acknowledge(r2, asd, now=at(9, 9))
    # R3, school A2: Tuesday 10 March 9:00, acknowledged Thursday 9:00 (48 h, late), feedback 31 March 9:00 (late).
    r3 = submitted(w.teacher_a2, 10, 9, urgency=Urgency.CLARIFY)
    services.acknowledge(r3, asd, now=at(12, 9))
    feedback(r3, asd, lead, at(31, 9), result=AssessmentResult.NO_RISK, confirmed=False)
    # R4, school A2: Wednesday 11 March, passed on to Herne-Mitte, never acknowledged there; not told beforehand.
    r4 = submitted(w.teacher_a2, 11, 9, informed=False)
    services.transfer(r4, asd, w.districts["hm"], "Eltern wohnen in Herne-Mitte", now=at(11, 10))
    # Outside the period: February.
    submitted(w.teacher, 16, 9, month=2)
    db.session.commit()
    factories.consultation_in(C.REQUESTED, w.teacher, now=at(3, 9))
    factories.consultation_in(C.ANSWERED, w.teacher, w.insofa, now=at(4, 9))
    return {"r1": r1.number, "r2": r2.number, "r3": r3.number, "r4": r4.number}


def cells(html: str, row_label: str) -> list[str]:
    """The cells of the first table row whose header is `row_label` (text only)."""
    match = re.search(r"<tr><th scope=\"row\">" + re.escape(row_label) + r"</th>(.*?)</tr>", html, re.S)
    assert match, f"no row {row_label!r}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def section(html: str, key: str) -> str:
    start = html.index(f'id="t-{key}"')
    end = html.find("evaluation-section", start)
    return html[start : end if end > 0 else None]


def test_key_figures_match_the_hand_computed_values(march, world):
    from referral.evaluation import figures
    from referral.timeutil import utcnow

    k = figures.key_figures(figures.Scope(at(1, 0), at(1, 0, month=4)), utcnow())
    assert (k.referrals, k.consultations) == (4, 2)
    # Acknowledged in time: R1, R2 of R1–R4 (R4's deadline in HM has passed).
    assert (k.ack_in_time, k.ack_due) == (2, 4)
    # Feedback in time: R1 only; R2 and R4 are past their deadline, R3 was late.
    assert (k.feedback_in_time, k.feedback_due, k.with_feedback, k.confirmed) == (1, 4, 2, 1)
    assert (k.consulted, k.informed) == (1, 3)
    # Acknowledgement: 60, 2880, 3960 minutes → median (rank ⌈1.5⌉ = 2) 48 h, 90th percentile (rank 3) 66 h;
    # on working days: 60 min, 18 h (Fri 15–24 + Mon 0–9), 48 h → 18 h and 48 h.
    assert (k.ack_n, k.ack_hours, k.ack_working_hours) == (3, (48.0, 66.0), (18.0, 48.0))
    # Feedback: R1 Mon 9:00 → Fri 9:00 (4 days, all working days), R3 503 h (20.96 days; 15 working days).
    assert (k.feedback_n, k.feedback_days, k.feedback_working_days) == (2, (4.0, 21.0), (4.0, 15.0))
    model = figures.key_figures(
        figures.Scope(at(1, 0), at(1, 0, month=4), district_ids=(world.districts["we"].id,)), utcnow()
    )
    assert (model.referrals, model.ack_in_time, model.ack_due) == (3, 2, 3)


def test_the_page_hides_what_rests_on_too_few_cases(march, world, as_user):
    key = section(as_user(world.coordinator).get(f"/coordination/evaluation?{MARCH}").text, "kennzahlen")
    # Columns: the period, the period before (February: 1 referral), model district WE, the other districts;
    # the others' 1 would follow from 4 − 3, so the model district's 3 is hidden as well.
    assert cells(key, "Mitteilungen") == ["4", "&lt;3", "x", "&lt;3"]
    assert cells(key, "Fachberatungen")[0] == "&lt;3"
    too_few = "– (zu wenige Fälle)"
    assert cells(key, "Eingang fristgerecht bestätigt")[0] == too_few, "2 of 4: the part is 2"
    assert cells(key, "Betroffene vorab informiert")[0] == too_few, "3 of 4: the rest is 1"
    assert cells(key, "Zeit bis Eingangsbestätigung: Median")[0] == too_few, "times from 10 cases on"


def test_shares_and_times_are_shown_with_enough_cases(world, as_user):
    # Twelve referrals in April 2026, each acknowledged after exactly 2 hours (a Tuesday, 9:00 → 11:00).
    for _ in range(12):
        referral = submitted(world.teacher, 14, 9, month=4)
        services.acknowledge(referral, world.asd, now=at(14, 11, month=4))
    db.session.commit()
    key = section(
        as_user(world.coordinator).get("/coordination/evaluation?period=month&day=2026-04-10").text, "kennzahlen"
    )
    assert cells(key, "Mitteilungen")[0] == "12"
    assert cells(key, "Eingang fristgerecht bestätigt")[0] == "100 %"
    assert cells(key, "Zeit bis Eingangsbestätigung: Median")[0] == "2,0 Std."
    assert cells(key, "Zeit bis Eingangsbestätigung, nur Arbeitstage: 90. Perzentil")[0] == "2,0 Std."
    assert cells(key, "Betroffene vorab informiert")[0] == "100 %"


def test_durations_are_fixed_at_the_step(march):
    from referral.cases.models import Referral

    r3 = db.session.scalar(select(Referral).where(Referral.number == march["r3"]))
    assert (r3.ack_minutes, r3.ack_working_minutes) == (48 * 60, 48 * 60)
    # 10 March 9:00 to 31 March 9:00 (summer time from 29 March): 503 calendar hours; on working days
    # 15 h + 14 full days + 9 h = 360 h.
    assert (r3.feedback_minutes, r3.feedback_working_minutes) == (503 * 60, 360 * 60)


def test_tables_count_by_month_school_district_category_and_result(march, world, as_user):
    html = as_user(world.coordinator).get(f"/coordination/evaluation?{MARCH}").text
    assert cells(section(html, "monate"), "März 2026") == ["4", "&lt;3"]
    assert "Februar 2026" not in section(html, "monate")
    districts = section(html, "bezirke")
    # WE 3 and HM 1 of 4: HM's 1 would follow from the total, so WE's 3 is hidden as well.
    assert cells(districts, "Wanne-Eickel") == ["x", "&lt;3"] and cells(districts, "Herne-Mitte") == ["&lt;3", "&lt;3"]
    assert cells(section(html, "schulen"), "Schule A (Wanne-Eickel)") == ["&lt;3", "&lt;3"]
    assert cells(section(html, "dringlichkeit"), "dringend") == ["x", "–"], "3 urgent, 1 Klärung of 4"
    assert cells(section(html, "kategorien"), "Vernachlässigung") == ["4", "&lt;3"]
    assert cells(section(html, "einschaetzung"), "Latente Kindeswohlgefährdung") == ["&lt;3"]
    assert cells(section(html, "abgaben"), "Wanne-Eickel → Herne-Mitte") == ["&lt;3"]
    overdue = section(html, "ueberfaellig")
    assert march["r4"] in overdue and march["r2"] in overdue  # R2: feedback overdue; R4: acknowledgement
    assert "Schule A" not in overdue and factories.CHILD_LAST not in html


def test_filters_by_district_and_school(march, world, as_user):
    coordinator = as_user(world.coordinator)
    html = coordinator.get(f"/coordination/evaluation?{MARCH}&district={world.districts['we'].id}").text
    assert cells(section(html, "kennzahlen"), "Mitteilungen")[0] == "3"
    html = coordinator.get(f"/coordination/evaluation?{MARCH}&school={world.schools['a'].id}").text
    assert cells(section(html, "kennzahlen"), "Mitteilungen")[0] == "&lt;3"
    assert "Modellbezirk" not in section(html, "kennzahlen"), "no district comparison for one school"


def test_the_period_can_be_a_month_quarter_or_school_year(march, world, as_user):
    coordinator = as_user(world.coordinator)
    for query, label, count in (
        ("period=month&day=2026-03-15", "März 2026", "4"),
        ("period=quarter&day=2026-03-15", "1. Quartal 2026", "5"),
        ("period=school_year&day=2026-03-15", "Schuljahr 2025/26", "5"),
    ):
        html = coordinator.get(f"/coordination/evaluation?{query}").text
        assert f'<p class="lead">{label}' in html
        assert cells(section(html, "kennzahlen"), "Mitteilungen")[0] == count, query
    bad = coordinator.get("/coordination/evaluation?period=free&first=2026-03-31&last=2026-03-01")
    assert bad.status_code == 200 and "Das Ende liegt vor dem Beginn." in bad.text
    assert 'id="t-kennzahlen"' not in bad.text, "no figures for an invalid filter"
    assert (
        coordinator.get("/coordination/evaluation.csv?period=free&first=2026-03-31&last=2026-03-01").status_code == 302
    )
    far = coordinator.get("/coordination/evaluation?period=month&day=0001-01-15")
    assert far.status_code == 200 and "zwischen 2000 und 2100" in far.text
    crossed = coordinator.get(
        f"/coordination/evaluation?district={world.districts['hm'].id}&school={world.schools['a'].id}"
    )
    assert "Diese Schule gehört nicht zum gewählten Bezirk." in crossed.text


def test_no_count_below_3_in_the_csv_and_the_export_is_logged(march, world, as_user):
    response = as_user(world.coordinator).get(f"/coordination/evaluation.csv?{MARCH}")
    assert response.status_code == 200 and response.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Tabelle", "Zeile", "Spalte", "Wert", "Einheit"]
    assert ["Auswertung", "Zeitraum", "01.03.2026–31.03.2026", "01.03.2026–31.03.2026", ""] in rows
    assert not [r for r in rows if r[0].startswith("Zurzeit überfällige")], "the work list is not exported"
    counts = rows[5:]
    small = [r for r in counts if re.fullmatch(r"[0-2]", r[3])]
    assert not small, f"counts below 3 in the export: {small}"
    assert ["Je Bezirk", "Herne-Mitte", "Mitteilungen", "<3", ""] in rows
    assert ["Kennzahlen und Vergleich", "Mitteilungen", "01.03.2026–31.03.2026", "4", ""] in rows
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "export.evaluation")).one()
    assert entry.actor_id == world.coordinator.id


def test_no_count_below_3_on_the_page_or_the_print(march, world, as_user):
    coordinator = as_user(world.coordinator)
    for url in (f"/coordination/evaluation?{MARCH}", f"/coordination/evaluation/print?{MARCH}"):
        html = coordinator.get(url).text
        tds = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]
        overdue_days = set(cells(section(html, "ueberfaellig"), march["r4"])[1:])
        assert not [t for t in tds if re.fullmatch(r"[0-2]", t) and t not in overdue_days], url
    assert db.session.scalars(select(AuditEntry.action).where(AuditEntry.action == "evaluation.print")).one()


def test_secondary_suppression_hides_a_second_cell_where_one_would_follow_from_the_total():
    table = cross_table(
        {("A", "Jan"): 2, ("A", "Feb"): 7, ("A", "Mär"): 9, ("B", "Jan"): 5, ("B", "Feb"): 6, ("B", "Mär"): 8},
        ["A", "B"],
        ["Jan", "Feb", "Mär"],
    )
    assert table["A", "Jan"] == "<3"
    assert table["A", "Feb"] == "x", "the smallest visible cell of the row"
    assert table["B", "Jan"] == "x", "and of the column"
    assert [table[k] for k in (("A", "Mär"), ("B", "Feb"), ("B", "Mär"))] == [9, 6, 8]
    # Hidden cells that together hold 1 or 2 would follow from the total: one more is hidden.
    pair = cross_table(
        {("A", "Jan"): 1, ("A", "Feb"): 0, ("A", "Mär"): 9, ("A", "Apr"): 12}, ["A"], ["Jan", "Feb", "Mär", "Apr"]
    )
    assert pair == {("A", "Jan"): "<3", ("A", "Feb"): "<3", ("A", "Mär"): "x", ("A", "Apr"): 12}
    # Hidden zeros give nothing away.
    assert cross_table({("A", "Jan"): 0, ("A", "Feb"): 5}, ["A"], ["Jan", "Feb"]) == {
        ("A", "Jan"): "<3",
        ("A", "Feb"): 5,
    }
    # One-way tables: a column whose total is shown elsewhere.
    assert column([40, 2, 30, 5]) == [40, "<3", 30, "x"]


def test_the_page_runs_the_same_number_of_queries_for_more_data(march, world, as_user):
    coordinator = as_user(world.coordinator)
    url = "/coordination/evaluation?period=free&first=2026-01-01&last=2026-12-31"
    with QueryCounter(db.engine) as few:
        coordinator.get(url)
    for day in range(16, 28):
        submitted(world.teacher, day, 9)
    factories.consultation_in(C.CANCELLED, world.teacher_b, now=at(20, 9))
    db.session.commit()
    with QueryCounter(db.engine) as many:
        coordinator.get(url)
    assert many.count == few.count


def test_charts_are_images_without_requests_and_tables_carry_the_numbers(march, world, as_user):
    html = as_user(world.coordinator).get(f"/coordination/evaluation?{MARCH}").text
    images = re.findall(r'<img class="img-fluid chart" src="(data:image/svg\+xml;base64,[^"]+)" alt="([^"]+)"', html)
    assert len(images) >= 4 and all(alt for _, alt in images)
    import base64

    for src, _ in images:
        svg = base64.b64decode(src.split(",", 1)[1]).decode()
        assert "<script" not in svg and not re.search(r'(?:href|src)="https?://', svg)


def test_each_chart_draws_exactly_the_numbers_its_table_shows(march, world, as_user):
    """Per chart: well-formed SVG named by its title, described by the page's alt text, and one bar or
    point for each number the table shows (none for "<3" or "x")."""
    import base64
    import html as html_module
    import xml.etree.ElementTree as ET

    from .test_charts import SVG, drawn

    for printing in ("", "/print"):
        page = as_user(world.coordinator).get(f"/coordination/evaluation{printing}?{MARCH}").text
        for key, shown in (
            ("kennzahlen", lambda cell: cell.endswith("%")),  # the shares; the other rows are not drawn
            ("monate", str.isdigit),
            ("kategorien", str.isdigit),
            ("einschaetzung", str.isdigit),
        ):
            if printing and key == "einschaetzung":  # the printout leaves this chart out, as before
                assert '<img class="img-fluid chart"' not in section(page, key)
                continue
            part = section(page, key)
            src, alt = re.search(
                r'<img class="img-fluid chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', part
            ).groups()
            svg = ET.fromstring(base64.b64decode(src))
            assert svg.get("role") == "img"
            assert svg.findtext(f"{SVG}desc") == html_module.unescape(alt)
            assert svg.findtext(f"{SVG}title")
            numbers = [cell for cell in re.findall(r'<td class="text-end">(.*?)</td>', part) if shown(cell)]
            assert len(drawn(svg)) == len(numbers), key


def test_a_change_after_a_view_shows_in_the_next_view(march, world, as_user):
    """The aggregates behind the page follow the workflow: the months a change touches are marked in
    the change's own transaction and recomputed before the next figures."""
    from referral.cases.models import Referral
    from referral.evaluation.models import EvaluationDirty

    coordinator = as_user(world.coordinator)
    assert (
        cells(section(coordinator.get(f"/coordination/evaluation?{MARCH}").text, "kennzahlen"), "Mitteilungen")[0]
        == "4"
    )
    assert db.session.scalars(select(EvaluationDirty.month)).all() == [], "the view took the marks"
    for day in (16, 17):
        submitted(world.teacher, day, 9)
    r4 = db.session.scalar(select(Referral).where(Referral.number == march["r4"]))
    services.acknowledge(r4, world.asd_hm, now=at(11, 12))  # within its deadline: now 3 of 6 in time
    db.session.commit()
    assert set(db.session.scalars(select(EvaluationDirty.month))) == {"2026-03"}
    key = section(coordinator.get(f"/coordination/evaluation?{MARCH}").text, "kennzahlen")
    assert cells(key, "Mitteilungen")[0] == "6"
    assert cells(key, "Eingang fristgerecht bestätigt")[0] == "50 %"


def test_a_rolled_back_change_leaves_no_mark(march, world):
    from referral.evaluation import aggregates
    from referral.evaluation.models import EvaluationDirty

    aggregates.refresh()
    db.session.commit()  # refresh() leaves the commit to its caller (request, CLI, worker)
    submitted(world.teacher, 18, 9)
    db.session.flush()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == ["2026-03"]
    db.session.rollback()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == []


def test_a_period_cutting_months_counts_the_cut_parts_live(march, world):
    from referral.evaluation import figures
    from referral.timeutil import utcnow

    # 5 to 20 March: R2 (6th, in time), R3 (10th, late), R4 (11th, overdue in HM); R1 (2nd) is outside.
    k = figures.key_figures(figures.Scope(at(5, 0), at(21, 0)), utcnow())
    assert (k.referrals, k.ack_in_time, k.ack_due, k.consultations) == (3, 1, 3, 0)
    assert (k.ack_n, k.ack_hours) == (2, (48.0, 66.0))
    # February 10 to March 3: February's referral and R1, across a month boundary, both parts cut.
    k = figures.key_figures(figures.Scope(at(10, 0, month=2), at(3, 0)), utcnow())
    assert (k.referrals, k.consultations, k.with_feedback, k.confirmed) == (2, 0, 1, 1)
    assert figures.per_month(figures.Scope(at(10, 0, month=2), at(4, 0))) == {"2026-02": (1, 0), "2026-03": (1, 1)}


def _all_figures(scope):
    from referral.evaluation import figures
    from referral.timeutil import utcnow

    return {
        name: getattr(figures, name)(scope)
        for name in (
            "per_month",
            "per_school",
            "per_district",
            "per_urgency",
            "consultations_per_urgency",
            "per_category",
            "school_by_month",
            "school_by_category",
            "assessment_results",
            "recommendations",
            "transfers",
        )
    } | {"key_figures": figures.key_figures(scope, utcnow())}


def test_cut_months_summed_from_days_equal_the_live_computation(march, world, as_user, monkeypatch):
    from referral.evaluation import aggregates, figures
    from referral.evaluation.models import EvaluationDayCount

    # Around the change to summer time (Sunday 29 March, 2:00): the last minutes of the 29th and the
    # first of the 30th, local time, fall on the same UTC day, so only a local day tells them apart.
    late = submitted(world.teacher_b, 29, 23, urgency=Urgency.CLARIFY)
    services.acknowledge(late, world.asd, now=at(30, 1))
    early = submitted(world.teacher_a2, 30, 0)
    services.acknowledge(early, world.asd, now=at(30, 9))
    db.session.commit()
    we, a = world.districts["we"].id, world.schools["a"].id
    scopes = [
        figures.Scope(at(5, 0), at(21, 0)),
        figures.Scope(at(10, 0, month=2), at(4, 0)),
        figures.Scope(at(30, 0), at(2, 0, month=4)),
        figures.Scope(at(29, 0), at(30, 0)),
        figures.Scope(at(6, 0), at(31, 0), district_ids=(we,)),
        figures.Scope(at(3, 0), at(31, 0), exclude_districts=(we,)),
        figures.Scope(at(2, 0), at(11, 0), school_id=a),
    ]
    url = f"/coordination/evaluation.csv?period=free&first=2026-02-10&last=2026-03-29&district={we}"
    from_days = [_all_figures(scope) for scope in scopes]
    csv_from_days = as_user(world.coordinator).get(url).data
    assert db.session.scalar(select(func.count()).select_from(EvaluationDayCount)) > 0
    # Hand-computed: 29 March has the late one only, 30 March the early one only.
    assert from_days[3]["key_figures"].referrals == 1 and from_days[3]["per_urgency"] == {"clarify": 1}
    assert from_days[2]["key_figures"].referrals == 1 and from_days[2]["key_figures"].ack_hours == (9.0, 9.0)
    monkeypatch.setattr(aggregates, "USE_DAY_ROWS", False)
    assert [_all_figures(scope) for scope in scopes] == from_days
    assert as_user(world.coordinator).get(url).data == csv_from_days


def test_the_overdue_list_follows_the_rule_at_any_time(march, world):
    from referral.cases.deadlines import overdue
    from referral.cases.models import Referral
    from referral.evaluation import figures

    everything = figures.Scope(at(1, 0, month=1), at(1, 0, month=12))
    for now in (at(5, 0), at(10, 12), at(20, 9), at(1, 9, month=5)):
        rule = overdue(now)
        expected = sorted(
            (r for r in db.session.scalars(select(Referral)) if rule.applies(r)),
            key=lambda r: ((r.acknowledge_due_at if r.state.value == "submitted" else r.feedback_due_at), r.id),
        )
        total, rows = figures.overdue_now(everything, now)
        assert total == len(expected) and [number for number, _, _ in rows] == [r.number for r in expected]
    assert total >= 2, "the last moment sees both overdue deadlines"


def test_bulk_statements_and_the_command_recompute_everything(march, world, runner):
    from sqlalchemy import update

    from referral.cases.models import Referral
    from referral.evaluation import figures
    from referral.evaluation.models import ALL, EvaluationDirty
    from referral.timeutil import utcnow

    march_scope = figures.Scope(at(1, 0), at(1, 0, month=4))
    assert figures.key_figures(march_scope, utcnow()).informed == 3
    db.session.execute(update(Referral).where(Referral.number == march["r1"]).values(affected_informed=None))
    db.session.commit()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == [ALL], "a statement names no month"
    result = runner.invoke(args=["evaluation", "refresh"])
    assert result.exit_code == 0 and "1 Änderungsvermerke" in result.output, result.output
    assert db.session.scalars(select(EvaluationDirty.month)).all() == []
    assert figures.key_figures(march_scope, utcnow()).informed == 2
    result = runner.invoke(args=["evaluation", "refresh", "--all"])
    assert result.exit_code == 0 and figures.key_figures(march_scope, utcnow()).informed == 2


def test_a_bulk_change_of_names_and_texts_only_marks_no_month(march, world):
    from sqlalchemy import update

    from referral.cases.models import Referral, SchoolAction
    from referral.evaluation import aggregates
    from referral.evaluation.models import ALL, EvaluationDirty

    aggregates.refresh()
    db.session.commit()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == []
    # As the retention run purges: names, free texts (encrypted) and contacts, plus the version.
    db.session.execute(
        update(Referral)
        .where(Referral.number == march["r1"])
        .values(child_first_name="", observation="", child_class="", purged_at=at(20, 9), version=Referral.version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(update(SchoolAction).where(SchoolAction.referral_id > 0).values(reason="", detail=""))
    db.session.commit()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == []
    # A counted column among them: everything is recomputed.
    db.session.execute(
        update(Referral).where(Referral.number == march["r1"]).values(child_first_name="", urgency=Urgency.CLARIFY)
    )
    db.session.commit()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == [ALL]


def test_only_the_coordinator_sees_the_evaluation(world, as_user):
    for key in ("teacher", "school_lead", "asd", "asd_lead", "insofa", "admin"):
        for url in ("/coordination/evaluation", "/coordination/evaluation.csv", "/coordination/evaluation/print"):
            assert as_user(world.users[key]).get(url).status_code == 403, (key, url)


def test_the_district_overview_shows_the_leads_own_district(march, world, as_user):
    html = as_user(world.asd_lead).get("/district-overview").text
    assert "Bezirksübersicht Wanne-Eickel" in html
    # Open in WE: R2 acknowledged, February's referral not yet (both with feedback overdue); R4 went to HM.
    we = world.districts["we"].id
    assert cells(html, f'<a href="/inbox?state=acknowledged&amp;district={we}">Eingang bestätigt</a>') == ["1"]
    assert cells(html, f'<a href="/inbox?state=submitted&amp;district={we}">Eingereicht</a>') == ["1"]
    assert re.search(r"Frist überschritten \(Eingang oder Rückmeldung\)</h2>\s*<p class=\"display-6 mb-1\">2</p>", html)
    assert cells(html, f'<a href="/inbox?state=open&amp;assignee={world.asd.id}&amp;district={we}">Anna ASD</a>') == [
        "0"
    ]
    assert cells(html, "noch niemandem zugewiesen (eingereicht oder bestätigt)") == ["2"]
    hm = as_user(world.asd_lead_hm).get("/district-overview").text
    assert re.search(r"Eingangsbestätigung überfällig</h2>\s*<p class=\"display-6 mb-1\">1</p>", hm)
    assert "Älteste unbestätigte Mitteilung" in hm and "eingegangen 11.03.2026" in hm
    assert as_user(world.asd).get("/district-overview").status_code == 403


def test_the_inbox_filters_by_a_colleague_of_the_own_district_only(march, world, as_user):
    asd_lead = as_user(world.asd_lead)
    page = asd_lead.get(f"/inbox?state=all&assignee={world.asd.id}").text
    assert "Nur Fälle von <strong>Anna ASD</strong>" in page
    foreign = asd_lead.get(f"/inbox?state=all&assignee={world.asd_hm.id}").text
    assert "Mira HM" not in foreign and "Nur Fälle von" not in foreign


def test_generated_data_covers_every_state_and_feeds_the_evaluation(app, runner, world, as_user):
    from sqlalchemy import func

    from referral.cases.models import Referral, StateChange
    from referral.cases.process import Action, State
    from referral.consultations.models import Consultation

    result = runner.invoke(args=["demo", "generate", "--referrals", "400", "--districts", "3", "--schools", "2"])
    assert result.exit_code == 0, result.output
    assert "400 referrals" in result.output and "100 consultations" in result.output
    assert set(db.session.scalars(select(Referral.state).distinct())) == set(State) - {State.DRAFT}
    assert (
        db.session.scalar(select(func.count()).select_from(StateChange).where(StateChange.action == Action.TRANSFER))
        > 0
    )
    assert db.session.scalar(select(func.count(func.distinct(Referral.number)))) == 400
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Referral)
            .where(Referral.acknowledged_at.is_not(None), Referral.ack_working_minutes.is_(None))
        )
        == 0
    )
    assert set(db.session.scalars(select(Consultation.state).distinct())) == set(C)
    page = as_user(world.coordinator).get("/coordination/evaluation?period=free&first=2023-01-01&last=2026-12-31")
    assert page.status_code == 200
    assert int(cells(section(page.text, "kennzahlen"), "Mitteilungen")[0]) == 400
    # A second run adds another city part beside the first (new district codes).
    assert runner.invoke(args=["demo", "generate", "--referrals", "10", "--districts", "1"]).exit_code == 0


def test_generating_is_refused_in_production(app, runner):
    app.config["REFERRAL_PRODUCTION"] = True
    result = runner.invoke(args=["demo", "generate", "--referrals", "10"])
    assert result.exit_code != 0 and "never loaded in production" in result.output


def test_the_worker_round_recomputes_the_dirty_months(march, world):
    """A bulk change marks "everything"; the worker's frequent step recomputes it and commits, so no page
    view has to (at a state's scale a full recompute takes minutes)."""
    from referral.evaluation import aggregates
    from referral.evaluation.models import EvaluationDirty
    from referral.jobs import schedule

    aggregates.refresh_everything()
    db.session.commit()
    aggregates.mark(db.session, [aggregates.ALL])
    db.session.commit()
    assert db.session.scalars(select(EvaluationDirty.month)).all() == [aggregates.ALL]
    assert schedule.refresh_evaluation() == 1
    db.session.rollback()  # what the worker committed stays
    assert db.session.scalars(select(EvaluationDirty.month)).all() == []


def test_figures_from_running_totals_equal_the_monthly_sums(march, world, monkeypatch):
    from referral.evaluation import aggregates, figures
    from referral.evaluation.models import EvaluationRunning

    # More months: January, a gap in April, May; acknowledged at different speeds.
    for month, day, hours in ((1, 13, 5), (1, 20, 30), (5, 4, 2), (5, 6, 70), (5, 12, 11)):
        referral = submitted(world.teacher_b, day, 9, month=month)
        services.acknowledge(referral, world.asd, now=at(day, 9, month) + timedelta(hours=hours))
    db.session.commit()
    we = world.districts["we"].id

    def scopes():
        return [
            figures.Scope(at(1, 0, month=1), at(1, 0, month=6)),  # all months with data
            figures.Scope(at(1, 0, month=2), at(1, 0, month=6)),  # from after the first month
            figures.Scope(at(1, 0, month=4), at(1, 0, month=5)),  # the empty April only
            figures.Scope(at(1, 0, month=3), at(1, 0, month=12)),  # beyond the data
            figures.Scope(at(1, 0, month=1), at(1, 0, month=6), district_ids=(we,)),
            figures.Scope(at(1, 0, month=2), at(1, 0, month=6), exclude_districts=(we,)),
            figures.Scope(at(16, 0, month=1), at(1, 0, month=6)),  # January cut: its days, then running
            figures.Scope(at(1, 0, month=1), at(1, 0, month=6), school_id=world.schools["b"].id),
        ]

    def durations():
        return [figures._percentiles(scope) for scope in scopes()]

    def everything():
        return [_all_figures(scope) for scope in scopes()]

    running, all_running = durations(), everything()
    assert db.session.scalar(select(func.count()).select_from(EvaluationRunning)) > 0
    assert running[0]["ack"][0] == 8  # R1–R3 (R4 and February's are unacknowledged) and the five above
    assert running[2]["ack"] == (0, (None, None))
    monkeypatch.setattr(aggregates, "USE_RUNNING", False)
    assert durations() == running
    assert everything() == all_running

    # A change in a middle month recomputes the running rows from there on, carrying February's over.
    monkeypatch.setattr(aggregates, "USE_RUNNING", True)
    late = submitted(world.teacher_b, 27, 9, month=3)
    services.acknowledge(late, world.asd, now=at(27, 9, 3) + timedelta(hours=300))
    db.session.commit()
    changed = durations()
    assert changed[0]["ack"][0] == 9 and changed[1]["ack"][0] == 7 and changed[2] == running[2]
    all_changed = everything()
    monkeypatch.setattr(aggregates, "USE_RUNNING", False)
    assert durations() == changed
    assert everything() == all_changed
