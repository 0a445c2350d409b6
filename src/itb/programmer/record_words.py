"""Pump log entries and visit details in words, with units: the one home for how a stored
record's kinds and fields read on a page or a report (never ``key=value`` or JSON).

A field's words come from its name: the label from :data:`FIELD_LABELS` (else the name in
words), the unit from its suffix (``_ml`` mL, ``_ug_per_day`` µg/day ...). A program reads as
its schedule's summary (:mod:`itb.programmer.program_table`); a time to the minute; a flag
yes or no; an empty value is left out. Pure: times are shown as stored (naive), the caller
names their zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from itb.errors import InputError
from itb.programmer.program_table import program_table

# name suffix -> unit shown after the number (longest first)
UNITS: tuple[tuple[str, str], ...] = (
    ("_ug_per_day", "µg/day"),
    ("_ug_per_ml", "µg/mL"),
    ("_ug_per_h", "µg/h"),
    ("_ml_per_day", "mL/day"),
    ("_percent", "%"),
    ("_mas", "MAS points"),
    ("_ug", "µg"),
    ("_ml", "mL"),
    ("_mah", "mAh"),
    ("_min", "min"),
    ("_cm", "cm"),
    ("_h", "h"),
    ("_s", "s"),
)

# field -> its label, where the name alone does not read well
FIELD_LABELS: dict[str, str] = {
    "volume_ml": "Filled to",
    "filled_ml": "Filled to",
    "withdrawn_ml": "Withdrawn",
    "expected_ml": "Expected in the reservoir",
    "discrepancy_ml": "Difference from the expected volume",
    "concentration_ug_per_ml": "Concentration",
    "dose_ug": "Dose",
    "given_at": "Given at",
    "first_daily_dose_ug": "First daily dose",
    "next_dose_ug": "Next screening dose",
    "not_before": "Not before",
    "max_fall_mas": "Largest MAS fall",
    "min_fall_mas": "MAS fall needed for a response",
    "positive": "Response",
    "decision": "Decision",
    "scores": "MAS by hour after the bolus",
    "cancelled_bolus": "Bolus cancelled",
    "catheter_trimmed_cm": "Catheter cut off",
    "low_reservoir_alarm_ml": "Low-reservoir alarm",
    "confirmation_reason": "Reason for the confirmation",
    "reason": "Reason",
    "priming_sent": "Priming bolus sent",
    "program": "Program",
    "old": "Before",
    "new": "After",
    "model": "Pump model",
    "serial": "Serial",
    "old_serial": "Old pump",
    "dose_words": "Sent",
    "daily_dose_ug": "Daily dose",
    "change_percent": "Change",
    "verdict": "Review",
    "tones": "Tones sounded",
}

# stored for the machinery (reconciliation, the review's checks), not for a reader
HIDDEN_FIELDS = frozenset({"seq_before", "checks", "discrepancy_check", "review_token"})

# an event kind or a visit kind as words
KIND_WORDS: dict[str, str] = {
    "screening_trial": "Screening trial",
    "implant": "Implant",
    "refill": "Refill",
    "programming": "Program change",
    "program": "Program change",
    "program_set": "Program set",
    "follow_up": "Follow-up visit",
    "replacement": "Pump replacement",
    "clinician_bolus": "Clinician bolus",
    "pump_stop": "Pump stopped",
    "pump_resume": "Pump restarted",
    "alarm_clear": "Alarm cleared",
    "bolus_start": "Bolus started",
    "bolus_end": "Bolus ended",
    "alarm": "Alarm",
    "alarm_raised": "Alarm raised",
    "alarm_cleared": "Alarm cleared",
    "alarm_test": "Alarm test",  # the visit and the pump's log entry (itb.pump.alarms)
    # alarm kinds (itb.pump.alarms)
    "eri": "Elective replacement indicator (battery)",
    "eos": "End of service (battery)",
    "low_reservoir": "Low reservoir",
    "empty_reservoir": "Empty reservoir",
    "motor_stall": "Motor stall",
}

_WORDS_VALUE = {
    "next_dose": "next dose",
    "candidate": "candidate for a pump",
    "ok": "no warning",
    "warn": "a warning, confirmed",
}


def kind_words(kind: str) -> str:
    """``screening_trial`` -> ``Screening trial``; an unknown kind in plain words."""
    return KIND_WORDS.get(kind) or _plain(kind)


def _plain(name: str) -> str:
    words = name.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]


# a dose per day stored under a plain ``_ug`` name
PER_DAY_FIELDS = frozenset({"daily_dose_ug", "first_daily_dose_ug"})


def field_unit(name: str) -> tuple[str, str]:
    """The field's label and unit: ``first_daily_dose_ug`` -> (``First daily dose``,
    ``µg/day``)."""
    if name in PER_DAY_FIELDS:
        return FIELD_LABELS.get(name) or _plain(name.removesuffix("_ug")), "µg/day"
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return FIELD_LABELS.get(name) or _plain(name.removesuffix(suffix)), unit
    return FIELD_LABELS.get(name) or _plain(name), ""


TimeWords = Callable[[datetime], str]


def minute(when: datetime) -> str:
    """A stored time to the minute, as stored (the caller may name its zone instead)."""
    return f"{when:%Y-%m-%d %H:%M}"


def _time_words(text: str, when: TimeWords) -> str | None:
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d)?", text):
        return None
    return when(datetime.fromisoformat(text))


def _program_words(value: Mapping[str, Any]) -> str | None:
    try:
        return program_table(dict(value)).summary
    except (InputError, TypeError, ValueError):
        return None


def value_words(name: str, value: Any, when: TimeWords = minute) -> str | None:
    """A stored value in words with its unit (a time by ``when``); None when there is
    nothing to say."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if name == "tones" and isinstance(value, list | tuple):
        return tones_words(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    _, unit = field_unit(name)
    if isinstance(value, int | float):
        return f"{value:.4g} {unit}".strip()
    if isinstance(value, str):
        return _time_words(value, when) or _WORDS_VALUE.get(value) or value.replace("_", " ")
    if isinstance(value, Mapping):
        return _mapping_words(name, value, when)
    if isinstance(value, list | tuple):
        said = [value_words(name, v, when) for v in value]
        return ", ".join(s for s in said if s) or None
    return str(value)


def tones_words(tones: Sequence[Any]) -> str:
    """An alarm test's tones (``itb.pump.alarms.alarm_test_tones``) as one phrase:
    ``critical two-tone (3 s) and non-critical single tone (1 s)``."""
    said = []
    for tone in tones:
        if not isinstance(tone, Mapping):
            continue
        priority = str(tone.get("priority", "")).replace("_", "-")
        seconds = tone.get("duration_s")
        length = f" ({seconds:g} s)" if isinstance(seconds, int | float) else ""
        said.append(f"{priority} {tone.get('pattern', 'tone')}{length}".strip())
    return " and ".join(said) or "none"


def _mapping_words(name: str, value: Mapping[str, Any], when: TimeWords) -> str | None:
    program = _program_words(value) if name in ("program", "old", "new") else None
    if program:
        return program
    if name == "scores":
        return ", ".join(f"hour {h}: {v:g}" for h, v in value.items() if isinstance(v, int | float))
    inner = [phrase.replace(": ", " ", 1) for phrase in details_words(value, when)]
    return ", ".join(p[:1].lower() + p[1:] for p in inner) or None


def details_words(details: Mapping[str, Any], when: TimeWords = minute) -> list[str]:
    """One phrase per field worth reading: ``Concentration: 500 µg/mL``; a time said by
    ``when`` (a page names the clinic's zone)."""
    out = []
    for name, value in details.items():
        if name in HIDDEN_FIELDS:
            continue
        said = value_words(name, value, when)
        if said is not None:
            label, _ = field_unit(name)
            out.append(f"{label}: {said}")
    return out


def record_sentence(details: Mapping[str, Any]) -> str:
    """The details as one sentence (phrases joined with "; ", ended with a full stop)."""
    phrases = details_words(details)
    return "; ".join(phrases) + "." if phrases else ""
