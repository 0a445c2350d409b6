"""The pump's delivery modes and every legal change between them, as tables.

Theory of operation
-------------------
Everything that changes the firmware's mode is in :data:`TRANSITIONS`: a mode, a trigger (a
command or an event), the next mode. The firmware changes its mode in one place only
(``Firmware.change_mode``), which looks the change up here; a trigger missing from a mode's row is
refused with the reason in :data:`REFUSALS`. A pump starts in the mode of :data:`INITIAL`.

    mode         trigger          next mode     why
    running      stop             stopped       the clinician stops the pump
    running      program          running
    running      eos_reached      eos           90 days after ERI (S3 S21), the service
                                                life's shut-off (S3 S4), or a premature EOS (S5)
    running      settings_lost    safe_state    a low battery reset (S5 S7)
    stopped      resume           running
    stopped      program          stopped       a new program waits for resume
    stopped      eos_reached      eos
    stopped      settings_lost    safe_state
    safe_state   stop             stopped
    safe_state   program          running       a clinician's program ends the safe state
    safe_state   eos_reached      eos
    safe_state   settings_lost    safe_state
    eos          program          eos           settings may change; nothing is delivered

What each mode pumps is :data:`DELIVERY` (before it, and whatever the mode: a stalled motor or
an empty reservoir estimate pumps nothing):

    running      the schedule, plus a clinician or patient bolus; a bridge or priming bolus
                 replaces the schedule while it runs
    stopped      the model's minimum rate: stopping baclofen is not safe, it keeps the
                 catheter open (security.md)
    safe_state   the minimum rate, until a clinician reprograms (the settings were lost: both
                 memory banks failed, or a low battery reset)
    eos          nothing: delivery has stopped for good

Boluses start only in ``running`` (:data:`BOLUS_MODES`).
"""

from __future__ import annotations

import enum

from itb.pump.status import Mode


class Trigger(str, enum.Enum):
    STOP = "stop"
    RESUME = "resume"
    PROGRAM = "program"
    EOS_REACHED = "eos_reached"
    SETTINGS_LOST = "settings_lost"


class Delivery(enum.Enum):
    SCHEDULE = "schedule"
    MINIMUM_RATE = "minimum_rate"
    NOTHING = "nothing"


class Start(enum.Enum):
    IMPLANT = "implant"
    BOTH_BANKS_LOST = "both_banks_lost"


INITIAL: dict[Start, Mode] = {
    Start.IMPLANT: Mode.RUNNING,
    Start.BOTH_BANKS_LOST: Mode.SAFE_STATE,
}

TRANSITIONS: dict[Mode, dict[Trigger, Mode]] = {
    Mode.RUNNING: {
        Trigger.STOP: Mode.STOPPED,
        Trigger.PROGRAM: Mode.RUNNING,
        Trigger.EOS_REACHED: Mode.EOS,
        Trigger.SETTINGS_LOST: Mode.SAFE_STATE,
    },
    Mode.STOPPED: {
        Trigger.RESUME: Mode.RUNNING,
        Trigger.PROGRAM: Mode.STOPPED,
        Trigger.EOS_REACHED: Mode.EOS,
        Trigger.SETTINGS_LOST: Mode.SAFE_STATE,
    },
    Mode.SAFE_STATE: {
        Trigger.STOP: Mode.STOPPED,
        Trigger.PROGRAM: Mode.RUNNING,
        Trigger.EOS_REACHED: Mode.EOS,
        Trigger.SETTINGS_LOST: Mode.SAFE_STATE,
    },
    Mode.EOS: {
        Trigger.PROGRAM: Mode.EOS,
    },
}

# Why a trigger missing from a mode's row is refused (the refusal names the trigger's command).
REFUSALS: dict[tuple[Mode, Trigger], str] = {
    (Mode.RUNNING, Trigger.RESUME): "the pump is running, not stopped",
    (Mode.STOPPED, Trigger.STOP): "the pump is already stopped",
    (Mode.SAFE_STATE, Trigger.RESUME): "the pump is safe_state, not stopped",
    (Mode.EOS, Trigger.STOP): "the pump has reached end of service",
    (Mode.EOS, Trigger.RESUME): "the pump is eos, not stopped",
    (Mode.EOS, Trigger.EOS_REACHED): "the pump has reached end of service",
    (Mode.EOS, Trigger.SETTINGS_LOST): "the pump has reached end of service",
}

DELIVERY: dict[Mode, Delivery] = {
    Mode.RUNNING: Delivery.SCHEDULE,
    Mode.STOPPED: Delivery.MINIMUM_RATE,
    Mode.SAFE_STATE: Delivery.MINIMUM_RATE,
    Mode.EOS: Delivery.NOTHING,
}

BOLUS_MODES = frozenset({Mode.RUNNING})


def next_mode(mode: Mode, trigger: Trigger) -> Mode | None:
    """The mode after ``trigger``; None when the table refuses it (see :data:`REFUSALS`)."""
    return TRANSITIONS[mode].get(trigger)
