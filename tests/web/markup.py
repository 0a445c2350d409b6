"""Find elements in a page by their attributes: the page tests assert on ``data-*`` attributes
(what a page says about its data), not on the words around them, which may be reworded."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass(frozen=True, slots=True)
class Element:
    tag: str
    attrs: dict[str, str]  # a bare attribute (``required``) has the value ""

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))


def _matches(element: Element, tag: str | None, wanted: dict[str, str | None]) -> bool:
    if tag is not None and element.tag != tag:
        return False
    for name, value in wanted.items():
        if name not in element.attrs or (value is not None and element.attrs[name] != value):
            return False
    return True


def find_all(html: str, tag: str | None = None, **attrs: str | None) -> list[Element]:
    """Elements of ``tag`` (any tag: None) with these attributes; ``data_field="x"`` means
    ``data-field="x"`` (``class_`` means ``class``), and a value of None asks only that the
    attribute be there."""
    collector = _Collector()
    collector.feed(html)
    wanted = {name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()}
    return [e for e in collector.elements if _matches(e, tag, wanted)]


def find(html: str, tag: str | None = None, **attrs: str | None) -> Element:
    """The one element that matches (an assertion error when there is none or more than one)."""
    found = find_all(html, tag, **attrs)
    assert len(found) == 1, f"{len(found)} elements <{tag or '*'} {attrs}>"
    return found[0]
