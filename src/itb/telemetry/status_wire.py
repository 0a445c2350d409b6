"""The pump's one status type on the wire: :class:`~itb.pump.status.PumpStatus` <-> JSON.

The wire keys are the status's field names, flat, with ``battery``, ``alarms``, ``bolus`` and
``patient_bolus_limits`` nested as objects and ``program`` as the program's dict
(``Program.to_dict()``, the scenario's [program] keys). Decoding is as strict as every other
message: unknown and missing keys, wrong types, out-of-range numbers and bad enum values each raise
:class:`MessageError` naming the field (``battery.eri_at``, ``alarms[0].kind``...), and the result
is the typed ``PumpStatus`` the firmware built, enums and program included. Nobody passes the
status around as a dict: this module is the only place that sees its wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from itb.pump.alarms import AlarmKind, Priority
from itb.pump.status import (
    AlarmStatus,
    BatteryStatus,
    BolusKind,
    BolusStatus,
    Mode,
    PatientBolusLimits,
    PumpStatus,
)
from itb.telemetry.validation import (
    JSON,
    MAX_COUNTER,
    MessageError,
    check_bool,
    check_enum,
    check_float,
    check_int,
    check_keys,
    check_object,
    check_optional_time,
    check_text,
    check_time,
    wire_value,
)
from itb.therapy import Program, ProgramError, program_from_dict

AMOUNT_MAX = 1e9  # a lifetime of delivery in µg or mL stays far below this
MAX_BATTERY_MAH = 1e6

STATUS_KEYS = [
    "serial", "model", "now", "mode", "program", "daily_dose_ug", "concentration_ug_per_ml",
    "reservoir_ml", "low_reservoir_alarm_ml", "battery", "alarms", "delivered_ug",
    "delivered_ml", "received_ug", "bolus", "patient_bolus_limits", "last_refill_at",
    "delivered_since_refill_ml", "next_patient_bolus_at",
]  # fmt: skip
BATTERY_KEYS = ["remaining_mah", "eri_at", "eos_at", "predicted_eri_at", "predicted_eos_at"]
ALARM_KEYS = ["kind", "priority", "at", "active"]
BOLUS_KEYS = ["kind", "dose_ug", "remaining_ml"]
PATIENT_LIMIT_KEYS = ["dose_ug", "duration_min", "lockout_min", "max_per_day"]
# Amounts at the top level, with their units (for the error message).
AMOUNTS = (
    ("daily_dose_ug", "µg/day"),
    ("reservoir_ml", "mL"),
    ("low_reservoir_alarm_ml", "mL"),
    ("delivered_ug", "µg"),
    ("delivered_ml", "mL"),
    ("received_ug", "µg"),
    ("delivered_since_refill_ml", "mL"),
)


# Encoding ------------------------------------------------------------------------------------
def _time(value: datetime | None) -> JSON:
    return None if value is None else value.isoformat()


def _program_wire(program: Program | None) -> JSON:
    if program is None:
        return None
    return check_object(program.to_dict(), "program")


def status_to_wire(status: PumpStatus) -> dict[str, JSON]:
    """The status as the pump sends it (JSON; the codec makes it canonical bytes)."""
    battery = status.battery
    bolus = status.bolus
    limits = status.patient_bolus_limits
    return {
        "serial": status.serial,
        "model": status.model,
        "now": _time(status.now),
        "mode": status.mode.value,
        "program": _program_wire(status.program),
        "daily_dose_ug": status.daily_dose_ug,
        "concentration_ug_per_ml": status.concentration_ug_per_ml,
        "reservoir_ml": status.reservoir_ml,
        "low_reservoir_alarm_ml": status.low_reservoir_alarm_ml,
        "battery": {name: wire_value(getattr(battery, name)) for name in BATTERY_KEYS},
        "alarms": [
            {name: wire_value(getattr(a, name)) for name in ALARM_KEYS} for a in status.alarms
        ],
        "delivered_ug": status.delivered_ug,
        "delivered_ml": status.delivered_ml,
        "received_ug": status.received_ug,
        "bolus": None if bolus is None else {n: wire_value(getattr(bolus, n)) for n in BOLUS_KEYS},
        "patient_bolus_limits": (
            None if limits is None else {n: getattr(limits, n) for n in PATIENT_LIMIT_KEYS}
        ),
        "last_refill_at": _time(status.last_refill_at),
        "delivered_since_refill_ml": status.delivered_since_refill_ml,
        "next_patient_bolus_at": _time(status.next_patient_bolus_at),
    }


# Decoding ------------------------------------------------------------------------------------
def _amount(value: object, name: str, unit: str) -> float:
    return check_float(value, name, 0.0, AMOUNT_MAX, unit)


def _program(value: object) -> Program | None:
    if value is None:
        return None
    data = check_object(value, "program")
    try:
        return program_from_dict(dict(data))
    except (ProgramError, ValueError) as error:
        raise MessageError("program", str(error)) from None


def _battery(value: object) -> BatteryStatus:
    data = check_keys(value, BATTERY_KEYS, "battery")
    remaining = check_float(
        data["remaining_mah"], "battery.remaining_mah", 0.0, MAX_BATTERY_MAH, "mAh"
    )
    times = {n: check_optional_time(data[n], f"battery.{n}") for n in BATTERY_KEYS[1:]}
    return BatteryStatus(remaining, **times)


def _alarm(value: object, where: str) -> AlarmStatus:
    data = check_keys(value, ALARM_KEYS, where)
    return AlarmStatus(
        check_enum(data["kind"], "alarms.kind", AlarmKind),
        check_enum(data["priority"], "alarms.priority", Priority),
        check_time(data["at"], "alarms.at"),
        check_bool(data["active"], "alarms.active"),
    )


def _alarms(value: object) -> tuple[AlarmStatus, ...]:
    if not isinstance(value, list | tuple):
        raise MessageError("alarms", "expected a list")
    return tuple(_alarm(item, f"alarms[{i}]") for i, item in enumerate(value))


def _bolus(value: object) -> BolusStatus | None:
    if value is None:
        return None
    data = check_keys(value, BOLUS_KEYS, "bolus")
    return BolusStatus(
        check_enum(data["kind"], "bolus.kind", BolusKind),
        _amount(data["dose_ug"], "bolus.dose_ug", "µg"),
        _amount(data["remaining_ml"], "bolus.remaining_ml", "mL"),
    )


def _patient_limits(value: object) -> PatientBolusLimits | None:
    if value is None:
        return None
    data = check_keys(value, PATIENT_LIMIT_KEYS, "patient_bolus_limits")
    return PatientBolusLimits(
        _amount(data["dose_ug"], "patient_bolus_limits.dose_ug", "µg"),
        _amount(data["duration_min"], "patient_bolus_limits.duration_min", "min"),
        _amount(data["lockout_min"], "patient_bolus_limits.lockout_min", "min"),
        check_int(data["max_per_day"], "patient_bolus_limits.max_per_day", 0, MAX_COUNTER),
    )


def _concentration(value: object) -> float | None:
    if value is None:
        return None  # the pump lost both memory banks and does not know
    return _amount(value, "concentration_ug_per_ml", "µg/mL")


def status_from_wire(value: object, where: str = "status") -> PumpStatus:
    """The typed status from its wire form; MessageError naming the first bad field."""
    data = check_keys(value, STATUS_KEYS, where)
    amounts = {name: _amount(data[name], name, unit) for name, unit in AMOUNTS}
    return PumpStatus(
        serial=check_text(data["serial"], "serial", 64),
        model=check_text(data["model"], "model", 64),
        now=check_time(data["now"], "now"),
        mode=check_enum(data["mode"], "mode", Mode),
        program=_program(data["program"]),
        concentration_ug_per_ml=_concentration(data["concentration_ug_per_ml"]),
        battery=_battery(data["battery"]),
        alarms=_alarms(data["alarms"]),
        bolus=_bolus(data["bolus"]),
        patient_bolus_limits=_patient_limits(data["patient_bolus_limits"]),
        last_refill_at=check_optional_time(data["last_refill_at"], "last_refill_at"),
        next_patient_bolus_at=check_optional_time(
            data["next_patient_bolus_at"], "next_patient_bolus_at"
        ),
        **amounts,
    )


def status_from_stored(status: Mapping[str, object]) -> PumpStatus:
    """A status stored in the wire form of before the predicted dates existed (the clinic's
    older interrogations): the missing keys read as null (not predicted), the rest as strictly
    as :func:`status_from_wire`."""
    data = dict(status)
    battery = data.get("battery")
    if isinstance(battery, dict):
        data["battery"] = {"predicted_eri_at": None, "predicted_eos_at": None, **battery}
    data.setdefault("next_patient_bolus_at", None)
    return status_from_wire(data)
