"""The survey results in the evaluation (page, print view, CSV): per question set and question the
number of answers, the mean and the distribution 1–5, in total, by quarter, model district against the
others, school against ASD (quarterly survey), and before/after each published guide version.

One GROUP BY query over the answers of the quarters that touch the period; the groups are then
combined from those counts. A group with fewer than MIN_GROUP answers to a question shows "zu wenige
Antworten" – and so does a second group of the same split, where the small one would otherwise follow
from the total shown above it. Under a district filter, a group is also hidden where the other
districts' part of it is small: the same group without the filter minus the filtered one would
show it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from ..extensions import db
from ..surveys import guide
from ..surveys.models import SurveyAnswer
from ..surveys.questions import SCALE, SETS, QuestionSet, RoleKind, SetKey
from ..surveys.services import MIN_GROUP, quarter_label
from ..timeutil import to_local
from . import figures
from .report import Table

TOO_FEW = "zu wenige Antworten"
# (quarter, district, role kind, guide version) of a group of answers
Key = tuple[str, int, str, int | None]
Counts = list[list[int]]  # per question: the number of answers 1 … 5


def quarters_in(start: datetime, end: datetime) -> list[str]:
    """The quarters (local time) that overlap [start, end)."""
    first, last = to_local(start), to_local(end - timedelta(seconds=1))
    found = []
    year, quarter = first.year, (first.month - 1) // 3
    while (year, quarter) <= (last.year, (last.month - 1) // 3):
        found.append(f"{year}-Q{quarter + 1}")
        year, quarter = (year + 1, 0) if quarter == 3 else (year, quarter + 1)
    return found


def _counts(quarters: list[str]) -> dict[tuple, dict[Key, Counts]]:
    """(set key, version) → group key → counts per question and value, from one GROUP BY query. All
    districts, also under a district filter: their sizes decide what the filtered view may show."""
    A = SurveyAnswer
    cells = [func.sum(case((getattr(A, f"a{i}") == value, 1), else_=0)) for i in range(1, 6) for value, _ in SCALE]
    statement = (
        select(A.question_set, A.set_version, A.quarter, A.district_id, A.role_kind, A.guide_version, *cells)
        .where(A.quarter.in_(quarters))
        .group_by(A.question_set, A.set_version, A.quarter, A.district_id, A.role_kind, A.guide_version)
    )
    found: dict[tuple, dict[Key, Counts]] = defaultdict(dict)
    for row in db.session.execute(statement):
        numbers = [int(n or 0) for n in row[6:]]
        found[row[0], row[1]][row[2], row[3], row[4], row[5]] = [numbers[5 * q : 5 * q + 5] for q in range(5)]
    return found


def _sum(groups: dict[Key, Counts], belongs: Callable[[Key], bool]) -> Counts:
    total = [[0] * 5 for _ in range(5)]
    for key, counts in groups.items():
        if belongs(key):
            for q in range(5):
                for v in range(5):
                    total[q][v] += counts[q][v]
    return total


def _hidden(sizes: list[int], forced: frozenset[int] = frozenset()) -> set[int]:
    """The groups of a split not to show: below MIN_GROUP (and `forced`), then more until the hidden
    ones together are none or at least MIN_GROUP (else they would follow from the total)."""
    hidden = {i for i, n in enumerate(sizes) if n < MIN_GROUP} | set(forced)
    while 0 < sum(sizes[i] for i in hidden) < MIN_GROUP:
        visible = sorted((sizes[i], i) for i in range(len(sizes)) if i not in hidden)
        if not visible:
            break
        hidden.add(visible[0][1])
    return hidden


def _gives_away_a_district(
    groups: dict[Key, Counts], belongs: Callable[[Key], bool], question: int, chosen: tuple[int, ...]
) -> bool:
    """Under a district filter: would this group, shown for the chosen districts, let a small group of
    the other districts be worked out from the same group shown without the filter? The group is split
    by district as the whole city's answers are; if a chosen district is hidden there, so is the row."""
    sizes: dict[int, int] = defaultdict(int)
    for key, counts in groups.items():
        if belongs(key):
            sizes[key[1]] += sum(counts[question])
    districts = sorted(sizes)
    hidden = _hidden([sizes[d] for d in districts])
    return any(districts[i] in chosen for i in hidden)


