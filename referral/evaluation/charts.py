"""Charts drawn on the server by pygal as SVG and embedded as images (data: URLs): no script, no
third-party request. Each chart repeats numbers that the page also shows in a table."""

from __future__ import annotations

import base64
import re

import pygal
from pygal.style import Style

# The app's colours; text and lines with at least 4.5:1 contrast on white.
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#595959",
    colors=("#0b5394", "#b45f06", "#38761d", "#741b47"),
    font_family="system-ui, sans-serif",
    title_font_size=16,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=12,
)
COMMON = dict(
    style=STYLE,
    js=[],
    disable_xml_declaration=False,
    width=800,
    height=360,
    show_legend=True,
    legend_at_bottom=True,
    print_values=False,
    no_data_text="Keine Daten",
    truncate_label=-1,
    truncate_legend=-1,
    x_label_rotation=0,
    include_x_axis=True,
    min_scale=4,
    max_scale=8,
)


def _as_image(chart) -> str:
    # pygal adds a configuration script even without its JavaScript; an image never runs it, but
    # nothing executable belongs in the page.
    svg = re.sub(rb"<script.*?</script>", b"", chart.render(), flags=re.S)
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def line(title: str, labels: list[str], series: dict[str, list[int | None]]) -> str:
    chart = pygal.Line(
        title=title,
        x_labels=labels,
        allow_interruptions=True,
        show_minor_x_labels=len(labels) <= 12,
        x_labels_major_every=max(1, len(labels) // 12),
        **COMMON,
    )
    for name, values in series.items():
        chart.add(name, values)
    return _as_image(chart)


def bars(
    title: str,
    labels: list[str],
    series: dict[str, list[int | float | None]],
    horizontal: bool = True,
    percent: bool = False,
) -> str:
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    options = dict(COMMON, height=max(240, 60 + 34 * len(labels) * max(1, len(series))) if horizontal else 360)
    if percent:
        options.update(range=(0, 100), value_formatter=lambda v: f"{v:.0f} %")
    # pygal draws horizontal bars from the bottom up; reversed, they read in the order of the table.
    order = list(reversed(range(len(labels)))) if horizontal else list(range(len(labels)))
    chart = kind(title=title, x_labels=[labels[i] for i in order], **options)
    for name, values in series.items():
        chart.add(name, [values[i] for i in order])
    return _as_image(chart)
