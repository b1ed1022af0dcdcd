"""The evaluation's few bar and line charts, drawn here as SVG and embedded as images (data: URLs):
no script, no third-party request, no chart library (pygal pulled a tail of packages nobody vouches
for into a system holding child-protection data). Each chart repeats numbers that the page also
shows in a table; opened on its own, it names itself (role="img", <title>, <desc>) and each bar or
point carries its value as a tooltip.

Every text goes through markupsafe (Markup.format escapes its arguments), so a label such as a
school's name can never break out of the SVG."""

from __future__ import annotations

import base64
import hashlib
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup

Number = int | float
Series = Mapping[str, Sequence[Number | None]]  # name → one value per label; None: not shown

WIDTH = 800
# The app's colours: text at least 4.5:1 on white, bars and lines at least 3:1 (as with pygal before).
COLOURS = ("#0b5394", "#b45f06", "#38761d", "#741b47")
# Lines are told apart by their dashes too, not by colour alone.
DASHES = ("", "8 4", "2 3", "8 3 2 3")
TEXT = "#212529"
SUBTLE = "#595959"
GRID = "#c6c6c6"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
# No font metrics on the server: an average character of the 13 px labels is taken as 7.4 px wide
# (generous, so that labels rather end short of the plot than run into it).
CHAR = 7.4
TITLE_HEIGHT = 48
BAR = 16
BAR_GAP = 2
GROUP_GAP = 14
LINE_HEIGHT = 16
LABEL_CHARS = 30  # bar labels wrap at this many characters
LEGEND_ROW = 24


def line(title: str, labels: list[str], series: Series, description: str) -> str:
    """One line per series over the labels (months); a missing value (None) interrupts its line."""
    height = 360.0
    key = _chart_id(title, labels, series)
    bottom = height - _legend_height(list(series)) - 2 * LINE_HEIGHT - 18  # two-line labels under the axis
    ticks = _ticks(max([v for values in series.values() for v in values if v is not None], default=0))
    left = 16 + CHAR * max(len(_number(t)) for t in ticks) + 8
    right = WIDTH - 24
    parts = [_title_and_description(key, title, description)]
    if not labels:
        parts.append(_no_data(height))
        return _as_image(_svg(key, height, parts))

    def y(value: Number) -> float:
        return bottom - (bottom - TITLE_HEIGHT) * value / ticks[-1]

    step = (right - left) / len(labels)
    xs = [left + step * (i + 0.5) for i in range(len(labels))]
    shown = [_two_lines(label, step) for label in labels]
    widest = max(len(line) for lines in shown for line in lines)
    every = max(1, math.ceil(CHAR * widest / max(1.0, step - 6)))  # labels under the axis must not touch
    axis = [_y_grid(ticks, left, right, y)]
    for i, (x, lines) in enumerate(zip(xs, shown, strict=True)):
        if i % every == 0:
            axis.append(_text_lines(x, bottom + 18, lines, anchor="middle"))
    axis.append(Markup('<path d="M{} {}V{}" stroke="{}"/>').format(_f(left), _f(TITLE_HEIGHT), _f(bottom), TEXT))
    parts.append(Markup('<g aria-hidden="true">{}</g>').format(Markup("").join(axis)))

    for n, (name, values) in enumerate(series.items()):
        colour, dash = COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)]
        shapes = []
        for run in _runs(values):
            if len(run) > 1:
                points = " ".join(f"{_f(xs[i])},{_f(y(v))}" for i, v in run)
                shapes.append(
                    Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>').format(
                        points, colour, _dash(dash)
                    )
                )
        for i, value in enumerate(values):
            if value is not None:
                shapes.append(
                    Markup('<circle class="point" cx="{}" cy="{}" r="4" fill="{}"><title>{}</title></circle>').format(
                        _f(xs[i]), _f(y(value)), colour, f"{name}, {labels[i]}: {_number(value)}"
                    )
                )
        parts.append(Markup('<g class="series">{}</g>').format(Markup("").join(shapes)))
    parts.append(_legend(list(series), bottom + 2 * LINE_HEIGHT + 18, lines=True))
    return _as_image(_svg(key, height, parts))


