"""What the family's page says, in a parent's words, each fact with its source (docs/family.md).

Pure: dates and days are passed in. The numbers come from their one home (the pump's alarm
rules, the seed's withdrawal signs and visit rhythm, the refill window); this module only puts
them into words and colours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from itb.programmer.patient import WITHDRAWAL_ADVICE, WITHDRAWAL_SIGNS
from itb.programmer.refill import DEFAULT_SAFETY_MARGIN_DAYS
from itb.pump.alarms import ALARM_RULES, AlarmKind, Priority

# Red: the low-reservoir alarm within the refill window, 3 to 5 days before it (S24), or past:
# the programmer's own safety margin, asked of its one home.
RED_WITHIN_DAYS = DEFAULT_SAFETY_MARGIN_DAYS
# Amber: within two weeks: time to be sure the refill visit is booked [R].
AMBER_WITHIN_DAYS = 14.0

# The seed (docs/family.md F1): "every one to two weeks" early on, then less often.
EARLY_PHASE_VISIT_EVERY_DAYS = (7, 14)
# The early phase lasts while the dose is still being changed: a dose change in this many days
# (the rhythm's longer end, [R]) or an implant this recent.
EARLY_PHASE_DAYS = 14

EMERGENCY_SIGNS = (
    "a high fever, confusion, a seizure, or stiffness so severe that breathing or swallowing is "
    "hard"
)  # S54 S55 S57: the severe end of withdrawal
GO_TO_EMERGENCY = (
    f"Go to the emergency department or call emergency services now if you see {EMERGENCY_SIGNS}."
    " Say: 'baclofen pump, possible baclofen withdrawal'. Bring the emergency card."
)  # S22 S59
SEED_SEEK_CARE = (
    "Seek medical attention as soon as possible if you suspect that the pump is not working "
    "properly."
)  # the seed, quoted


class Level(enum.StrEnum):
    """The countdown's colour."""

    OK = "ok"
    AMBER = "amber"
    RED = "red"


def days_in_words(days: float) -> str:
    """Days as a parent says them: "today", "in 4 days", "about 3 weeks", "about 2 months"."""
    if days < -0.5:
        late = round(-days)
        return f"{late} day{'s' if late != 1 else ''} ago"
    whole = round(days)
    if whole == 0:
        return "today"
    if whole == 1:
        return "tomorrow"
    if whole < 10:
        return f"in {whole} days"
    if whole < 60:
        return f"about {round(whole / 7)} weeks"
    return f"about {round(whole / 30.4)} months"


def countdown_level(days: float | None) -> Level:
    if days is None:
        return Level.OK
    if days <= RED_WITHIN_DAYS:
        return Level.RED
    if days <= AMBER_WITHIN_DAYS:
        return Level.AMBER
    return Level.OK


@dataclass(frozen=True, slots=True)
class AlarmWords:
    kind: AlarmKind
    sound: str  # as the family hears it
    means: str
    do_now: str
    call: str  # "the clinic today", "the clinic now"
    emergency: str  # when to go to the emergency department
    critical: bool


def _sound(kind: AlarmKind) -> str:
    """The tone from the pump's alarm rules (S7 S21 S22), in words a parent knows it by."""
    tone = ALARM_RULES[kind].tone
    name = f"{tone.pattern} alarm" if tone.pattern.endswith("-tone") else tone.pattern
    seconds = "second" if tone.duration_s == 1 else "seconds"
    return f"a {name} (about {tone.duration_s:g} {seconds}), {tone.repeats}"


_CALL_NOW = "Call the clinic now, day or night."
_WITHDRAWAL_ED = (
    "If you see any withdrawal sign below, go to the emergency department now: the medicine "
    "has stopped."
)

# What each alarm means for the family, what to do, whom to call (S7 S21 S22 S3 S19 S23).
_ALARM_MEANING: dict[AlarmKind, tuple[str, str, str, str]] = {
    AlarmKind.LOW_RESERVOIR: (
        "The pump is running low on medicine. It still works.",
        "Book or confirm the refill visit; it must be within days.",
        "Call the clinic today (office hours).",
        "Only if withdrawal signs appear.",
    ),
    AlarmKind.EMPTY_RESERVOIR: (
        "The pump is empty: baclofen has stopped.",
        "Watch your child closely for withdrawal signs; do not wait for the next visit.",
        _CALL_NOW,
        _WITHDRAWAL_ED,
    ),
    AlarmKind.ERI: (
        "The pump's battery is near its end. The pump still works for a while.",
        "Plan the replacement surgery with the clinic.",
        "Call the clinic this week.",
        "Only if withdrawal signs appear.",
    ),
    AlarmKind.EOS: (
        "The battery is finished: the pump has stopped giving baclofen.",
        "Watch your child closely for withdrawal signs.",
        _CALL_NOW,
        _WITHDRAWAL_ED,
    ),
    AlarmKind.MOTOR_STALL: (
        "The pump's motor has stopped (for example after an MRI scan): no baclofen is given.",
        "Watch for withdrawal signs; the pump needs a check.",
        _CALL_NOW,
        _WITHDRAWAL_ED,
    ),
    AlarmKind.MEMORY_ERROR: (
        "The pump found a fault in its memory and may not give its dose.",
        "Watch for withdrawal signs; the pump needs a check.",
        _CALL_NOW,
        _WITHDRAWAL_ED,
    ),
    AlarmKind.LOW_BATTERY_RESET: (
        "The pump lost its settings and gives only a very low dose until reprogrammed.",
        "Watch for withdrawal signs; the pump needs reprogramming today.",
        _CALL_NOW,
        _WITHDRAWAL_ED,
    ),
}


def alarm_words(kind: AlarmKind) -> AlarmWords:
    means, do_now, call, emergency = _ALARM_MEANING[kind]
    critical = ALARM_RULES[kind].priority is Priority.CRITICAL
    return AlarmWords(kind, _sound(kind), means, do_now, call, emergency, critical)


def all_alarm_words() -> list[AlarmWords]:
    """Every alarm, the critical (two-tone) ones first."""
    return sorted((alarm_words(k) for k in AlarmKind), key=lambda a: not a.critical)


WITHDRAWAL_CHECKLIST = WITHDRAWAL_SIGNS  # the seed's list (F3), one home
WITHDRAWAL_WHAT_TO_DO = WITHDRAWAL_ADVICE

BATTERY_WHY = (
    "The battery usually lasts six to seven years. The pump is replaced in a planned operation "
    "before the battery runs out, because when it runs out the pump stops and baclofen stops "
    "suddenly. The catheter stays; the operation is usually shorter than the first one and "
    "most children go home the same day."
)  # the seed; S3 S4 (delivery stops at end of service)

MRI_WARNING = (
    "MRI: tell the MRI team about the pump before the scan. The pump's motor can stop in the "
    "scanner; it must be checked by the ITB clinic after any MRI."
)  # S19 S23 (peristaltic pumps), S32 S34 (valve-gated pumps)
NEVER_STOP = (
    "Never stop intrathecal baclofen abruptly: sudden withdrawal can be life-threatening "
    "(high fever, confusion, rebound stiffness, seizures)."
)  # S54 S55 S56 S57, the label's boxed warning
