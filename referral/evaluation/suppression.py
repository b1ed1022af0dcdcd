"""Small numbers are not shown (PROCESS.md, *Evaluation*): no child may be singled out.

- A count below 3 is shown as "<3", on the page, in the print view and in the CSV.
- Where a table's total is known (a column of a one-way table adds up to a figure shown elsewhere,
  a cross table's rows and columns to the one-way tables), hidden cells could be worked out from
  it. So in every such line the hidden cells must together hold 0 or at least 3: otherwise the
  smallest visible cell is hidden as well, shown as "x" (secondary suppression).
- A share is shown only when neither the part nor the rest is 1 or 2 (else "3 of 5" or "all but 1"
  would follow from it); times (median, 90th percentile) only from 10 cases on, below that the
  percentile is one particular child's case.
"""

from __future__ import annotations

MIN_COUNT = 3
MIN_FOR_TIMES = 10
HIDDEN = "<3"
SECONDARY = "x"
TOO_FEW = "– (zu wenige Fälle)"


def count(n: int | None) -> int | str:
    n = n or 0
    return HIDDEN if n < MIN_COUNT else n


def share(part: int, whole: int) -> str:
    if whole < MIN_COUNT or part in (1, 2) or whole - part in (1, 2):
        return TOO_FEW
    return f"{100 * part / whole:.0f} %"


def value(v, n: int, unit: str) -> str:
    if v is None or n < MIN_FOR_TIMES:
        return TOO_FEW
    return f"{v:.1f}".replace(".", ",") + f" {unit}"


def _protect(values: dict, lines: list[list]) -> set:
    """The keys to hide: small ones, then more until no line's hidden cells sum to 1 or 2."""
    hidden = {key for key, n in values.items() if n < MIN_COUNT}
    changed = True
    while changed:
        changed = False
        for line in lines:
            if 0 < sum(values[k] for k in line if k in hidden) < MIN_COUNT:
                visible = sorted((values[k], k) for k in line if k not in hidden)
                if visible:
                    hidden.add(visible[0][1])
                    changed = True
    return hidden


def _shown(values: dict, hidden: set) -> dict:
    return {k: (HIDDEN if values[k] < MIN_COUNT else SECONDARY) if k in hidden else n for k, n in values.items()}


def column(numbers: list[int]) -> list[int | str]:
    """A column whose total is shown elsewhere (per district, per school, per category …)."""
    values = dict(enumerate(numbers))
    return [v for _, v in sorted(_shown(values, _protect(values, [list(values)])).items())]


def cross_table(
    cells: dict[tuple[str, str], int], rows: list[str], columns: list[str]
) -> dict[tuple[str, str], int | str]:
    """Every cell of rows × columns, protected along rows and columns."""
    values = {(r, c): cells.get((r, c), 0) for r in rows for c in columns}
    lines = [[(r, c) for c in columns] for r in rows] + [[(r, c) for r in rows] for c in columns]
    return _shown(values, _protect(values, lines))
