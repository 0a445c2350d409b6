"""Units and conversions, in one place.

Quantities are plain floats whose unit is in the name (``rate_ug_per_day``, ``volume_ml``);
this module holds the conversion factors and the parsing of human durations.
"""

from __future__ import annotations

import re
from typing import Any

from itb.errors import InputError

SECONDS_PER_MINUTE = 60.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
DAYS_PER_YEAR = 365.25
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY
HOURS_PER_DAY = 24.0
UL_PER_ML = 1000.0
UG_PER_MG = 1000.0
UA_H_PER_MAH = 1000.0  # µA·h per mA·h
# A battery charge of 1 mAh is 3.6 C = 3.6e6 µC (charges are counted in µC in the firmware).
UC_PER_MAH = 3.6e6

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w|y)\s*$")
_DURATION_UNIT_S = {
    "s": 1.0,
    "m": SECONDS_PER_MINUTE,
    "min": SECONDS_PER_MINUTE,
    "h": SECONDS_PER_HOUR,
    "d": SECONDS_PER_DAY,
    "w": SECONDS_PER_WEEK,
    "y": SECONDS_PER_YEAR,
}


class UnitError(InputError):
    """A value with a missing or wrong unit."""

    def __init__(self, message: str, field: str = "value") -> None:
        super().__init__(field, message, message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (UnitError, (str(self), self.field))


def parse_duration_s(text: str) -> float:
    """Parse ``12h``, ``30d``, ``8y``, ``90min``, ``2w`` into seconds (a year is 365.25 days)."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise UnitError(
            f"duration {text!r}: expected a number and a unit among s, min, h, d, w, y (e.g. 30d)"
        )
    return float(match.group(1)) * _DURATION_UNIT_S[match.group(2)]