def bars(
    title: str,
    labels: list[str],
    series: Series,
    description: str,
    percent: bool = False,
) -> str:
    """Horizontal bars, one group per label in the order of the table, one bar per series; a missing
    value (None: too few cases to show) has no bar. Each bar ends with its value."""
    wrapped = [textwrap.wrap(label, LABEL_CHARS) or [""] for label in labels]
    group = max(1, len(series)) * (BAR + BAR_GAP) - BAR_GAP
    group_heights = [max(group, len(lines) * LINE_HEIGHT) for lines in wrapped]
    bottom = TITLE_HEIGHT + sum(h + GROUP_GAP for h in group_heights)
    height = bottom + 30 + _legend_height(list(series))
    key = _chart_id(title, labels, series)
    parts = [_title_and_description(key, title, description)]
    if not labels:
        height = max(height, 240)
        parts.append(_no_data(height))
        return _as_image(_svg(key, height, parts))

    longest = max(len(line) for lines in wrapped for line in lines)
    left = 16 + min(CHAR * longest, CHAR * LABEL_CHARS) + 10
    right = WIDTH - 64  # room for the value after the longest bar
    top = 100 if percent else max([v for values in series.values() for v in values if v is not None], default=0)
    ticks = _ticks(top)

    def x(value: Number) -> float:
        return left + (right - left) * value / ticks[-1]

    axis = [_x_grid(ticks, x, TITLE_HEIGHT, bottom, percent)]
    shapes = []
    y = TITLE_HEIGHT + GROUP_GAP / 2
    for i, (label, lines) in enumerate(zip(labels, wrapped, strict=True)):
        middle = y + group_heights[i] / 2
        first_line = middle - (len(lines) - 1) * LINE_HEIGHT / 2 + 4.5
        axis.append(_text_lines(left - 10, first_line, lines, anchor="end"))
        bar_y = middle - group / 2
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if value is not None:
                shown = _number(value) + (" %" if percent else "")
                end = x(value)
                shapes.append(
                    Markup(
                        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
                        '<text x="{}" y="{}" font-size="12" fill="{}" aria-hidden="true">{}</text>'
                    ).format(
                        _f(left),
                        _f(bar_y),
                        _f(end - left),
                        BAR,
                        COLOURS[n % len(COLOURS)],
                        f"{name}, {label}: {shown}",
                        _f(end + 4),
                        _f(bar_y + BAR / 2 + 4),
                        TEXT,
                        shown,
                    )
                )
            bar_y += BAR + BAR_GAP
        y += group_heights[i] + GROUP_GAP
    parts.append(Markup('<g aria-hidden="true">{}</g>').format(Markup("").join(axis)))
    parts.append(Markup('<g class="series">{}</g>').format(Markup("").join(shapes)))
    parts.append(_legend(list(series), bottom + 30, lines=False))
    return _as_image(_svg(key, height, parts))


def _ticks(top: Number) -> list[Number]:
    """0 up to a round number at or above the largest value, in 4 to 8 steps of 1, 2 or 5 × 10ⁿ."""
    for exponent in range(12):
        for factor in (1, 2, 5):
            step = factor * 10**exponent
            if math.ceil(top / step) <= 8:
                return [i * step for i in range(max(4, math.ceil(top / step)) + 1)]
    raise ValueError(f"no scale for {top}")


