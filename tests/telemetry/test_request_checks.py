"""The pump's request checks: the docstring's table and the code's ordered tuple are one thing."""

from __future__ import annotations

import re

from itb.telemetry import pump_endpoint
from itb.telemetry.pump_endpoint import REQUEST_CHECKS
from itb.telemetry.refusals import RefusalReason


def _request_check_rows() -> list[tuple[str, list[str]]]:
    """(check name, refusal reasons) for each row of the "request check" table, in order."""
    doc = pump_endpoint.__doc__ or ""
    table = doc[doc.index("request check") :]
    table = table[: table.index("\n\n")]
    rows: list[tuple[str, list[str]]] = []
    for line in table.splitlines()[2:]:
        if set(line.strip()) <= {"=", " "}:
            continue
        name = line[: line.index("  ", 4)].strip() if line[4] != " " else ""
        reasons = re.findall(r"\b[A-Z][A-Z_]+\b", line)
        if name:
            rows.append((name, reasons))
        else:  # a continuation line: more reasons for the row above
            rows[-1][1].extend(reasons)
    return rows


def test_the_docstring_table_lists_the_request_checks_in_code_order() -> None:
    names = [name for name, _ in _request_check_rows()]
    assert names == [check.__name__ for check in REQUEST_CHECKS]


def test_every_reason_in_the_table_is_a_refusal_reason() -> None:
    known = {reason.name for reason in RefusalReason}
    for name, reasons in _request_check_rows():
        assert reasons, name
        assert set(reasons) <= known, name


def test_every_request_check_says_what_it_checks() -> None:
    for check in REQUEST_CHECKS:
        assert check.__doc__, check.__name__
