"""Fault injection: what a scenario, the simulator or a test does to a pump.

Theory of operation
-------------------
A fault is either the pump's (the firmware sees it, changes what it delivers, raises an alarm)
or the world's (the catheter occludes, leaks or is cleared: the pump cannot see it, only the
patient can). :func:`inject` is the one entry point; :data:`EFFECTS` says what each kind does.

    fault                effect           the pump then delivers                 alarm
    motor_stall          stall            nothing, recovery_h (default 2 h)      motor_stall
    mri (peristaltic)    stall            nothing, recovery_h (default 6 h)      motor_stall
    mri (valve-gated)    stall            nothing until the programmer clears    motor_stall
    catheter_occlusion   world            as before; none reaches the patient    -
    catheter_leak        world            as before; 1 − leak_fraction reaches   -
    catheter_cleared     world            as before; all reaches the patient     -
    low_battery_reset    settings lost    the minimum rate until reprogrammed    low_battery_reset
    premature_eri        battery at ERI   as before; EOS 90 days on              eri
    premature_eos        end of service   nothing, for good, from now            eos

The three battery faults are the failure modes of the 2011 SynchroMed II reduced-battery-
performance advisory (S5 S6 S7): a resistive film in the battery may cause a low battery reset
(critical alarm; the pump loses its program and runs a very low rate), a premature elective
replacement indicator (non-critical) or a premature end of service (critical). The maker
advises replacing the pump as soon as possible after any of them (S5).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from itb.pump import persistence
from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.hardware import PumpModel
from itb.pump.modes import Trigger
from itb.pump.world import World
from itb.therapy import from_pump_s
from itb.units import SECONDS_PER_HOUR, UC_PER_MAH

if TYPE_CHECKING:
    from itb.pump.firmware import Firmware

# Peristaltic stall after MRI: recovery within 2 to 24 h (S19 S23); default when none is given.
DEFAULT_MRI_RECOVERY_H = 6.0
DEFAULT_STALL_RECOVERY_H = 2.0
# A scenario may stall the motor for at most this long (30 days).
MAX_STALL_RECOVERY_H = 24 * 30.0


class FaultKind(str, enum.Enum):
    MOTOR_STALL = "motor_stall"
    MRI = "mri"
    CATHETER_OCCLUSION = "catheter_occlusion"
    CATHETER_LEAK = "catheter_leak"
    CATHETER_CLEARED = "catheter_cleared"
    LOW_BATTERY_RESET = "low_battery_reset"
    PREMATURE_ERI = "premature_eri"
    PREMATURE_EOS = "premature_eos"

    @property
    def stalls_motor(self) -> bool:
        return EFFECTS[self] is Effect.STALL


class Effect(enum.Enum):
    STALL = "stall"
    WORLD = "world"
    SETTINGS_LOST = "settings_lost"
    BATTERY_AT_ERI = "battery_at_eri"
    END_OF_SERVICE = "end_of_service"


EFFECTS: dict[FaultKind, Effect] = {
    FaultKind.MOTOR_STALL: Effect.STALL,
    FaultKind.MRI: Effect.STALL,
    FaultKind.CATHETER_OCCLUSION: Effect.WORLD,
    FaultKind.CATHETER_LEAK: Effect.WORLD,
    FaultKind.CATHETER_CLEARED: Effect.WORLD,
    FaultKind.LOW_BATTERY_RESET: Effect.SETTINGS_LOST,
    FaultKind.PREMATURE_ERI: Effect.BATTERY_AT_ERI,
    FaultKind.PREMATURE_EOS: Effect.END_OF_SERVICE,
}

BATTERY_FAULTS = frozenset(
    kind for kind, effect in EFFECTS.items() if effect not in (Effect.STALL, Effect.WORLD)
)


@dataclass(frozen=True, slots=True)
class FaultParams:
    recovery_h: float | None = None  # a stall: how long (default by kind)
    leak_fraction: float = 0.5  # a catheter leak: the share that does not reach the patient


def inject(fw: Firmware, kind: FaultKind, params: FaultParams = FaultParams()) -> None:
    """``kind`` happens to the pump now (``fw.t_s``); :class:`CommandRejected` when it cannot
    (a stall longer than allowed, a battery fault on a pump past it), changing nothing."""
    effect = EFFECTS[kind]
    if effect is Effect.WORLD:
        apply_catheter_fault(fw.world, kind, params.leak_fraction)
    elif effect is Effect.STALL:
        stall_motor(fw, stall_until_s(fw.model, kind, fw.t_s, params.recovery_h), kind.value)
    elif effect is Effect.SETTINGS_LOST:
        lose_settings(fw, kind.value)
    elif effect is Effect.BATTERY_AT_ERI:
        battery_at_eri(fw, kind.value)
    else:
        end_service(fw, kind.value)


def stall_motor(fw: Firmware, until_s: float, cause: str) -> None:
    """The motor stops until ``until_s`` (math.inf: until the programmer resets it)."""
    fw.stall_until_s = until_s if fw.stall_until_s is None else max(fw.stall_until_s, until_s)
    fw.bolus = None
    until = None if math.isinf(until_s) else from_pump_s(until_s).isoformat()
    fw.log.append(fw.t_s, "fault", {"fault": cause, "until": until})
    fw.raise_alarm(AlarmKind.MOTOR_STALL, {"cause": cause})


def lose_settings(fw: Firmware, cause: str) -> None:
    """A low battery reset (S5 S7): the program and the patient's bolus settings are gone; the
    model's minimum rate runs with a critical alarm until a clinician reprograms."""
    fw.change_mode(Trigger.SETTINGS_LOST, "fault")
    lost = fw.program.to_dict()
    fw.program = persistence.minimum_program(fw.model, fw.concentration_ug_per_ml)
    fw.bolus = None
    fw.patient_limits = None
    fw.log.append(fw.t_s, "fault", {"fault": cause, "lost_program": lost})
    fw.raise_alarm(AlarmKind.LOW_BATTERY_RESET, {"cause": cause})


