"""What is chosen at implant, and the checks a new pump makes before it runs.

The model and the time are the firmware's own arguments; everything else a surgeon and a
clinician choose is one :class:`ImplantSettings` (or its fields as keywords, :class:`ImplantFields`,
so that ``Firmware.implant(model, at, serial=..., ...)`` reads as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Required, TypedDict

from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.pump.checks import (
    CommandRejected,
    check_concentration,
    check_fill,
    check_low_reservoir_alarm,
    check_program,
)
from itb.pump.hardware import FULL_CATHETER_VOLUME_ML, PumpModel
from itb.pump.modes import INITIAL, Start
from itb.pump.world import World
from itb.therapy import Program, to_pump_s
from itb.units import UL_PER_ML

if TYPE_CHECKING:
    from itb.pump.firmware import Firmware

# The catheter volume a scenario may give: 0 (no dead space modelled) to 1 mL.
MAX_CATHETER_VOLUME_ML = 1.0


@dataclass(frozen=True, slots=True)
class ImplantSettings:
    """Everything chosen at implant besides the model and the time."""

    serial: str
    concentration_ug_per_ml: float
    volume_ml: float
    program: Program
    low_reservoir_alarm_ml: float = DEFAULT_LOW_RESERVOIR_ALARM_ML
    catheter_volume_ml: float = FULL_CATHETER_VOLUME_ML
    # False: the tubing and catheter hold spinal fluid until a priming bolus pushes drug in.
    catheter_primed: bool = True
    flow_error_fraction: float = 0.0  # the world's, within the model's accuracy band
    record_received: bool = False  # keep every received span (simulation outputs)


class ImplantFields(TypedDict, total=False):
    """:class:`ImplantSettings` as keyword arguments of ``Firmware.implant``."""

    serial: Required[str]
    concentration_ug_per_ml: Required[float]
    volume_ml: Required[float]
    program: Required[Program]
    low_reservoir_alarm_ml: float
    catheter_volume_ml: float
    catheter_primed: bool
    flow_error_fraction: float
    record_received: bool


def check_implant(model: PumpModel, s: ImplantSettings) -> None:
    """The fill, the drug, the alarm, the catheter and the flow error a pump may start with
    (the program is checked by the firmware against the same concentration)."""
    check_concentration(s.concentration_ug_per_ml)
    check_fill(model, s.volume_ml)
    check_low_reservoir_alarm(model, s.low_reservoir_alarm_ml)
    if not (0.0 <= s.catheter_volume_ml <= MAX_CATHETER_VOLUME_ML):
        raise CommandRejected(
            "catheter_volume_ml", f"{s.catheter_volume_ml:g} mL; allowed 0 to 1 mL"
        )
    if abs(s.flow_error_fraction) > model.flow_accuracy_fraction:
        raise CommandRejected(
            "flow_error_fraction",
            f"{s.flow_error_fraction:g}; allowed within the model's accuracy band "
            f"±{model.flow_accuracy_fraction:g}",
        )


def build(cls: type[Firmware], model: PumpModel, at: datetime, s: ImplantSettings) -> Firmware:
    """A new pump, filled and programmed, with its world: checked, logged, alarms raised."""
    check_implant(model, s)
    world = World.implanted(
        model,
        s.volume_ml,
        s.concentration_ug_per_ml,
        s.catheter_volume_ml,
        catheter_primed=s.catheter_primed,
        flow_error_fraction=s.flow_error_fraction,
    )
    t_s = to_pump_s(at)
    fw = cls(
        model=model,
        serial=s.serial,
        t_s=t_s,
        program=s.program,
        concentration_ug_per_ml=s.concentration_ug_per_ml,
        reservoir_ul=s.volume_ml * UL_PER_ML,
        low_alarm_ul=s.low_reservoir_alarm_ml * UL_PER_ML,
        world=world,
        mode=INITIAL[Start.IMPLANT],
        last_refill_s=t_s,
        received_spans=[] if s.record_received else None,
        implanted_s=t_s,  # the service life's shut-off counts from here (S3 S4)
    )
    check_program(model, s.program, s.concentration_ug_per_ml)
    data = {
        "model": model.name,
        "serial": s.serial,
        "volume_ml": s.volume_ml,
        "concentration_ug_per_ml": s.concentration_ug_per_ml,
        "program": s.program.to_dict(),
    }
    fw.log.append(t_s, "implant", data)
    fw.check_reservoir_alarms()
    return fw
