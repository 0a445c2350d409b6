"""A plain aligned text table for a command's answer, or one block per row when it is too wide.

Why not Rich: importing Rich's console and table costs about twice a bare interpreter start,
and kept ``itb pump models`` over ten times a bare start (issue 13). A row's first cell (a
name the other commands ask for) is never cut or wrapped: when the table is wider than the
terminal, each row becomes a block, its first cell alone on a line, then ``  column: value``.
Into a file or a pipe there is no width to fit: the table, one line per row.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

COLUMN_GAP = "  "


def table_lines(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The title, the header and one line per row, each column left-aligned to its widest."""
    widths = [max(len(cell) for cell in cells) for cells in zip(columns, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return COLUMN_GAP.join(padded).rstrip()

    return [title, line(columns), line(["-" * width for width in widths])] + [
        line(row) for row in rows
    ]


def block_lines(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Each row as a block: its first cell alone, then ``  column: value`` for the others."""
    lines: list[str] = []
    for row in rows:
        lines.append(row[0])
        lines += [
            f"  {column}: {value}" for column, value in zip(columns[1:], row[1:], strict=True)
        ]
    return lines


def output_width() -> int | None:
    """The width the output must fit: ``COLUMNS`` when set, else the terminal's; None (no
    limit) when the output goes to a file or a pipe, where one line per row suits ``grep``."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def fitted_lines(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None
) -> list[str]:
    """The table when every line fits ``width`` (default: :func:`output_width`, which has no
    limit for a file or a pipe), else the blocks."""
    limit = output_width() if width is None else width
    table = table_lines(title, columns, rows)
    if limit is None or max(len(line) for line in table) <= limit:
        return table
    return block_lines(columns, rows)
