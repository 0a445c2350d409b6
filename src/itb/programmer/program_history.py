"""The programs a pump ran before, and the token of a reviewed program.

Theory of operation. Two holes sit between changes (issue 11):

- *Titration stacking.* The label allows one titration increase per 24 h (S46 S52). Two +30%
  changes an hour apart each pass against the program just before them, yet add up to +69%. So a
  review also compares the new program with the one in force 24 h earlier, which the pump's own
  event log gives: each program change is logged with its old and new program
  (:class:`ProgramChange`), and :func:`program_in_force_at` walks them back.
- *What you review is what you send.* A review's token (:func:`review_token`) is the SHA-256 of
  the canonical JSON of the pump serial, the pump's current program (standing for the program
  version: any change on the pump changes it) and the new program, with every number snapped to
  the programming resolution so that a wire round trip (16.666… µg/h back to 400 µg/day) does
  not change it. A send that carries a token is refused when the token no longer matches.

Pure functions: the times are passed in, the log is read by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from itb.programmer.exact import exact_amount
from itb.therapy import Program


@dataclass(frozen=True, slots=True)
class ProgramChange:
    """One "program" entry of the pump's event log: at ``at`` the pump went from ``old`` to
    ``new``."""

    at: datetime
    old: Program
    new: Program


def program_in_force_at(
    changes: Sequence[ProgramChange], at: datetime, current: Program
) -> Program:
    """The program the pump ran at ``at``: the old program of the first change after ``at``;
    ``current`` when nothing changed since. A change logged exactly at ``at`` is in force."""
    for change in sorted(changes, key=lambda c: c.at):
        if change.at > at:
            return change.old
    return current


def normalized_program(program: Program | None) -> object:
    """The program's dict with every number snapped to the programming resolution, as text."""
    return None if program is None else _normalize(program.to_dict())


def same_program(a: Program | None, b: Program | None) -> bool:
    """True when two programs deliver the same schedule (a wire round trip compares equal)."""
    return normalized_program(a) == normalized_program(b)


def review_token(serial: str, current: Program | None, new: Program) -> str:
    """SHA-256 (hex) of the canonical JSON of the serial, the current and the new program."""
    payload = {
        "serial": serial,
        "current": normalized_program(current),
        "new": normalized_program(new),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _normalize(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    exact = exact_amount(float(value))
    return f"{exact.numerator}/{exact.denominator}"
