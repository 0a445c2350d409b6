"""A printout (``itb.clinic.printout``) as an A4 PDF, drawn with matplotlib's PDF backend.

matplotlib is already a dependency (the pk plots); its PDF backend writes text with embedded
TrueType fonts (DejaVu Sans, which has µ), so the file's text can be searched and copied. The
layout is a simple flow of lines: a title, then each section's facts and table, a new page when
one is full, and the footer (printed when, by whom, the disclaimer) on every page.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from itb.clinic.printout import Printout, Section

if TYPE_CHECKING:  # matplotlib is imported when a PDF is drawn: the app starts without it
    from matplotlib.figure import Figure

PAGE_W_IN, PAGE_H_IN = 8.27, 11.69  # A4
MARGIN_IN = 0.7
LINE_IN = 0.2
FONT_PT = 9
TITLE_PT = 14
WRAP_CHARS = 95  # a line of body text at FONT_PT across the page's width
CHARS_PER_IN = 13  # at FONT_PT: a table cell longer than its column is cut with an ellipsis


@dataclass
class _Pages:
    """The pages drawn so far and where the next line goes (inches from the top)."""

    footer: str
    figures: list[Figure] = field(default_factory=list)
    y_in: float = PAGE_H_IN  # past the bottom: the first line opens a page

    def _new_page(self) -> None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(PAGE_W_IN, PAGE_H_IN))
        self.figures.append(figure)
        n = len(self.figures)
        for i, line in enumerate(textwrap.wrap(f"{self.footer} Page {n}.", WRAP_CHARS + 10)):
            self._text(MARGIN_IN, PAGE_H_IN - MARGIN_IN + 0.25 + i * 0.16, line, 7, "#555555")
        self.y_in = MARGIN_IN

    def _text(self, x_in: float, y_in: float, text: str, size: float, color: str) -> None:
        figure = self.figures[-1]
        figure.text(
            x_in / PAGE_W_IN, 1 - y_in / PAGE_H_IN, text, fontsize=size, color=color, va="top"
        )

    def line(self, cells: list[tuple[float, str]], size: float = FONT_PT, bold: bool = False,
             height_in: float = LINE_IN) -> None:  # fmt: skip
        if self.y_in + height_in > PAGE_H_IN - MARGIN_IN:
            self._new_page()
        for x_in, text in cells:
            figure = self.figures[-1]
            figure.text(
                x_in / PAGE_W_IN, 1 - self.y_in / PAGE_H_IN, text, fontsize=size,
                va="top", fontweight="bold" if bold else "normal",
            )  # fmt: skip
        self.y_in += height_in


def _cell(text: str, width_in: float) -> str:
    most = max(int(width_in * CHARS_PER_IN), 4)
    return text if len(text) <= most else text[: most - 1] + "…"


def _section(pages: _Pages, section: Section) -> None:
    pages.y_in += LINE_IN / 2
    pages.line([(MARGIN_IN, section.heading)], size=11, bold=True, height_in=0.28)
    for label, value in section.facts:
        wrapped = textwrap.wrap(value, 60) or [""]
        pages.line([(MARGIN_IN, label), (MARGIN_IN + 2.4, wrapped[0])])
        for more in wrapped[1:]:
            pages.line([(MARGIN_IN + 2.4, more)])
    if section.rows:
        step_in = (PAGE_W_IN - 2 * MARGIN_IN) / len(section.columns)
        xs = [MARGIN_IN + i * step_in for i in range(len(section.columns))]
        pages.line(
            [(x, _cell(c, step_in)) for x, c in zip(xs, section.columns, strict=True)], bold=True
        )
        for row in section.rows:
            pages.line([(x, _cell(v, step_in)) for x, v in zip(xs, row, strict=True)])
    if not section.facts and not section.rows and section.empty:
        pages.line([(MARGIN_IN, section.empty)])


def printout_pdf(printout: Printout) -> bytes:
    """The printout as PDF bytes (no creation date: the same printout gives the same file)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    pages = _Pages(printout.footer)
    with rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        pages.line([(MARGIN_IN, printout.title)], size=TITLE_PT, bold=True, height_in=0.35)
        pages.line([(MARGIN_IN, printout.patient)], size=11, height_in=0.3)
        for section in printout.sections:
            _section(pages, section)
        out = io.BytesIO()
        with PdfPages(out, metadata={"Title": printout.title, "CreationDate": None}) as pdf:
            for figure in pages.figures:
                pdf.savefig(figure)
    return out.getvalue()