def _row(label: str, counts: list[int], hide: bool) -> list:
    n = sum(counts)
    if hide or n < MIN_GROUP:
        return [label, TOO_FEW, "–", "–", "–", "–", "–", "–"]
    mean = sum(value * c for (value, _), c in zip(SCALE, counts, strict=True)) / n
    return [label, n, f"{mean:.1f}".replace(".", ","), *counts]


def _splits(
    questions: QuestionSet, groups: dict[Key, Counts], scope: figures.Scope, model_ids: tuple[int, ...]
) -> list[list[tuple[str, Callable[[Key], bool]]]]:
    """The splits of the answers, each a list of (group label, membership); each adds up to the total."""
    splits: list[list[tuple[str, Callable[[Key], bool]]]] = [[("Gesamt", lambda k: True)]]
    quarters = sorted({k[0] for k in groups if scope.district_ids is None or k[1] in scope.district_ids})
    splits.append([(quarter_label(q), lambda k, q=q: k[0] == q) for q in quarters])
    if model_ids and scope.district_ids is None:
        splits.append(
            [("Modellbezirk", lambda k: k[1] in model_ids), ("übrige Bezirke", lambda k: k[1] not in model_ids)]
        )
    if questions.key is SetKey.QUARTER:
        splits.append([(kind.label, lambda k, kind=kind: k[2] == kind.value) for kind in RoleKind])
    for number, published_at, _ in guide.published_versions():
        splits.append(
            [
                (f"vor Leitfaden-Version {number}", lambda k, n=number: k[3] is None or k[3] < n),
                (
                    f"ab Leitfaden-Version {number} ({to_local(published_at):%d.%m.%Y})",
                    lambda k, n=number: k[3] is not None and k[3] >= n,
                ),
            ]
        )
    return splits


WHO = {
    SetKey.FEEDBACK: "Befragt: wer die Mitteilung verfasst hat, und die Schulleitung, nach der Rückmeldung des ASD.",
    SetKey.CLOSING: "Befragt: die zuständige ASD-Fachkraft, nachdem die Mitteilung abgeschlossen wurde.",
    SetKey.QUARTER: "Befragt: alle Schul- und ASD-Konten der Bezirke, für die die Koordination die Quartalsumfrage "
    "geöffnet hat.",
}


def tables(scope: figures.Scope, model_ids: tuple[int, ...]) -> list[Table]:
    """The survey tables for the evaluation; none for one school (answers know only the district)."""
    if scope.school_id is not None:
        return []
    quarters = quarters_in(scope.start, scope.end)
    counts = _counts(quarters)
    chosen = scope.district_ids
    touched = ", ".join(quarter_label(q) for q in quarters)
    several = {s.key for s in SETS if sum(1 for o in SETS if o.key == s.key) > 1}
    found = []
    for questions in SETS:
        groups = counts.get((questions.key.value, questions.version), {})
        table = Table(
            f"umfrage_{questions.key.value}_{questions.version}",
            f"Umfrage: {questions.title}" + (f" (Fassung {questions.version})" if questions.key in several else ""),
            f"{WHO[questions.key]} Quartale, die den Zeitraum berühren ({touched}). "
            "Skala 1 (trifft gar nicht zu) bis 5 (trifft voll zu); „Antworten“ ohne „keine Angabe“; 1–5: Anzahl "
            f"der Antworten je Stufe. Gruppen mit weniger als {MIN_GROUP} Antworten: „{TOO_FEW}“ – ebenso eine "
            "weitere Gruppe derselben Aufteilung, wenn sich die kleine sonst aus der Summe ergäbe.",
            ["Gruppe: Frage", "Antworten", "Mittelwert", "1", "2", "3", "4", "5"],
        )
        if any(chosen is None or k[1] in chosen for k in groups):
            for split in _splits(questions, groups, scope, model_ids):
                sums = [
                    _sum(groups, lambda k, belongs=belongs: (chosen is None or k[1] in chosen) and belongs(k))
                    for _, belongs in split
                ]
                for q, text in enumerate(questions.questions):
                    forced = frozenset(
                        g
                        for g, (_, belongs) in enumerate(split)
                        if chosen is not None and _gives_away_a_district(groups, belongs, q, chosen)
                    )
                    hidden = _hidden([sum(s[q]) for s in sums], forced)
                    table.rows += [
                        _row(f"{label}: {text}", sums[g][q], g in hidden) for g, (label, _) in enumerate(split)
                    ]
        found.append(table)
    return found
