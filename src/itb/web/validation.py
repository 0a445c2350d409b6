"""A refused request as the API answers it: 422, each entry naming the field as the forms
label it (``filled_ml``, ``scores[3]``) and what is allowed, never echoing the input; and as a
page answers it: the same, in words a clinician reads (``New reservoir volume (mL): allowed at
most 4000 characters``), on the app's error page.

FastAPI's own handler echoes each refused input; ``NaN`` or ``Infinity`` cannot be encoded as
JSON, so a NaN dose turned the 422 into a 500 raised inside the handler itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from itb.clinic.auth import USERNAME_MAX_CHARS
from itb.clinic.services.implants import SERIAL_MAX_CHARS
from itb.clinic.services.lookups import REASON_MAX_CHARS
from itb.clinic.services.patients import MRN_MAX_CHARS, NAME_MAX_CHARS
from itb.clinic.services.screening import NOTES_MAX_CHARS
from itb.errors import InputError
from itb.programmer.program_table import DAY_NAMES
from itb.therapy import WEEKDAYS

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


# A form field as its page labels it (templates/*.html), for the error page's sentences.
FIELD_WORDS: dict[str, str] = {
    "patient_id": "Patient number in the address",
    "name": "Name",
    "mrn": "Medical record number",
    "birth_date": "Date of birth",
    "age_years": "Age in years",
    "origin": "Origin of spasticity",
    "clinician_id": "Responsible clinician",
    "model": "Pump model",
    "serial": "Serial",
    "at": "Date and time",
    "catheter_trimmed_cm": "Catheter cut off (cm)",
    "concentration_ug_per_ml": "Concentration (µg/mL)",
    "filled_ml": "New reservoir volume (mL)",
    "withdrawn_ml": "Withdrawn volume (mL)",
    "low_reservoir_alarm_ml": "Low-reservoir alarm (mL)",
    "rate_ug_per_day": "Continuous rate (µg/day)",
    "steps": "Flex steps",
    "phase": "Phase",
    "reason": "Reason",
    "notes": "Notes",
    "discrepancy_note": "Note",
    "dose_ug": "Bolus dose (µg)",
    "given_at": "Bolus given at",
    "acknowledge_discrepancy": "Acknowledge the flagged volume",
    "confirm": "Confirmation",
    "confirm_concentration_change": "Confirm the concentration change",
    "username": "Username",
    "password": "Password",
    "csrf_token": "The form's security token (reload the page)",
    "review_token": "The review of this program (review it again)",
    "step": "Step of the wizard",
    "notice": "Notice",
}


def field_words(loc: Sequence[int | str]) -> str:
    """The field as its form labels it: ``("body", "filled_ml")`` -> ``New reservoir volume
    (mL)``; a program's inner field by its place (``week.mon[0].rate_ug_per_h`` -> ``Monday,
    step 1: rate (µg/h)``); an unknown name in plain words (``scores[3]`` -> ``scores 3``)."""
    return path_words(field_label(loc))


_DAY_WORDS = dict(zip(WEEKDAYS, DAY_NAMES, strict=True))
# the last part of a program's field path, as the flex steps and boluses are labelled
_PART_WORDS = {
    "rate_ug_per_h": "rate (µg/h)",
    "start": "start time (HH:MM)",
    "dose_ug": "dose (µg)",
    "duration_min": "duration (min)",
}
_PATH = re.compile(
    r"(?:program\.)?(?:(?P<week>week)\.(?P<day>[a-z]{3})|(?P<list>steps|periodic_boluses|scores))"
    r"(?:\[(?P<index>\d+)\])?(?:\.(?P<part>[a-z_]+))?"
)


def path_words(label: str) -> str:
    """A field path in words: a form's field by its label, a program's step by its place."""
    if label in FIELD_WORDS:
        return FIELD_WORDS[label]
    match = _PATH.fullmatch(label)
    if match:
        where = _program_place(match)
        part = match["part"]
        return f"{where}: {_PART_WORDS.get(part, part.replace('_', ' '))}" if part else where
    words = label.replace("_", " ").replace(".", " ").replace("[", " ").replace("]", "")
    return words[:1].upper() + words[1:]


def _program_place(match: re.Match[str]) -> str:
    index = match["index"]
    if match["week"]:
        day = _DAY_WORDS.get(match["day"], match["day"])
        return f"Flex step {int(index) + 1}, {day}" if index else day
    kind = match["list"]
    if kind == "scores":
        return f"MAS score at hour {index}" if index else "MAS scores"
    if kind == "periodic_boluses":
        return f"Periodic bolus {int(index) + 1}" if index else "Periodic boluses"
    return f"Flex steps, line {int(index) + 1}" if index else "Flex steps"


# What the API asks for, in a page's terms (a reason written for both says the API's words).
_PAGE_TERMS = {
    "(confirm: true)": "(tick the confirmation box)",
    "confirm: true": "the confirmation box ticked",
}


def error_words(error: InputError) -> str:
    """A service's refusal on a page: the field as its form labels it, then the reason (the
    reason alone when it already is a whole sentence naming the field)."""
    reason = error.reason
    for api_words, page_words in _PAGE_TERMS.items():
        reason = reason.replace(api_words, page_words)
    label = error.field.split(" and ")[0]
    reason = re.sub(
        r"\b((?:program\.)?(?:week\.[a-z]{3}|steps|periodic_boluses)(?:\[\d+\])?(?:\.[a-z_]+)?)(=\S+)?",
        lambda m: path_words(m.group(1)),
        reason,
    )
    reason = _FIELD_NAME.sub(lambda m: FIELD_WORDS[m.group(0)], reason)
    return f"{path_words(label)}: {reason}"


# a form field's own name inside a reason (``rate_ug_per_day and steps given together``)
_FIELD_NAME = re.compile(r"\b(?:" + "|".join(n for n in FIELD_WORDS if "_" in n) + r")\b")


# The text fields' own limits (each defined by the service that checks it): a form field is
# cut off at 4000 characters before any route runs, but the page says the field's real limit.
FIELD_MAX_CHARS: dict[str, int] = {
    "name": NAME_MAX_CHARS,
    "mrn": MRN_MAX_CHARS,
    "serial": SERIAL_MAX_CHARS,
    "username": USERNAME_MAX_CHARS,
    "reason": REASON_MAX_CHARS,
    "discrepancy_note": REASON_MAX_CHARS,
    "notes": NOTES_MAX_CHARS,
}


def _allowed_words(error: Mapping[str, Any]) -> str:
    label = field_label(error.get("loc", ()))
    if error.get("type") == "string_too_long" and label in FIELD_MAX_CHARS:
        return f"allowed at most {FIELD_MAX_CHARS[label]} characters"
    return _allowed(error)


def validation_sentences(errors: Sequence[Any]) -> list[str]:
    """One sentence per refused field, for a page: the field in words and what is allowed."""
    return [f"{field_words(e.get('loc', ()))}: {_allowed_words(e)}." for e in errors]


def refused_in_path(errors: Sequence[Any]) -> bool:
    """An error in the address itself (``/patients/abc``): the page does not exist (404)."""
    return any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors)


def input_error_sentence(field: str, reason: str, message: str) -> str:
    """A service's refusal on the error page: the field as its form labels it, and the reason
    (:func:`error_words`)."""
    return error_words(InputError(field, reason, message))
