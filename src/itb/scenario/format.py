"""Scenario files (TOML): one pump, its fill, its program and a timeline of events.

The format is documented in docs/scenario.md. Parsing is strict: an unknown key, a wrong type
or a value out of range is an error that names the field.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from itb.errors import InputError
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.pump.alarms import AlarmKind
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware, ImplantSettings
from itb.pump.hardware import DEFAULT_MODEL, FULL_CATHETER_VOLUME_ML, pump_model
from itb.pump.status import BolusKind, PatientBolusLimits
from itb.therapy import Program, ProgramError, program_from_dict
from itb.tomlfile import describe, read_toml
from itb.units import UnitError, parse_duration_s


class ScenarioError(InputError):
    """A scenario file that cannot be run; the message names the field."""

    def __init__(self, message: str, field: str = "scenario") -> None:
        super().__init__(field, message, message)

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, str]]:
        return (ScenarioError, (str(self), self.field))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PumpSection(_Strict):
    model: str = DEFAULT_MODEL
    start: datetime
    serial: str = "SIM-0001"
    low_reservoir_alarm_ml: float = DEFAULT_LOW_RESERVOIR_ALARM_ML
    catheter_volume_ml: float = Field(FULL_CATHETER_VOLUME_ML, ge=0.0, le=1.0)
    catheter_primed: bool = True
    flow_error_fraction: float = Field(0.0, ge=-0.5, le=0.5)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        pump_model(value)
        return value

    @field_validator("start")
    @classmethod
    def _naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("the pump clock has no UTC offset: write 2027-01-04T08:00:00")
        return value


class DrugSection(_Strict):
    concentration_ug_per_ml: float
    volume_ml: float = Field(gt=0.0)


class PatientBolusSection(_Strict):
    dose_ug: float
    duration_min: float
    lockout_min: float
    max_per_day: int


class SimulateSection(_Strict):
    until: str = "365d"


Action = Literal[
    "refill",
    "bolus",
    "stop",
    "resume",
    "program",
    "fault",
    "clear_alarm",
    "alarm_test",
    "patient_bolus",
    "alarm_threshold",
    "telemetry",
]


class Event(_Strict):
    at: datetime
    action: Action
    # refill
    volume_ml: float | None = None
    concentration_ug_per_ml: float | None = None
    # bolus
    kind: BolusKind = BolusKind.CLINICIAN
    dose_ug: float | None = None
    duration_min: float | None = None
    # program (the [program] keys)
    rate_ug_per_day: float | None = None
    steps: list[dict[str, Any]] | None = None
    week: dict[str, list[dict[str, Any]]] | None = None
    periodic_boluses: list[dict[str, Any]] | None = None
    # fault
    fault: FaultKind | None = None
    recovery_h: float | None = None
    leak_fraction: float = 0.5
    # clear_alarm
    alarm: AlarmKind | None = None
    # alarm_threshold
    low_reservoir_alarm_ml: float | None = None

    @model_validator(mode="after")
    def _needs(self) -> Event:
        required = {
            "refill": ("volume_ml", "concentration_ug_per_ml"),
            "fault": ("fault",),
            "clear_alarm": ("alarm",),
            "alarm_threshold": ("low_reservoir_alarm_ml",),
        }.get(self.action, ())
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"action {self.action!r} needs {', '.join(missing)}")
        if self.action == "program":
            self.program()
        return self

    def program(self) -> Program:
        keys = {
            k: getattr(self, k) for k in ("rate_ug_per_day", "steps", "week", "periodic_boluses")
        }
        return program_from_dict({k: v for k, v in keys.items() if v is not None})


class Scenario(_Strict):
    pump: PumpSection
    drug: DrugSection
    program: dict[str, Any]
    patient_bolus: PatientBolusSection | None = None
    events: list[Event] = []
    simulate: SimulateSection = SimulateSection()

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        self.compiled_program()
        previous = self.pump.start
        for i, event in enumerate(self.events):
            if event.at < previous:
                raise ValueError(
                    f"events[{i}].at={event.at.isoformat()}: events must be in time order, "
                    f"at or after the pump start"
                )
            previous = event.at
        parse_duration_s(self.simulate.until)
        try:  # the pump itself checks the fill, the threshold and the program against its model
            self.build_firmware()
        except CommandRejected as err:
            raise ValueError(f"{err.field}: {err.reason}") from None
        return self

    def compiled_program(self) -> Program:
        return program_from_dict(dict(self.program))

    def build_firmware(self, *, record_received: bool = False) -> Firmware:
        settings = ImplantSettings(
            serial=self.pump.serial,
            concentration_ug_per_ml=self.drug.concentration_ug_per_ml,
            volume_ml=self.drug.volume_ml,
            program=self.compiled_program(),
            low_reservoir_alarm_ml=self.pump.low_reservoir_alarm_ml,
            catheter_volume_ml=self.pump.catheter_volume_ml,
            catheter_primed=self.pump.catheter_primed,
            flow_error_fraction=self.pump.flow_error_fraction,
            record_received=record_received,
        )
        fw = Firmware.implant(pump_model(self.pump.model), self.pump.start, settings)
        if self.patient_bolus is not None:
            fw.set_patient_bolus_limits(
                self.pump.start, PatientBolusLimits(**self.patient_bolus.model_dump())
            )
        return fw


def parse_scenario(data: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(describe(err, "scenario")) from None
    except (ProgramError, UnitError) as err:
        raise ScenarioError(str(err)) from None


def load_scenario(path: Path | str) -> Scenario:
    return parse_scenario(read_toml(Path(path), ScenarioError, "scenario"))
