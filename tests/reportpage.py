"""Reading a ``cpcframe report`` page back in the tests: its tables, images and text.

A plain :class:`html.parser.HTMLParser`, so the tests check what a reader of the page
sees (cell texts, image bytes) rather than how the template spells it.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """``tables``: each table as rows of cell texts (header row first); ``images``:
    ``(alt, src)``; ``text``: the visible text, whitespace collapsed; ``sections``: the
    text of each ``<section>`` by its id."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.table_classes: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.sections: dict[str, str] = {}
        self._chunks: list[str] = []
        self._cell: list[str] | None = None
        self._section: tuple[str, int] | None = None
        self._skip = 0
        self.feed(html)
        self.text = " ".join(" ".join(self._chunks).split())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
            self.table_classes.append(a.get("class") or "")
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append((a.get("alt") or "", a.get("src") or ""))
        elif tag == "section":
            self._section = (a.get("id") or "", len(self._chunks))

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "section" and self._section is not None:
            name, start = self._section
            self.sections[name] = " ".join(" ".join(self._chunks[start:]).split())
            self._section = None

    def handle_data(self, data):
        if self._skip:
            return
        self._chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, first_header: str, within: str | None = None, nth: int = 0) -> list[list[str]]:
        """The ``nth`` table whose header row starts with ``first_header`` (``within``: whose
        header also holds that title)."""
        found = [t for t in self.tables if t and t[0] and t[0][0] == first_header
                 and (within is None or within in t[0])]
        if len(found) <= nth:
            raise AssertionError(f"no table #{nth} headed {first_header!r}; headers: "
                                 f"{[t[0] for t in self.tables if t]}")
        return found[nth]

    def section(self, label: str) -> str:
        """The text of the run section whose id names ``label``."""
        for name, text in self.sections.items():
            if name.startswith("run-") and name.split("-", 2)[2] == re.sub(r"[^A-Za-z0-9_-]+", "-", label):
                return text
        raise AssertionError(f"no section for run {label!r}: {sorted(self.sections)}")

    def image(self, alt: str) -> list[bytes]:
        """Decoded PNG bytes of the images with this alt text."""
        return [png(src) for a, src in self.images if a == alt]


def png(src: str) -> bytes:
    """The bytes of a ``data:image/png;base64,`` URI (asserting it is one, and a PNG)."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    data = base64.b64decode(src[len(prefix):], validate=True)
    assert data[:8] == PNG
    return data


def read_page(path: Path) -> tuple[str, Page]:
    html = Path(path).read_text(encoding="utf-8")
    assert_self_contained(html)
    return html, Page(html)


def assert_self_contained(html: str) -> None:
    """No script, no stylesheet link, no remote or file URL: the page opens from disk alone."""
    lowered = html.lower()
    for forbidden in ("<script", "<link", "http://", "https://", "file://", "@import", "url("):
        assert forbidden not in lowered, forbidden
    for src in re.findall(r'src="([^"]*)"', html):
        png(src)
