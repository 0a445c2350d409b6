"""The pump's non-volatile state: the memory image, boot after a reset, and the safe state.

Theory of operation
-------------------
What the pump keeps across a reset is everything in :class:`~itb.pump.firmware.Firmware` but
the world (the real reservoir and catheter are not the pump's). The image is canonical JSON
(sorted keys, no spaces) tagged with :data:`IMAGE_FORMAT`, so two pumps in the same state have
byte-identical images: a refused command is proven to change nothing by comparing images.

A pump process keeps the image in two parts (issue 13, hazard H54): the *settings image*
(:func:`settings_image`: everything but the log's entries, with the log's next sequence number)
in the dual-bank memory, and the event log in its own append-only journal
(:mod:`itb.pump.journal`). :func:`from_image` and :func:`boot` then take the log read back from
the journal; entries the settings image says existed but the journal cannot give back are
counted as lost, never silently renumbered.

At boot (:func:`boot`) the dual-bank memory (:mod:`itb.pump.memory`) gives the newest valid
image. One bad bank: the other one (last known good) with a non-critical memory alarm. Both bad,
an image that does not decode, or one from another pump: the safe state (:func:`safe_state`),
the model's minimum rate with a critical alarm until a clinician reprograms.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from itb.drugs import BACLOFEN
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.pump.alarms import Alarm, AlarmKind, Priority
from itb.pump.bolus import Bolus
from itb.pump.checks import CommandRejected
from itb.pump.eventlog import EventLog
from itb.pump.hardware import PumpModel, UnknownModelError, pump_model
from itb.pump.memory import DualBankMemory, MemoryCorrupted
from itb.pump.modes import INITIAL, Start
from itb.pump.spans import Span
from itb.pump.status import Mode, PatientBolusLimits
from itb.pump.world import World
from itb.therapy import Program, ProgramError, continuous, program_from_dict, to_pump_s
from itb.units import UL_PER_ML

if TYPE_CHECKING:
    from itb.pump.firmware import Firmware

IMAGE_FORMAT = 1
_INFINITY = "inf"  # JSON has no infinity: a stall until the programmer resets it
# What the µg accounting of a pump that lost its concentration assumes: the highest marketed
# concentration (S42 S43 S44 via itb.drugs), so that no dose ceiling is under-counted. Never
# reported: the status says the concentration is unknown.
LOST_CONCENTRATION_ACCOUNTING_UG_PER_ML = max(BACLOFEN.concentrations_ug_per_ml)


def to_state(fw: Firmware) -> dict[str, Any]:
    """What the pump keeps in non-volatile memory (the world is not the pump's)."""
    return {**_settings(fw), "log": fw.log.to_state()}


def settings_state(fw: Firmware) -> dict[str, Any]:
    """The image without the log's entries (they live in the journal): its size does not grow
    with the log. ``log_next_seq`` ties it to the journal."""
    return {**_settings(fw), "log_next_seq": fw.log.next_seq}


def settings_image(fw: Firmware) -> bytes:
    return json.dumps(settings_state(fw), sort_keys=True, separators=(",", ":")).encode()


def _settings(fw: Firmware) -> dict[str, Any]:
    limits = fw.patient_limits
    return {  # every key of the image but the log, in one place
        "format": IMAGE_FORMAT,
        "model": fw.model.name,
        "serial": fw.serial,
        "t_s": fw.t_s,
        "program": fw.program.to_dict(),
        "concentration_ug_per_ml": known_concentration(fw),  # null: lost with both banks
        "reservoir_ul": fw.reservoir_ul,
        "low_alarm_ul": fw.low_alarm_ul,
        "mode": fw.mode.value,
        "acc_ul": fw.acc_ul,
        "battery_used_uc": fw.battery_used_uc,
        "eri_s": fw.eri_s,
        "eos_s": fw.eos_s,
        "implanted_s": fw.implanted_s,  # the service life counts from here (S3 S4)
        "clock_offset_s": fw.clock_offset_s,  # the clinician's clock correction (clock.py)
        "stall_until_s": _time_to_state(fw.stall_until_s),
        "bolus": fw.bolus.to_state() if fw.bolus else None,
        "patient_limits": asdict(limits) if limits else None,
        "patient_bolus_times_s": fw.patient_bolus_times_s,
        "alarms": [a.to_dict() for a in fw.alarms.values()],
        "delivered_ul": fw.delivered_ul,
        "delivered_ug": fw.delivered_ug,
        "received_ug": fw.received_ug,
        "last_refill_s": fw.last_refill_s,
        "delivered_since_refill_ul": fw.delivered_since_refill_ul,
        "recent": [[s.start_s, s.end_s, s.scale, s.extra_ug_per_s] for s in fw.recent],
    }


def to_image(fw: Firmware) -> bytes:
    return json.dumps(to_state(fw), sort_keys=True, separators=(",", ":")).encode()


def from_image(
    cls: type[Firmware], image: bytes, world: World, log: EventLog | None = None
) -> Firmware:
    """Rebuild the pump from its memory image (a whole image, or a settings image with ``log``
    read back from its journal). Raises ValueError on a malformed image."""
    try:
        s = json.loads(image)
        if s.get("format") != IMAGE_FORMAT:
            raise ValueError(f"memory image format {s.get('format')!r}; expected {IMAGE_FORMAT}")
        log = _image_log(s, log)
        program = program_from_dict(s["program"])
        concentration = _optional_float(s["concentration_ug_per_ml"])
        fw = cls(
            model=pump_model(s["model"]),
            serial=str(s["serial"]),
            t_s=float(s["t_s"]),
            program=program,
            concentration_ug_per_ml=(
                LOST_CONCENTRATION_ACCOUNTING_UG_PER_ML if concentration is None else concentration
            ),
            concentration_lost=concentration is None,
            reservoir_ul=float(s["reservoir_ul"]),
            low_alarm_ul=float(s["low_alarm_ul"]),
            world=world,
            mode=Mode(s["mode"]),
            acc_ul=float(s["acc_ul"]),
            battery_used_uc=float(s["battery_used_uc"]),
            eri_s=_optional_float(s["eri_s"]),
            eos_s=_optional_float(s["eos_s"]),
            implanted_s=_optional_float(s.get("implanted_s")),  # absent in older images
            clock_offset_s=float(s.get("clock_offset_s", 0.0)),  # absent in older images
            stall_until_s=_time_from_state(s["stall_until_s"]),
            bolus=Bolus.from_state(s["bolus"]) if s["bolus"] else None,
            patient_limits=PatientBolusLimits(**s["patient_limits"])
            if s["patient_limits"]
            else None,
            patient_bolus_times_s=[float(t) for t in s["patient_bolus_times_s"]],
            alarms={a.kind: a for a in (Alarm.from_dict(d) for d in s["alarms"])},
            delivered_ul=float(s["delivered_ul"]),
            delivered_ug=float(s["delivered_ug"]),
            received_ug=float(s["received_ug"]),
            last_refill_s=float(s["last_refill_s"]),
            delivered_since_refill_ul=float(s["delivered_since_refill_ul"]),
            log=log,
        )
        fw.recent = deque(Span(a, b, fw.profile, sc, ex) for a, b, sc, ex in s["recent"])
        return fw
    except (KeyError, TypeError, ValueError, ProgramError, UnknownModelError) as err:
        raise ValueError(f"memory image is not a valid pump state: {err}") from None


def boot(
    cls: type[Firmware],
    memory: DualBankMemory,
    model: PumpModel,
    serial: str,
    at: datetime,
    world: World,
    log: EventLog | None = None,
) -> Firmware:
    """Start from non-volatile memory after a reset. One bad bank: fall back to the other
    (last known good) with a non-critical memory alarm. Both bad: the safe state, which keeps
    ``log`` (the journal's, when the log is kept apart) and adds its alarm to it."""
    bad = memory.bad_banks()
    try:
        fw = from_image(cls, memory.read(), world, log)
    except (MemoryCorrupted, ValueError):
        return safe_state(cls, model, serial, at, world, log)
    if fw.model.name != model.name or fw.serial != serial:
        return safe_state(cls, model, serial, at, world, log)
    if bad:
        fw.alarms[AlarmKind.MEMORY_ERROR] = Alarm(
            AlarmKind.MEMORY_ERROR, fw.t_s, Priority.NON_CRITICAL
        )
        fw.log.append(
            fw.t_s,
            "alarm",
            {
                "alarm": "memory_error",
                "priority": "non_critical",
                "detail": f"bank {bad[0]} failed its check; using the other",
            },
        )
    return fw


def safe_state(
    cls: type[Firmware],
    model: PumpModel,
    serial: str,
    at: datetime,
    world: World,
    log: EventLog | None = None,
) -> Firmware:
    """What a pump runs when both memory banks are corrupted: no trusted settings, so the
    minimum rate (stopping baclofen is not safe, security.md) and a critical alarm.
    The concentration is lost (reported as unknown, see the module docstring); the reservoir
    estimate is the model's full volume so that the minimum rate keeps the catheter open
    until a clinician interrogates and refills. A ``log`` that survived (kept apart from the
    settings) is kept, and the pump's clock starts no earlier than its newest entry."""
    t_s = max(to_pump_s(at), log.last_t_s or -math.inf) if log is not None else to_pump_s(at)
    concentration = LOST_CONCENTRATION_ACCOUNTING_UG_PER_ML
    fw = cls(
        model=model,
        serial=serial,
        t_s=t_s,
        program=minimum_program(model, concentration),
        concentration_ug_per_ml=concentration,
        concentration_lost=True,
        reservoir_ul=model.reservoir_ml * UL_PER_ML,
        low_alarm_ul=DEFAULT_LOW_RESERVOIR_ALARM_ML * UL_PER_ML,
        world=world,
        mode=INITIAL[Start.BOTH_BANKS_LOST],
        last_refill_s=t_s,
    )
    if log is not None:
        fw.log = log
    fw.raise_alarm(AlarmKind.MEMORY_ERROR, {"detail": "both settings banks failed their check"})
    return fw


def _image_log(state: dict[str, Any], log: EventLog | None) -> EventLog:
    """The log that goes with an image: the journal's, else the one inside an image that holds
    it whole; entries the image says existed but no journal gives back are counted as lost."""
    if log is None:
        if "log" in state:
            return EventLog.from_state(state["log"])
        log = EventLog()  # its journal is unreadable: every entry it held is counted as lost
    if "log_next_seq" in state:
        log.mark_lost_until(int(state["log_next_seq"]))
    return log


def known_concentration(fw: Firmware) -> float | None:
    """The concentration as the pump knows it; None after both memory banks were lost."""
    return None if fw.concentration_lost else fw.concentration_ug_per_ml


def require_known_concentration(fw: Firmware, what: str) -> None:
    """Refuse ``what`` (a program, a bolus, a resume: anything that turns µg into mL) while
    the pump does not know its concentration."""
    if fw.concentration_lost:
        raise CommandRejected(
            "concentration_ug_per_ml",
            f"the pump lost its memory and does not know the drug concentration; refill it "
            f"(the refill sets the concentration) before a {what}",
        )


def recover_concentration(fw: Firmware, concentration_ug_per_ml: float) -> None:
    """A refill told a pump that had lost it its concentration: the placeholder program
    becomes the model's minimum flow at that concentration (what the pump delivers anyway)."""
    if fw.concentration_lost:
        fw.program = minimum_program(fw.model, concentration_ug_per_ml)
        fw.concentration_lost = False


def minimum_program(model: PumpModel, concentration_ug_per_ml: float) -> Program:
    """The model's minimum flow as a program: what a pump with no trusted settings runs."""
    return continuous(model.min_flow_ml_per_day * concentration_ug_per_ml)


def _time_to_state(t_s: float | None) -> float | str | None:
    if t_s is None:
        return None
    return _INFINITY if math.isinf(t_s) else t_s


def _time_from_state(value: object) -> float | None:
    if value is None:
        return None
    return math.inf if value == _INFINITY else float(value)  # type: ignore[arg-type]


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
