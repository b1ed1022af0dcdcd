"""The evaluation's charts as SVG drawn without a library: well-formed, named and described for
assistive technology, one mark per value shown, and every text escaped."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from referral.evaluation import charts

SVG = "{http://www.w3.org/2000/svg}"
SCHOOL = 'Schule <am Park> & "Söhne" ]]>'


def parse(url: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert url.startswith(prefix)
    return ET.fromstring(base64.b64decode(url[len(prefix) :]))


def drawn(svg: ET.Element) -> list[ET.Element]:
    """The bars and points: the marks that stand for a value."""
    return [e for e in svg.iter() if e.get("class") in ("bar", "point")]


def test_bars_are_well_formed_named_and_one_per_value():
    url = charts.bars(
        "Je Schule",
        [SCHOOL, "Realschule Süd", "Gymnasium"],
        {"Mitteilungen": [12, None, 3], "Fachberatungen <neu>": [None, None, 7]},
        "Balkendiagramm je Schule; die Zahlen stehen in der Tabelle.",
    )
    svg = parse(url)
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.text == "Je Schule"
    assert desc is not None and desc.text == "Balkendiagramm je Schule; die Zahlen stehen in der Tabelle."
    assert svg.get("aria-labelledby") == title.get("id") and svg.get("aria-describedby") == desc.get("id")
    bars = drawn(svg)
    assert [bar.findtext(f"{SVG}title") for bar in bars] == [
        f"Mitteilungen, {SCHOOL}: 12",
        "Mitteilungen, Gymnasium: 3",
        "Fachberatungen <neu>, Gymnasium: 7",
    ]
    # Longer bars for larger values, all from the same axis.
    widths = [float(bar.get("width")) for bar in bars]
    assert widths[0] > widths[2] > widths[1] > 0 and len({bar.get("x") for bar in bars}) == 1
    # The label, escaped on the wire, reads as written.
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert SCHOOL in texts and "Fachberatungen <neu>" in texts
    raw = base64.b64decode(url.split(",", 1)[1]).decode()
    assert "<am Park>" not in raw and "Schule &lt;am Park&gt; &amp; &#34;Söhne&#34; ]]&gt;" in raw


def test_shares_are_drawn_up_to_100_percent():
    svg = parse(
        charts.bars("Anteile in Prozent", ["a", "b"], {"2026": [50, 100], "2025": [None, 0]}, "d", percent=True)
    )
    assert [bar.findtext(f"{SVG}title") for bar in drawn(svg)] == ["2026, a: 50 %", "2026, b: 100 %", "2025, b: 0 %"]
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert "100 %" in texts and "0 %" in texts


def test_lines_have_one_point_per_value_and_break_where_one_is_missing():
    months = ["Januar 2026", "Februar 2026", "März 2026", "April 2026", "Mai 2026"]
    svg = parse(
        charts.line(
            "Je Monat",
            months,
            {"Mitteilungen": [4, 5, None, 7, 8], SCHOOL: [None, 3, None, None, None]},
            "Liniendiagramm <&>",
        )
    )
    assert svg.findtext(f"{SVG}title") == "Je Monat" and svg.findtext(f"{SVG}desc") == "Liniendiagramm <&>"
    points = drawn(svg)
    assert [p.findtext(f"{SVG}title") for p in points] == [
        "Mitteilungen, Januar 2026: 4",
        "Mitteilungen, Februar 2026: 5",
        "Mitteilungen, April 2026: 7",
        "Mitteilungen, Mai 2026: 8",
        f"{SCHOOL}, Februar 2026: 3",
    ]
    # Two stretches of the first series (interrupted in March); a lone point has no line.
    lines = [e.get("points").split() for e in svg.iter(f"{SVG}polyline")]
    assert [len(points) for points in lines] == [2, 2]
    # Higher values higher up (smaller y).
    ys = [float(p.get("cy")) for p in points[:4]]
    assert ys == sorted(ys, reverse=True)


def test_no_script_no_outside_reference_and_a_note_without_data():
    for url in (
        charts.line("Je Monat", [], {"Mitteilungen": [], "Fachberatungen": []}, "leer"),
        charts.bars("Je Kategorie", [], {"Mitteilungen": []}, "leer"),
    ):
        svg = parse(url)
        assert "Keine Daten" in ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
        assert not drawn(svg)
        for element in svg.iter():
            assert element.tag != f"{SVG}script" and not element.tag.endswith("foreignObject")
            assert not any("href" in name or name.startswith("on") for name in element.attrib)