def battery_at_eri(fw: Firmware, cause: str) -> None:
    """A premature ERI (S5): the battery is found at its ERI charge now; EOS follows as after
    any ERI (90 days, or the shut-off if sooner)."""
    if fw.eri_s is not None:
        raise CommandRejected("fault", "the pump is already past ERI")
    eri_charge_uc = fw.model.usable_charge_to_eri_mah * UC_PER_MAH
    fw.battery_used_uc = max(fw.battery_used_uc, eri_charge_uc)
    fw.log.append(fw.t_s, "fault", {"fault": cause})
    fw.enter_eri(cause)


def end_service(fw: Firmware, cause: str) -> None:
    """A premature EOS (S5): delivery stops for good now, without the 90 days' notice."""
    fw.change_mode(Trigger.EOS_REACHED, "fault")
    fw.eri_s = fw.t_s if fw.eri_s is None else fw.eri_s
    fw.eos_s = fw.t_s
    fw.bolus = None
    fw.log.append(fw.t_s, "fault", {"fault": cause})
    fw.raise_alarm(AlarmKind.EOS, {"cause": cause})


def stall_until_s(
    model: PumpModel, kind: FaultKind, now_s: float, recovery_h: float | None
) -> float:
    """When a stalling fault ends (pump seconds); ``math.inf``: when the programmer resets it."""
    if kind is FaultKind.MRI and not model.mri_recovers_by_itself:
        return math.inf  # the flow-activated valve stays shut until reset (S32 S34)
    default_h = DEFAULT_MRI_RECOVERY_H if kind is FaultKind.MRI else DEFAULT_STALL_RECOVERY_H
    hours = default_h if recovery_h is None else recovery_h
    if not (0.0 < hours <= MAX_STALL_RECOVERY_H):
        raise CommandRejected(
            "recovery_h", f"{hours:g} h; allowed above 0 up to {MAX_STALL_RECOVERY_H:g} h"
        )
    return now_s + hours * SECONDS_PER_HOUR


def apply_catheter_fault(world: World, kind: FaultKind, leak_fraction: float) -> None:
    """A catheter fault: a world change the pump cannot see (no log entry, no alarm)."""
    if kind is FaultKind.CATHETER_OCCLUSION:
        world.received_fraction = 0.0
    elif kind is FaultKind.CATHETER_LEAK:
        if not (0.0 < leak_fraction <= 1.0):
            raise CommandRejected("leak_fraction", f"{leak_fraction:g}; allowed above 0 up to 1")
        world.received_fraction = 1.0 - leak_fraction
    else:
        world.received_fraction = 1.0
