"""A number a person typed, in one place: the decimal comma, thousands separators and a typed unit.

Theory of operation
-------------------
Clinicians type volumes, doses and concentrations in forms and on the command line, and many
write the decimal mark as a comma (``17,93`` mL). Reading ``17,93`` as an error costs a retry;
reading ``1,000`` as one thousand when the nurse meant 1.000 (or the other way round) is a
thousandfold dose error. So a comma is read as a decimal mark only when nothing else could be
meant, and refused, with words saying why, when it could:

    typed           read as    why
    17.93           17.93      the dot is always the decimal mark
    17,93  0,5  ,5  17.93 ...  a single comma not followed by exactly three digits is a decimal
                               mark: no thousands group has one, two or four digits
    0,500           0.5        a leading zero never starts a thousands group
    1,000  12,500   refused    a thousands separator (1000) or a decimal comma (1.0)? ambiguous
    1,234.5 1.234,5 refused    two marks: thousands separators are never accepted
    1,2,3           refused    more than one comma
    17.93 mL        17.93      the field's own unit may follow the number
    500 µL          refused    another unit (in a mL field): the words give it in the field's unit
    nan inf 1e999   refused    not a finite number

The value is returned as a float in the field's unit; the range is the caller's rule (a
guardrail, the pump model, the drug library), asked after this.
"""

from __future__ import annotations

import math
import re

from itb.errors import InputError
from itb.units import UG_PER_MG, UL_PER_ML

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_COMMA_RE = re.compile(r"^([+-]?)(\d*),(\d+)$")
# "1,000" or "12,500": one to three digits, no leading zero, then a group of three
_THOUSANDS_RE = re.compile(r"^[+-]?[1-9]\d{0,2},\d{3}$")
_SPLIT_RE = re.compile(r"^([^a-zA-Zµμ%]*?)\s*([a-zA-Zµμ][a-zA-Zµμ/]*)$")

# Units a person may type, by dimension, with their size in the dimension's first unit. The
# micro prefix is written µ (micro sign), μ (Greek mu), u or mc: all the same.
_DIMENSIONS: dict[str, dict[str, float]] = {
    "volume": {"ml": 1.0, "µl": 1.0 / UL_PER_ML, "l": 1000.0},
    "mass": {"µg": 1.0, "mg": UG_PER_MG, "g": UG_PER_MG * 1000.0},
    "concentration": {"µg/ml": 1.0, "mg/ml": UG_PER_MG},
    "daily rate": {"µg/day": 1.0, "µg/d": 1.0, "mg/day": UG_PER_MG, "mg/d": UG_PER_MG},
    "hourly rate": {"µg/h": 1.0, "mg/h": UG_PER_MG},
}


class DecimalInputError(InputError):
    """A typed number that cannot be read without guessing: ``field`` and words saying why."""

    def __init__(self, field: str, reason: str, message: str | None = None) -> None:
        super().__init__(field, reason, message)


def _key(unit: str) -> str:
    text = unit.strip().lower().replace("μ", "µ")
    if text.startswith("mcg"):
        text = "µg" + text[3:]
    elif text.startswith("u") and len(text) > 1:
        text = "µ" + text[1:]
    return text


def _dimension(unit_key: str) -> tuple[str, float] | None:
    for name, units in _DIMENSIONS.items():
        if unit_key in units:
            return name, units[unit_key]
    return None


def _split_unit(text: str) -> tuple[str, str | None]:
    """``"17,93 mL"`` -> ``("17,93", "mL")``; a bare number -> ``(text, None)``."""
    match = _SPLIT_RE.match(text)
    if match is None or not match.group(1).strip():
        return text, None
    return match.group(1).strip(), match.group(2)


def _dot_decimal(number: str, field: str, unit: str) -> str:
    """The number with a dot as its decimal mark, or :class:`DecimalInputError`."""
    if "," not in number:
        return number
    if "." in number:
        raise DecimalInputError(
            field,
            f"{number!r} has both a comma and a dot; type it without a thousands separator, "
            f"with one decimal mark (e.g. 1234.5 {unit})",
        )
    if _THOUSANDS_RE.match(number):
        thousands, decimal = number.replace(",", ""), number.replace(",", ".")
        raise DecimalInputError(
            field,
            f"{number!r} is ambiguous: {thousands} (a thousands separator) or {decimal} "
            f"(a decimal comma)? type {thousands} or {decimal} {unit}",
        )
    match = _COMMA_RE.match(number)
    if match is None:
        raise DecimalInputError(field, f"{number!r}: enter one number in {unit}, e.g. 17.93")
    sign, whole, fraction = match.groups()
    return f"{sign}{whole or '0'}.{fraction}"


def _in_field_unit(value: float, typed_unit: str, field: str, unit: str) -> float:
    """``value`` typed in ``typed_unit``: accepted when it is the field's unit, else refused
    naming the value in the field's unit (a wrong unit is never converted silently)."""
    typed, wanted = _dimension(_key(typed_unit)), _dimension(_key(unit))
    if _key(typed_unit) == _key(unit) or (typed is not None and typed == wanted):
        return value
    if typed is not None and wanted is not None and typed[0] == wanted[0]:
        converted = value * typed[1] / wanted[1]
        raise DecimalInputError(
            field,
            f"{value:g} {typed_unit} is {converted:g} {unit}; this field is in {unit}: "
            f"enter the number in {unit}",
        )
    raise DecimalInputError(field, f"{typed_unit!r} is not a unit of this field; enter {unit}")


def parse_decimal(text: str, field: str, unit: str) -> float:
    """The finite number ``text`` means, in ``unit`` (the field's unit), or
    :class:`DecimalInputError` naming ``field`` and saying what to type."""
    stripped = text.strip()
    if not stripped:
        raise DecimalInputError(field, f"enter a number in {unit}")
    number, typed_unit = _split_unit(stripped)
    number = _dot_decimal(number, field, unit)  # a space inside ("1 000", "17 93") is refused
    if not _NUMBER_RE.match(number):
        raise DecimalInputError(field, f"{text.strip()!r}: enter a number in {unit}")
    value = float(number)
    if not math.isfinite(value):
        raise DecimalInputError(field, f"enter a finite number in {unit}")
    if typed_unit is not None:
        value = _in_field_unit(value, typed_unit, field, unit)
    return value