def _runs(values: Sequence[Number | None]) -> list[list[tuple[int, Number]]]:
    """The stretches without a missing value: (index, value) pairs."""
    runs: list[list[tuple[int, Number]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((i, value))
    return [run for run in runs if run]


def _chart_id(title: str, labels: list[str], series: Series) -> str:
    """An id unique per chart (the same data gives the same chart), should the SVG ever be inlined."""
    return "chart-" + hashlib.sha256(repr((title, labels, series)).encode()).hexdigest()[:10]


def _title_and_description(key: str, title: str, description: str) -> Markup:
    return Markup(
        '<title id="{key}-title">{}</title><desc id="{key}-desc">{}</desc>'
        '<rect width="100%" height="100%" fill="white"/>'
        '<text x="{}" y="28" font-size="16" text-anchor="middle" fill="{}" aria-hidden="true">{}</text>'
    ).format(title, description, _f(WIDTH / 2), TEXT, title, key=key)


def _svg(key: str, height: float, parts: list[Markup]) -> str:
    return str(
        Markup(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{key}-title" '
            'aria-describedby="{key}-desc" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            'font-family="{font}" font-size="13">{body}</svg>\n'
        ).format(key=key, w=WIDTH, h=_f(height), font=FONT, body=Markup("").join(parts))
    )


def _as_image(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _legend_rows(names: list[str]) -> list[list[tuple[str, float]]]:
    """The series' names with their x position, in as many rows as the width needs."""
    rows: list[list[tuple[str, float]]] = [[]]
    used = 16.0
    for name in names:
        width = 30 + CHAR * len(name) + 24
        if rows[-1] and used + width > WIDTH - 16:
            rows.append([])
            used = 16.0
        rows[-1].append((name, used))
        used += width
    return rows


def _legend_height(names: list[str]) -> float:
    return LEGEND_ROW * len(_legend_rows(names)) + 8


def _legend(names: list[str], top: float, lines: bool) -> Markup:
    """The series' names with their colour (and dash) at the foot of the chart."""
    entries = []
    n = 0
    for r, row in enumerate(_legend_rows(names)):
        y = top + r * LEGEND_ROW
        for name, x in row:
            colour = COLOURS[n % len(COLOURS)]
            if lines:
                swatch = Markup(
                    '<path d="M{} {}h22" stroke="{}" stroke-width="2"{}/><circle cx="{}" cy="{}" r="4" fill="{}"/>'
                ).format(_f(x), _f(y + 6), colour, _dash(DASHES[n % len(DASHES)]), _f(x + 11), _f(y + 6), colour)
            else:
                swatch = Markup('<rect x="{}" y="{}" width="22" height="12" fill="{}"/>').format(_f(x), _f(y), colour)
            entries.append(
                Markup('{}<text x="{}" y="{}" fill="{}">{}</text>').format(swatch, _f(x + 30), _f(y + 11), TEXT, name)
            )
            n += 1
    return Markup('<g class="legend" aria-hidden="true">{}</g>').format(Markup("").join(entries))


def _y_grid(ticks: list[Number], left: float, right: float, y: Callable[[Number], float]) -> Markup:
    return Markup("").join(
        Markup('<path d="M{} {}H{}" stroke="{}"{}/><text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>').format(
            _f(left),
            _f(y(t)),
            _f(right),
            TEXT if t == 0 else GRID,
            "" if t == 0 else Markup(' stroke-dasharray="4 3"'),
            _f(left - 8),
            _f(y(t) + 4.5),
            SUBTLE,
            _number(t),
        )
        for t in ticks
    )


def _x_grid(ticks: list[Number], x: Callable[[Number], float], top: float, bottom: float, percent: bool) -> Markup:
    return Markup("").join(
        Markup(
            '<path d="M{} {}V{}" stroke="{}"{}/><text x="{}" y="{}" text-anchor="middle" fill="{}">{}</text>'
        ).format(
            _f(x(t)),
            _f(top),
            _f(bottom),
            TEXT if t == 0 else GRID,
            "" if t == 0 else Markup(' stroke-dasharray="4 3"'),
            _f(x(t)),
            _f(bottom + 18),
            SUBTLE,
            _number(t) + (" %" if percent else ""),
        )
        for t in ticks
    )


def _text_lines(x: float, y: float, lines: list[str], anchor: str) -> Markup:
    spans = Markup("").join(
        Markup('<tspan x="{}" dy="{}">{}</tspan>').format(_f(x), 0 if i == 0 else LINE_HEIGHT, line)
        for i, line in enumerate(lines)
    )
    return Markup('<text x="{}" y="{}" text-anchor="{}" fill="{}">{}</text>').format(_f(x), _f(y), anchor, TEXT, spans)


def _two_lines(label: str, room: float) -> list[str]:
    """'August 2026' → ['August', '2026'], or ['Aug.', '2026'] where the full name has no room: month
    labels side by side would run into each other (the table and the tooltips have them in full)."""
    head, _, tail = label.rpartition(" ")
    if not head:
        return [label]
    if CHAR * len(head) > room - 6 and len(head) > 4:
        head = head[:3] + "."
    return [head, tail]


def _no_data(height: float) -> Markup:
    return Markup('<text x="{}" y="{}" text-anchor="middle" fill="{}">Keine Daten</text>').format(
        _f(WIDTH / 2), _f(height / 2), SUBTLE
    )


def _dash(pattern: str) -> Markup:
    return Markup(' stroke-dasharray="{}"').format(pattern) if pattern else Markup("")


def _number(value: Number) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}".replace(".", ",")


def _f(value: float) -> str:
    """Coordinates with one decimal at most: exact enough, and short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
