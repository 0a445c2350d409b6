"""Small builders shared by the pump tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from itb.pump.firmware import Firmware, ImplantSettings
from itb.pump.hardware import pump_model
from itb.therapy import Program, continuous

START = datetime(2027, 1, 4, 8, 0)  # a Monday


def days(n: float) -> timedelta:
    return timedelta(days=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def new_pump(
    program: Program | None = None,
    *,
    model: str = "peristaltic-20",
    concentration_ug_per_ml: float = 500.0,
    volume_ml: float = 20.0,
    low_reservoir_alarm_ml: float = 2.0,
    catheter_primed: bool = True,
    record_received: bool = False,
) -> Firmware:
    settings = ImplantSettings(
        serial="T-1",
        concentration_ug_per_ml=concentration_ug_per_ml,
        volume_ml=volume_ml,
        program=program or continuous(600.0),
        low_reservoir_alarm_ml=low_reservoir_alarm_ml,
        catheter_primed=catheter_primed,
        record_received=record_received,
    )
    return Firmware.implant(pump_model(model), START, settings)


def alarm_times(fw: Firmware) -> dict[str, datetime]:
    return {str(e.data["alarm"]): e.at for e in fw.log.entries() if e.kind == "alarm"}
