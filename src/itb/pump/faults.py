"""Fault injection: what a scenario, the simulator or a test does to a pump.

Theory of operation
-------------------
A fault is either the pump's (the motor stalls: the firmware sees it, stops delivery, raises
a latched alarm) or the world's (the catheter occludes, leaks or is cleared: the pump cannot see
it, only the patient can). The fault table below says which; the firmware handles a stall, the
world handles the rest.

    fault                stalls the motor until             world change
    motor_stall          recovery_h later (default 2 h)     -
    mri (peristaltic)    recovery_h later (default 6 h)     -
    mri (valve-gated)    the programmer clears the alarm    -
    catheter_occlusion   -                                  nothing reaches the spinal fluid
    catheter_leak        -                                  1 − leak_fraction reaches it
    catheter_cleared     -                                  everything reaches it again
"""

from __future__ import annotations

import enum
import math

from itb.pump.checks import CommandRejected
from itb.pump.hardware import PumpModel
from itb.pump.world import World
from itb.units import SECONDS_PER_HOUR

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

    @property
    def stalls_motor(self) -> bool:
        return self in (FaultKind.MOTOR_STALL, FaultKind.MRI)


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
