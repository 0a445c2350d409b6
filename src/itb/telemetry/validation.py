"""What every telemetry message checks on construction: shapes, ranges, times, enums, JSON.

A message is a frozen dataclass whose ``__post_init__`` calls these checks, so a message that
exists is one the pump may act on. Each check raises :class:`MessageError` naming the field and
what is allowed; the codec turns it into a ``CodecError`` naming the same field. :class:`Wire` is
the mixin that maps a dataclass's fields one-to-one to wire keys (and refuses unknown or missing
keys).
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, TypeAlias, TypeVar

from itb.errors import InputError
from itb.guardrails import Guardrail
from itb.pump.hardware import MODELS

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

MAX_COUNTER = 2**53 - 1  # largest integer every JSON reader keeps exactly
MAX_LOG_PAGE = 64  # entries per event-log page; the pump may return fewer to fit a frame
MAX_TEXT_CHARS = 500
MAX_JSON_DEPTH = 8  # opaque JSON (program, log data) nests no deeper than this
MAX_VOLUME_ML = max(model.reservoir_ml for model in MODELS.values())
REQUEST_ID_RE = re.compile(r"[0-9a-f]{32}")
CHALLENGE_BYTES = 16  # a prepare/commit challenge: 128 random bits, hex on the wire
CHALLENGE_RE = re.compile(f"[0-9a-f]{{{2 * CHALLENGE_BYTES}}}")
MAX_CHALLENGE_LIFETIME_S = 3600.0


class MessageError(InputError):
    """A message that cannot exist. ``field`` names the culprit, ``reason`` says what is allowed."""


_E = TypeVar("_E", bound=Enum)


def check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(name, f"expected an integer from {low} to {high}")
    if not low <= value <= high:
        raise MessageError(name, f"{value} is outside the allowed range {low} to {high}")
    return value


def check_float(
    value: object, name: str, low: float, high: float, unit: str, *, low_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(name, f"expected a number in {unit}")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        bracket = "more than" if low_open else "from"
        raise MessageError(
            name, f"{value!r} {unit} is outside the allowed range: {bracket} {low:g} to {high:g}"
        )
    return number


def check_guardrail(value: object, name: str, rail: Guardrail) -> float:
    return check_float(value, name, rail.absolute_min, rail.absolute_max, rail.unit)


def check_text(value: object, name: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise MessageError(name, "expected a string")
    if not 1 <= len(value) <= max_chars:
        raise MessageError(name, f"expected 1 to {max_chars} characters, got {len(value)}")
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise MessageError(name, "expected true or false")
    return value


def check_request_id(value: object) -> str:
    if not isinstance(value, str) or REQUEST_ID_RE.fullmatch(value) is None:
        raise MessageError("request_id", "expected 32 lowercase hex digits")
    return value


def check_challenge(value: object) -> str:
    if not isinstance(value, str) or CHALLENGE_RE.fullmatch(value) is None:
        raise MessageError("challenge", f"expected {2 * CHALLENGE_BYTES} lowercase hex digits")
    return value


def check_time(value: object, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise MessageError(name, "expected an ISO 8601 time YYYY-MM-DDTHH:MM:SS") from None
    if not isinstance(value, datetime):
        raise MessageError(name, "expected an ISO 8601 time YYYY-MM-DDTHH:MM:SS")
    if value.tzinfo is not None:
        raise MessageError(name, "the pump clock has no UTC offset; give a naive time")
    if not 2000 <= value.year <= 2100:
        raise MessageError(name, f"year {value.year} is outside the allowed range 2000 to 2100")
    return value


def check_optional_time(value: object, name: str) -> datetime | None:
    return None if value is None else check_time(value, name)


def check_enum(
    value: object, name: str, enum_type: type[_E], allowed: tuple[_E, ...] | None = None
) -> _E:
    """A member of ``enum_type`` (of ``allowed`` when given: a request may take a subset)."""
    members = tuple(enum_type) if allowed is None else allowed
    try:
        member = enum_type(value)
    except ValueError:
        member = None
    if member is None or member not in members:
        names = ", ".join(str(m.value) for m in members)
        raise MessageError(name, f"{value!r} is not one of: {names}")
    return member


def check_json(value: object, name: str, depth: int = 0) -> None:
    """Opaque JSON (a program, log data): plain types, finite numbers, bounded depth."""
    if depth > MAX_JSON_DEPTH:
        raise MessageError(name, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MessageError(name, "numbers must be finite")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{name}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MessageError(name, "object keys must be strings")
            check_json(item, f"{name}.{key}", depth + 1)
        return
    raise MessageError(name, f"{type(value).__name__} is not a JSON value")


def check_object(value: object, name: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise MessageError(name, "expected an object")
    check_json(value, name)
    return value


def check_keys(data: object, names: list[str], where: str) -> dict[str, object]:
    """``data`` is an object with exactly the keys ``names`` (unknown and missing ones named)."""
    if not isinstance(data, dict):
        raise MessageError(where, "expected an object")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise MessageError(where, f"unknown keys {unknown}; known: {names}")
    missing = [n for n in names if n not in data]
    if missing:
        raise MessageError(where, f"missing keys {missing}")
    return data


def set_field(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)  # normalising a field of a frozen dataclass


def wire_value(value: object) -> JSON:
    if isinstance(value, Enum):
        return wire_value(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [wire_value(item) for item in value]
    if isinstance(value, Wire):
        return value.to_wire()
    return value  # type: ignore[return-value]  # already JSON (checked on construction)


class Wire:
    """Mixin: a dataclass whose fields map one-to-one to wire keys."""

    __slots__ = ()
    type_name: ClassVar[str] = ""

    def to_wire(self) -> dict[str, JSON]:
        return {f.name: wire_value(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_wire(cls, data: object, where: str = "") -> Any:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        return cls(**check_keys(data, names, where or cls.type_name))
