"""Which characters the PDF of record can print, and the check on text that ends up in it.

The PDF embeds DejaVu Sans (regular and bold) from Debian's fonts-dejavu-core and nothing else, so
that the file looks the same on every server and never depends on what other fonts are installed.
A character those fonts do not contain (CJK, emoji …) would otherwise become an empty box or a
font the archive cannot reproduce. It is refused where it is typed (a German error at the field),
and the PDF route refuses stored text that predates the check.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import current_app
from wtforms.validators import ValidationError

DEFAULT_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_PACKAGE = "fonts-dejavu-core"
# CSS font-weight → file. Only upright faces: DejaVu Sans Oblique lacks the Arabic and Hebrew letters.
FONT_FILES = {400: "DejaVuSans.ttf", 700: "DejaVuSans-Bold.ttf"}
# Line breaks and tabs are layout, not glyphs.
LAYOUT = frozenset("\n\r\t")


class FontMissing(RuntimeError):
    """The configured font directory lacks a font file: an installation problem for the operator."""


def font_dir() -> Path:
    return Path(current_app.config.get("PDF_FONT_DIR") or DEFAULT_FONT_DIR)


def font_paths() -> dict[int, Path]:
    directory = font_dir()
    paths = {weight: directory / name for weight, name in FONT_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FontMissing(
            f"PDF font missing: {', '.join(missing)} (install the Debian package {FONT_PACKAGE} or set PDF_FONT_DIR)"
        )
    return paths


@lru_cache(maxsize=4)
def _coverage(paths: tuple[Path, ...]) -> frozenset[int]:
    """Code points every one of the fonts has a glyph for; read once per process and directory."""
    from fontTools.ttLib import TTFont

    covered: set[int] | None = None
    for path in paths:
        with TTFont(path, lazy=True) as font:
            cmap = set(font.getBestCmap())
        covered = cmap if covered is None else covered & cmap
    return frozenset(covered or ())


def coverage() -> frozenset[int]:
    return _coverage(tuple(font_paths().values()))


def first_uncovered(text: str | None) -> str | None:
    """The first character of `text` the PDF fonts cannot show, or None.

    A character counts as covered if the fonts have it, or have every part of its canonical
    decomposition (a base letter and combining accents, as typed on some systems for Vietnamese).
    """
    if not text:
        return None
    covered = coverage()
    for char in unicodedata.normalize("NFC", text):
        if char in LAYOUT or ord(char) in covered:
            continue
        parts = unicodedata.normalize("NFD", char)
        if len(parts) > 1 and all(ord(part) in covered for part in parts):
            continue
        return char
    return None


def describe(char: str) -> str:
    return f"„{char}“ (U+{ord(char):04X})"


@dataclass(frozen=True)
class Unprintable:
    """Stored text the PDF cannot print: which field and which character (never the text itself)."""

    field: str
    char: str

    @property
    def code_point(self) -> str:
        return f"U+{ord(self.char):04X}"


def check_fields(fields: Iterable[tuple[str, str | None]]) -> Unprintable | None:
    for name, value in fields:
        char = first_uncovered(value)
        if char is not None:
            return Unprintable(name, char)
    return None


class Printable:
    """WTForms validator: the text can be printed in the PDF of record."""

    def __init__(self, what: str = "Das Zeichen", advice: str = "Bitte in lateinischer Umschrift eingeben."):
        self.what = what
        self.advice = advice

    def __call__(self, form, field):
        data = field.data
        name = getattr(data, "filename", data)  # file fields: the file's name is what gets printed
        try:
            char = first_uncovered(name if isinstance(name, str) else None)
        except FontMissing as error:
            # Typing goes on; the PDF route refuses (and says why) until the fonts are installed.
            current_app.logger.error("Cannot check text for the PDF: %s", error)
            return
        if char is not None:
            raise ValidationError(
                f"{self.what} {describe(char)} kann im PDF für die Fallakte nicht gedruckt werden. {self.advice}"
            )
