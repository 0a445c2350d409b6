"""Alarm kinds, their priorities and tones, and how each one is cleared.

Tones and priorities follow the SynchroMed II patient information (S7 S21 S22 of domain.md):
non-critical alarms sound a single tone about hourly, critical ones a two-tone alarm. The 2011
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
class AlarmRule:
    kind: AlarmKind
    priority: Priority
    tone: str
    cleared_by: ClearedBy


ALARM_RULES: dict[AlarmKind, AlarmRule] = {
    rule.kind: rule
    for rule in (
        AlarmRule(
            AlarmKind.LOW_RESERVOIR,
            Priority.NON_CRITICAL,
            "1 s single tone, hourly",
            ClearedBy.REFILL,
        ),
        AlarmRule(AlarmKind.EMPTY_RESERVOIR, Priority.CRITICAL, "3 s two-tone", ClearedBy.REFILL),
        AlarmRule(
            AlarmKind.ERI, Priority.NON_CRITICAL, "1 s single tone, hourly", ClearedBy.REPLACEMENT
        ),
        AlarmRule(AlarmKind.EOS, Priority.CRITICAL, "3 s two-tone", ClearedBy.REPLACEMENT),
        AlarmRule(AlarmKind.MOTOR_STALL, Priority.CRITICAL, "3 s two-tone", ClearedBy.PROGRAMMER),
        AlarmRule(AlarmKind.MEMORY_ERROR, Priority.CRITICAL, "3 s two-tone", ClearedBy.PROGRAMMER),
        AlarmRule(
            AlarmKind.LOW_BATTERY_RESET, Priority.CRITICAL, "3 s two-tone", ClearedBy.REPROGRAM
        ),
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
