"""Exact comparison of dose changes against percentage limits.

Theory of operation. A program's daily dose is a float computed from rates (a continuous
400 µg/day is stored as 16.666… µg/h), so it carries binary rounding error of about 1e-13 µg.
Compared in floating point, a change of exactly the label's limit (400 -> 520 µg/day, +30%) can
land a hair above it and ask for a confirmation, or a hair below it and pass when it should not.
So every amount is first snapped to the programming resolution, :data:`QUANTUM_UG` (1e-6 µg,
far finer than anything a clinician types or a pump delivers and far coarser than the binary
error), and the percentage is then compared in exact rational arithmetic:
``(new - old) * 100 > limit * old``. Snapping is to the nearest quantum, never in the direction
of the verdict, so rounding neither creates nor hides a warning. Pure functions.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

QUANTUM_UG = Decimal("1e-6")


def exact_amount(value: float) -> Fraction:
    """``value`` (µg, µg/day or µg/h) snapped to :data:`QUANTUM_UG`, as an exact fraction."""
    return Fraction(Decimal(value).quantize(QUANTUM_UG, rounding=ROUND_HALF_EVEN))


def exact_percent_change(old: float, new: float) -> Fraction | None:
    """(new - old) / old in percent, exactly; None when ``old`` is zero."""
    old_exact = exact_amount(old)
    if old_exact == 0:
        return None
    return (exact_amount(new) - old_exact) * 100 / old_exact


def beyond_increase(old: float, new: float, max_increase_percent: float) -> bool:
    """True when ``new`` is more than ``max_increase_percent`` above ``old`` (exactly at the
    limit is allowed). The limit is a decimal from a table (30.0, 15.0...): read as such."""
    change = exact_percent_change(old, new)
    return change is not None and change > Fraction(Decimal(repr(max_increase_percent)))


def beyond_decrease(old: float, new: float, max_decrease_percent: float) -> bool:
    """True when ``new`` is more than ``max_decrease_percent`` below ``old``."""
    change = exact_percent_change(old, new)
    return change is not None and change < -Fraction(Decimal(repr(max_decrease_percent)))
