"""The firmware's answer to an interrogation: its state as one typed :class:`PumpStatus`.

Nothing here is re-derived: the ERI and EOS predictions are the firmware's own
(``Firmware.predicted_eri_s`` and ``predicted_eos_s``: the battery or the service life's
shut-off, whichever first), and the next patient bolus is the firmware's own checks, the ones
``Firmware.patient_bolus`` refuses with (:mod:`itb.pump.patient_gate`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from itb.pump import patient_gate
from itb.pump.status import AlarmStatus, BatteryStatus, BolusStatus, PumpStatus
from itb.therapy import to_pump_s
from itb.units import UL_PER_ML

if TYPE_CHECKING:
    from itb.pump.firmware import Firmware

# A prediction beyond what a datetime can hold (a pump that drains nothing) is no prediction.
_LATEST_S = to_pump_s(datetime(9999, 1, 1))


def firmware_status(fw: Firmware) -> PumpStatus:
    bolus = None
    if fw.bolus is not None:
        bolus = BolusStatus(fw.bolus.kind, fw.bolus.dose_ug, fw.bolus.remaining_ul / UL_PER_ML)
    patient_bolus = patient_gate.outlook(fw)
    # a pump that lost its concentration knows its minimum flow in mL, not its program in µg
    program = None if fw.concentration_lost else fw.program
    return PumpStatus(
        serial=fw.serial,
        model=fw.model.name,
        now=fw.clock_now,  # every time reported is on the pump's clock (clock.py)
        mode=fw.mode,
        program=program,
        daily_dose_ug=0.0 if program is None else program.daily_dose_ug(),
        concentration_ug_per_ml=None if fw.concentration_lost else fw.concentration_ug_per_ml,
        reservoir_ml=fw.reservoir_ml,
        low_reservoir_alarm_ml=fw.low_reservoir_alarm_ml,
        battery=battery_status(fw),
        alarms=tuple(
            AlarmStatus(a.kind, a.priority, fw.on_clock(a.raised_s), active=True)
            for a in sorted(fw.alarms.values(), key=lambda a: a.raised_s)
        ),
        delivered_ug=fw.delivered_ug,
        delivered_ml=fw.delivered_ul / UL_PER_ML,
        received_ug=fw.received_ug,
        bolus=bolus,
        patient_bolus_limits=fw.patient_limits,
        last_refill_at=fw.on_clock(fw.last_refill_s),
        delivered_since_refill_ml=fw.delivered_since_refill_ul / UL_PER_ML,
        next_patient_bolus_at=_at(fw, patient_bolus.next_s),
    )


def battery_status(fw: Firmware) -> BatteryStatus:
    """Entered ERI/EOS, and the firmware's prediction (equal to them once entered)."""
    return BatteryStatus(
        remaining_mah=fw.battery_remaining_mah(),
        eri_at=_at(fw, fw.eri_s),
        eos_at=_at(fw, fw.eos_s),
        predicted_eri_at=_at(fw, fw.predicted_eri_s()),
        predicted_eos_at=_at(fw, fw.predicted_eos_s()),
    )


def _at(fw: Firmware, t_s: float | None) -> datetime | None:
    if t_s is None or not math.isfinite(t_s) or t_s > _LATEST_S:
        return None
    return fw.on_clock(t_s)
