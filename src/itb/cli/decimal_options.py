"""Options where a person types a volume, a dose or a concentration: read by the one rule for a
typed decimal (:func:`itb.decimal_input.parse_decimal`: a decimal comma where unambiguous, the
option's unit after the number allowed, an ambiguous comma or another unit refused in words).

Use as ``typer.Option(..., "--volume-ml", parser=ML)``. A refusal is click's bad parameter with
the rule's words, which the command prints on one line naming the option, exit 2.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from itb.decimal_input import parse_decimal
from itb.errors import InputError


def decimal_in(unit: str) -> Callable[[str], float]:
    """A Typer parser for a number typed in ``unit`` (``17,93``, ``17.93 mL``)."""

    def parse(text: str | float) -> float:
        if isinstance(text, float):
            return text  # a default, already a number
        try:
            return parse_decimal(text, "value", unit)
        except InputError as error:
            raise typer.BadParameter(error.reason) from None

    parse.__name__ = f"number in {unit}"
    return parse


ML = decimal_in("mL")
UG = decimal_in("µg")
UG_PER_ML = decimal_in("µg/mL")
UG_PER_DAY = decimal_in("µg/day")
MINUTES = decimal_in("min")
