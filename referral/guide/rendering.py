"""The guide's Markdown as HTML: only headings, paragraphs, lists and emphasis, behind two walls.

First wall: markdown-it-py with nothing enabled but those rules, and raw HTML off, so links, images,
HTML and code are never produced (they stay visible as text). Second wall: nh3 with an allow-list of
exactly the tags the first wall can produce, and no attributes. Headings move down: the page has its
h1, its parts h2 and its sections h3, so the text's top heading level is an h4."""

from __future__ import annotations

import re
from collections.abc import Mapping

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

SHIFT = 3  # h1 page, h2 part, h3 section
ALLOWED_TAGS = {"h4", "h5", "h6", "p", "ul", "ol", "li", "em", "strong"}

_markdown = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False}).enable(
    ["heading", "list", "emphasis"]
)

PLACEHOLDER = re.compile(r"\{([^{}\n]{1,60})\}")


def placeholders_in(text: str) -> list[str]:
    """The names of the placeholders written in `text`, in order."""
    return [match.group(1).strip() for match in PLACEHOLDER.finditer(text)]


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each known placeholder replaced by its value; unknown ones stay as they are
    (the editor refuses them; a text written before a placeholder was renamed still shows)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1).strip(), match.group(0)), text)


def render(text: str, values: Mapping[str, str] | None = None) -> Markup:
    """The section's text as safe HTML, placeholders filled."""
    tokens = _markdown.parse(fill(text, values or {}))
    headings = [token for token in tokens if token.type in ("heading_open", "heading_close")]
    # The text's top level becomes h4, whether the author started with `#` or `##`: no level is skipped.
    top = min((int(token.tag[1:]) for token in headings), default=1)
    for token in headings:
        token.tag = f"h{min(6, int(token.tag[1:]) - top + 1 + SHIFT)}"
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    return Markup(nh3.clean(html, tags=ALLOWED_TAGS, attributes={}, url_schemes=set(), link_rel=None))  # noqa: S704
