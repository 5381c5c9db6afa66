"""An HTML page read back with the standard library's parser, as the audit page's tests need."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["Element", "Page", "marks", "parse"]


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    inside: tuple[Element, ...]  # the elements it is in, outermost first
    text: str = ""  # the text within it, nested elements' included


class Page(HTMLParser):
    """Every element with its attributes, where it is and the text inside it."""

    _VOID = frozenset({"meta", "link", "img", "br", "hr", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        element = Element(tag, values, tuple(self._open))
        self.elements.append(element)
        if tag not in self._VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def having(self, attribute: str) -> list[Element]:
        return [element for element in self.elements if attribute in element.attrs]

    def tags(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def within(self, parent: Element, tag: str) -> list[Element]:
        return [e for e in self.tags(tag) if any(outer is parent for outer in e.inside)]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def marks(page: Page) -> Counter[tuple[str, str]]:
    """How often each (`data-backup`, `data-action`) is on the page: `("backups:77", "keep")`."""
    return Counter(
        (element.attrs["data-backup"], element.attrs.get("data-action", ""))
        for element in page.having("data-backup")
    )
