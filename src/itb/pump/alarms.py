"""Alarm kinds, their priorities and tones, how each one is cleared, and the alarm test.

Tones and priorities follow the SynchroMed II patient information (S7 S21 S22 of domain.md):
non-critical alarms sound a single tone about hourly, critical ones a two-tone alarm; an
alarm's tone is its priority's (``PRIORITY_TONES``). The alarm test sounds each distinct tone
once (:func:`alarm_test_tones`), so a clinician can check the patient hears them. The 2011
reduced-battery-performance advisory names three failure modes and their alarms (S5 S7): a low
battery reset (critical: the pump lost its settings and runs a very low rate until
reprogrammed), a premature ERI (the non-critical ERI alarm) and a premature EOS (the critical EOS
alarm).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from itb.pump.checks import CommandRejected


class AlarmKind(str, enum.Enum):
    LOW_RESERVOIR = "low_reservoir"
    EMPTY_RESERVOIR = "empty_reservoir"
    ERI = "eri"
    EOS = "eos"
    MOTOR_STALL = "motor_stall"  # also the valve-gated pump's valve fault
    MEMORY_ERROR = "memory_error"
    LOW_BATTERY_RESET = "low_battery_reset"  # S5: settings lost, minimum rate until reprogrammed


class Priority(str, enum.Enum):
    NON_CRITICAL = "non_critical"
    CRITICAL = "critical"


class ClearedBy(str, enum.Enum):
    REFILL = "refill"  # the condition ends when the reservoir is refilled
    REPLACEMENT = "replacement"  # only a new pump ends it
    PROGRAMMER = "programmer"  # latches until a clinician clears it
    REPROGRAM = "reprogram"  # a clinician's new program ends it (the lost settings are back)


@dataclass(frozen=True, slots=True)
class Tone:
    """One alarm sound: its pattern, how long one sounding lasts, and how often it repeats."""

    pattern: str
    duration_s: float
    repeats: str

    def to_dict(self) -> dict[str, object]:
        """What the alarm-test log entry keeps of a tone it sounded (once)."""
        return {"pattern": self.pattern, "duration_s": self.duration_s}


# Domain.md "Alarm sounds" (S7 S21 S22): critical 3 s two-tone, non-critical 1 s single tone
# about hourly.
PRIORITY_TONES: dict[Priority, Tone] = {
    Priority.CRITICAL: Tone("two-tone", 3.0, "repeating"),
    Priority.NON_CRITICAL: Tone("single tone", 1.0, "about hourly"),
}


@dataclass(frozen=True, slots=True)
class AlarmRule:
    kind: AlarmKind
    priority: Priority
    cleared_by: ClearedBy

    @property
    def tone(self) -> Tone:
        return PRIORITY_TONES[self.priority]


ALARM_RULES: dict[AlarmKind, AlarmRule] = {
    rule.kind: rule
    for rule in (
        AlarmRule(AlarmKind.LOW_RESERVOIR, Priority.NON_CRITICAL, ClearedBy.REFILL),
        AlarmRule(AlarmKind.EMPTY_RESERVOIR, Priority.CRITICAL, ClearedBy.REFILL),
        AlarmRule(AlarmKind.ERI, Priority.NON_CRITICAL, ClearedBy.REPLACEMENT),
        AlarmRule(AlarmKind.EOS, Priority.CRITICAL, ClearedBy.REPLACEMENT),
        AlarmRule(AlarmKind.MOTOR_STALL, Priority.CRITICAL, ClearedBy.PROGRAMMER),
        AlarmRule(AlarmKind.MEMORY_ERROR, Priority.CRITICAL, ClearedBy.PROGRAMMER),
        AlarmRule(AlarmKind.LOW_BATTERY_RESET, Priority.CRITICAL, ClearedBy.REPROGRAM),
    )
}


@dataclass(slots=True)
class Alarm:
    """A raised alarm. It stays in the pump's list until its clearing rule ends it."""

    kind: AlarmKind
    raised_s: float
    priority: Priority

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "raised_s": self.raised_s, "priority": self.priority.value}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Alarm:
        raised_s = data["raised_s"]
        if not isinstance(raised_s, int | float):
            raise ValueError(f"alarm raised_s={raised_s!r}: expected a number")
        return cls(AlarmKind(str(data["kind"])), float(raised_s), Priority(str(data["priority"])))


def check_clearable(raised: Mapping[AlarmKind, Alarm], kind: object) -> AlarmKind:
    """``kind`` as an alarm the programmer may clear now, or the refusal naming ``kind``."""
    try:
        alarm_kind = AlarmKind(kind)
    except ValueError:
        raise CommandRejected("kind", f"{kind!r} is not an alarm kind") from None
    rule = ALARM_RULES[alarm_kind]
    if alarm_kind not in raised:
        raise CommandRejected("kind", f"no {alarm_kind.value} alarm is raised")
    if rule.cleared_by is not ClearedBy.PROGRAMMER:
        raise CommandRejected(
            "kind",
            f"{alarm_kind.value} is cleared by {rule.cleared_by.value}, not by the programmer",
        )
    return alarm_kind


# --- the alarm test ---------------------------------------------------------------------------
ALARM_TEST_EVENT = "alarm_test"  # its event-log kind


def alarm_test_tones() -> list[dict[str, object]]:
    """Each distinct tone the pump's alarms sound, once, the critical first: what an alarm test
    sounds and logs (``[{"priority", "pattern", "duration_s"}, ...]``)."""
    priorities = {rule.priority for rule in ALARM_RULES.values()}
    ordered = sorted(priorities, key=lambda p: p is not Priority.CRITICAL)
    return [{"priority": p.value, **PRIORITY_TONES[p].to_dict()} for p in ordered]
