"""The sources a rule cites, as a clinician reads them: a "why?" link, never a bare code.

The rules carry their sources as codes (``(S24)``, ``(S45 S46)``) and an unconfirmed default
as ``[R]`` (docs/domain.md), in the reasons the services and the core write. A page shows
each run of codes as a "why?" link to /sources (which lists those very sources) and ``[R]`` in
words. This happens once, on the rendered page's text (:func:`cite_sources`), so that every
reason, from whatever layer, reads the same. Inside an SVG chart a link cannot sit in a label:
the codes are dropped there (the chart's caption on the page carries them).
"""

from __future__ import annotations

import re
from html import escape

from itb.web.source_list import SOURCES

UNCONFIRMED_WORDS = "a default no source confirms"
# the literal first, so that the engine skips ahead to each "S" ("\\b" first scanned every position)
_CODE = r"S(?<![\w-]S)\d+[a-z]?(?![\w-])"
_RUN = re.compile(rf"{_CODE}(?:(?:,\s*|\s+|\s+and\s+){_CODE})*")
_START = re.compile(r"S\d|\[R\]")  # a cheap scan; each hit is then read as a run
_CODE_ONLY = re.compile(_CODE)
_SKIP = ("script", "style", "textarea", "title")


def _link(match: re.Match[str]) -> str:
    codes = [c for c in _CODE_ONLY.findall(match.group(0)) if c.rstrip("abcdefghij") in SOURCES]
    if not codes:
        return match.group(0)
    titles = "; ".join(SOURCES[c.rstrip("abcdefghij")][0] for c in codes)
    href = "/sources?cite=" + ",".join(codes) + "#" + codes[0]
    return f'<a class="why" href="{href}" title="{escape(titles)}">why?</a>'


_UNCONFIRMED_LINK = f'<a class="why" href="/sources#unconfirmed">{UNCONFIRMED_WORDS}</a>'


def _inside(html: str, pos: int, tag: str) -> bool:
    """Whether ``pos`` lies inside an element ``tag`` (opened and not yet closed before it)."""
    return html.rfind(f"<{tag}", 0, pos) > html.rfind(f"</{tag}", 0, pos)


def _where(html: str, pos: int) -> str:
    """``tag`` (inside a tag's attributes), ``skip``, ``svg`` or ``text``."""
    if html.rfind("<", 0, pos) > html.rfind(">", 0, pos):
        return "tag"
    if _inside(html, pos, "svg"):
        return "svg"
    return "skip" if any(_inside(html, pos, tag) for tag in _SKIP) else "text"


def _said(html: str, start: int, end: int, where: str) -> str:
    """What a code run (or ``[R]``) at ``html[start:end]`` becomes in its place."""
    found = html[start:end]
    if where == "svg":
        return "(unconfirmed default)" if found == "[R]" else ""
    return _UNCONFIRMED_LINK if found == "[R]" else _RUN.sub(_link, found)


def cite_sources(html: str) -> str:
    """The page with each source code in its text a "why?" link and ``[R]`` in words; tags,
    attributes, scripts, styles and form fields untouched. Only the few places a code occurs
    are looked at: a page costs one scan for "S" followed by a digit."""
    out: list[str] = []
    done = 0
    for match in _START.finditer(html):
        start = match.start()
        if start < done:
            continue  # inside the run just replaced
        run = _RUN.match(html, start) if match.group(0) != "[R]" else match
        if run is None:
            continue  # "xS7", "S3-x": not a source code
        end = run.end()
        where = _where(html, start)
        if where in ("tag", "skip"):
            continue
        if where == "svg" and html[start - 1 : start] == "(" and html[end : end + 1] == ")":
            start, end = start - 1, end + 1  # "(S51)" in a chart's label: dropped whole
        out += [html[done:start], _said(html, start, end, where)]
        done = end
    return "".join([*out, html[done:]])
