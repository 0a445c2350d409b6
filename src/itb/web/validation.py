"""A refused request body as the API answers it: 422, each entry naming the field as the forms
label it (``filled_ml``, ``scores[3]``) and what is allowed, never echoing the input.

FastAPI's own handler echoes each refused input; ``NaN`` or ``Infinity`` cannot be encoded as
JSON, so a NaN dose turned the 422 into a 500 raised inside the handler itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# pydantic error type -> what is allowed, in the words of the rest of the API
_ALLOWED: dict[str, str] = {
    "missing": "required",
    "float_type": "allowed a number (not true/false, not text)",
    "float_parsing": "allowed a number",
    "finite_number": "allowed a finite number (not NaN or Infinity)",
    "int_type": "allowed a whole number (not true/false, not text)",
    "int_parsing": "allowed a whole number",
    "int_from_float": "allowed a whole number",
    "bool_type": "allowed true or false",
    "bool_parsing": "allowed true or false",
    "string_type": "allowed text",
    "dict_type": "allowed a JSON object",
    "model_attributes_type": "allowed a JSON object",
    "extra_forbidden": "not a field of this request",
    "json_invalid": "allowed valid JSON",
}

_BOUNDS: dict[str, str] = {
    "greater_than_equal": "allowed {ge} or more",
    "greater_than": "allowed above {gt}",
    "less_than_equal": "allowed {le} or less",
    "less_than": "allowed below {lt}",
    "string_too_short": "allowed at least {min_length} characters",
    "string_too_long": "allowed at most {max_length} characters",
    "string_pattern_mismatch": "allowed text matching {pattern}",
}


def field_label(loc: Sequence[int | str]) -> str:
    """``("body", "scores", 3)`` -> ``scores[3]``: the name the form and the services use."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path") else list(loc)
    label = ""
    for part in parts:
        if label and (isinstance(part, int) or part.isdigit()):
            label += f"[{part}]"
        else:
            label += f".{part}" if label else str(part)
    return label or "body"


def _allowed(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind in _ALLOWED:
        return _ALLOWED[kind]
    ctx = error.get("ctx") or {}
    if kind in _BOUNDS:
        try:
            return _BOUNDS[kind].format(**{k: str(v) for k, v in ctx.items()})
        except KeyError:
            pass
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def validation_detail(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """The ``detail`` list of a 422: loc, msg (``field: what is allowed``) and type; JSON-safe."""
    detail = []
    for error in errors:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        label = field_label(loc)
        detail.append({"loc": loc, "msg": f"{label}: {_allowed(error)}", "type": error["type"]})
    return detail
