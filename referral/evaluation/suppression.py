"""Small numbers are not shown (PROCESS.md, *Evaluation*): no child may be singled out.

A count below 3 is shown as "<3" wherever it describes few children: every count cell of the
evaluation, on the page and in the export. In a cross table (school × month, school × category) a
single "<3" in a row or column could be worked out from the row's or column's total, which the page
also shows; so each row and column with exactly one hidden cell hides its next-smallest cell as well
(secondary suppression). Shares and times are shown only when they rest on at least 3 referrals.
"""
from __future__ import annotations

MIN_COUNT = 3
HIDDEN = "<3"


def count(n: int | None) -> int | str:
    n = n or 0
    return HIDDEN if n < MIN_COUNT else n


def share(part: int, whole: int) -> str:
    """A percentage, or a dash with the reason when the whole is too small to show."""
    if whole < MIN_COUNT:
        return "– (<3 Fälle)"
    return f"{100 * part / whole:.0f} %".replace(".", ",")


def value(v, n: int, unit: str) -> str:
    if v is None or n < MIN_COUNT:
        return "– (<3 Fälle)"
    return f"{v:.1f}".replace(".", ",") + f" {unit}"


def cross_table(cells: dict[tuple[str, str], int], rows: list[str], columns: list[str]) -> dict[tuple[str, str], int | str]:
    """Every cell of rows × columns, small ones hidden, with secondary suppression."""
    values = {(r, c): cells.get((r, c), 0) for r in rows for c in columns}
    hidden = {key for key, n in values.items() if n < MIN_COUNT}
    changed = True
    while changed:
        changed = False
        for line in [[(r, c) for c in columns] for r in rows] + [[(r, c) for r in rows] for c in columns]:
            in_line = [key for key in line if key in hidden]
            # One hidden zero gives nothing away; one hidden 1 or 2 would follow from the total.
            if len(in_line) == 1 and values[in_line[0]] > 0:
                visible = sorted((values[key], key) for key in line if key not in hidden)
                if visible:
                    hidden.add(visible[0][1])
                    changed = True
    return {key: (HIDDEN if key in hidden and values[key] < MIN_COUNT else "x" if key in hidden else n)
            for key, n in values.items()}
