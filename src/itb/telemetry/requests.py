"""Requests: what the programmer and the patient's remote may ask of the pump.

Requests split in two: :class:`Query` (read-only, may be repeated freely) and :class:`Command`
(changes the pump; carries a ``request_id`` so that a retransmission is applied exactly once).
A high-risk command (``HIGH_RISK_COMMANDS``) travels in two steps: :class:`Prepare` carries it
(the pump checks it, changes nothing and answers ``Prepared`` with a summary and a fresh
challenge), then :class:`Commit` echoes the request id and the challenge.
Numbers with a unit say it in their name; times are naive datetimes on the pump clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from itb.drugs import BACLOFEN
from itb.guardrails import (
    BOLUS_DOSE,
    BOLUS_DURATION,
    LOW_RESERVOIR_ALARM,
    PATIENT_BOLUS_DOSE,
    PATIENT_BOLUS_LOCKOUT,
    PATIENT_BOLUS_PER_DAY,
)
from itb.pump.alarms import AlarmKind
from itb.pump.status import BolusKind
from itb.telemetry.validation import (
    JSON,
    MAX_COUNTER,
    MAX_LOG_PAGE,
    MAX_VOLUME_ML,
    MessageError,
    Wire,
    check_challenge,
    check_enum,
    check_float,
    check_guardrail,
    check_int,
    check_object,
    check_request_id,
    check_time,
    set_field,
)
from itb.therapy import ProgramError, program_from_dict

# The kinds a clinician's StartBolus may carry: the patient's own bolus goes only through
# PatientBolusRequest, so that the pump applies the clinician's patient limits to it.
CLINICIAN_BOLUS_KINDS = (BolusKind.CLINICIAN, BolusKind.BRIDGE, BolusKind.PRIMING)


def new_request_id(random_bytes: bytes) -> str:
    """A request id from 16 caller-supplied random bytes (the core never draws randomness)."""
    if len(random_bytes) != 16:
        raise MessageError("request_id", f"needs 16 random bytes, got {len(random_bytes)}")
    return random_bytes.hex()


# Requests --------------------------------------------------------------------------------------
class Request(Wire):
    __slots__ = ()


class Query(Request):
    """Read-only: may be sent again without a request id."""

    __slots__ = ()


class Command(Request):
    """Changes the pump: applied at most once per ``request_id``."""

    __slots__ = ()
    request_id: str


@dataclass(frozen=True, slots=True)
class Interrogate(Query):
    """Status, program, reservoir, battery and alarms in one answer (:class:`StatusReport`)."""

    type_name: ClassVar[str] = "interrogate"


@dataclass(frozen=True, slots=True)
class ReadEventLog(Query):
    """Event-log entries with ``seq > since_seq``, oldest first, at most ``limit``."""

    since_seq: int = 0
    limit: int = MAX_LOG_PAGE
    type_name: ClassVar[str] = "read_event_log"

    def __post_init__(self) -> None:
        check_int(self.since_seq, "since_seq", 0, MAX_COUNTER)
        check_int(self.limit, "limit", 1, MAX_LOG_PAGE)


@dataclass(frozen=True, slots=True)
class SetProgram(Command):
    """``program`` uses the scenario's [program] keys (``Program.to_dict()``)."""

    request_id: str
    program: dict[str, JSON]
    type_name: ClassVar[str] = "set_program"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_object(self.program, "program")
        try:
            program_from_dict(dict(self.program))
        except (ProgramError, ValueError) as error:
            raise MessageError("program", str(error)) from None


@dataclass(frozen=True, slots=True)
class SetLowReservoirAlarm(Command):
    request_id: str
    volume_ml: float
    type_name: ClassVar[str] = "set_low_reservoir_alarm"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        set_field(
            self, "volume_ml", check_guardrail(self.volume_ml, "volume_ml", LOW_RESERVOIR_ALARM)
        )


@dataclass(frozen=True, slots=True)
class StartBolus(Command):
    """A clinician, bridge or priming bolus: exactly one of ``dose_ug`` or ``volume_ml``."""

    request_id: str
    kind: BolusKind
    dose_ug: float | None = None
    volume_ml: float | None = None
    duration_min: float | None = None
    type_name: ClassVar[str] = "start_bolus"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        set_field(self, "kind", check_enum(self.kind, "kind", BolusKind, CLINICIAN_BOLUS_KINDS))
        if (self.dose_ug is None) == (self.volume_ml is None):
            raise MessageError("dose_ug", "give exactly one of dose_ug or volume_ml")
        if self.dose_ug is not None:
            dose = check_float(
                self.dose_ug, "dose_ug", 0.0, BOLUS_DOSE.absolute_max, "µg", low_open=True
            )
            set_field(self, "dose_ug", dose)
        if self.volume_ml is not None:
            volume = check_float(
                self.volume_ml, "volume_ml", 0.0, MAX_VOLUME_ML, "mL", low_open=True
            )
            set_field(self, "volume_ml", volume)
        if self.duration_min is not None:
            duration = check_guardrail(self.duration_min, "duration_min", BOLUS_DURATION)
            set_field(self, "duration_min", duration)


@dataclass(frozen=True, slots=True)
class StopPump(Command):
    request_id: str
    type_name: ClassVar[str] = "stop"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class ResumePump(Command):
    request_id: str
    type_name: ClassVar[str] = "resume"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class Refill(Command):
    request_id: str
    volume_ml: float
    concentration_ug_per_ml: float
    type_name: ClassVar[str] = "refill"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        volume = check_float(self.volume_ml, "volume_ml", 0.0, MAX_VOLUME_ML, "mL", low_open=True)
        set_field(self, "volume_ml", volume)
        concentration = check_float(
            self.concentration_ug_per_ml, "concentration_ug_per_ml", 0.0, math.inf, "µg/mL"
        )
        if concentration not in BACLOFEN.concentrations_ug_per_ml:
            allowed = ", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml)
            raise MessageError(
                "concentration_ug_per_ml", f"{concentration:g} µg/mL is not one of {allowed} µg/mL"
            )
        set_field(self, "concentration_ug_per_ml", concentration)


@dataclass(frozen=True, slots=True)
class ClearAlarm(Command):
    request_id: str
    kind: AlarmKind
    type_name: ClassVar[str] = "clear_alarm"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        set_field(self, "kind", check_enum(self.kind, "kind", AlarmKind))


@dataclass(frozen=True, slots=True)
class TestAlarm(Command):
    """Sound each alarm tone once (the pump logs ``alarm_test`` with the tones); clinician
    only, as every command the patient's role does not list."""

    request_id: str
    type_name: ClassVar[str] = "test_alarm"
    __test__: ClassVar[bool] = False  # a message, not a pytest test class

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class SetClock(Command):
    request_id: str
    new_time: datetime
    type_name: ClassVar[str] = "set_clock"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        set_field(self, "new_time", check_time(self.new_time, "new_time"))


@dataclass(frozen=True, slots=True)
class SetPatientBolusLimits(Command):
    """The limits within which the patient's remote may ask for a bolus."""

    request_id: str
    dose_ug: float
    duration_min: float
    lockout_min: float
    max_per_day: int
    type_name: ClassVar[str] = "set_patient_bolus_limits"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        set_field(self, "dose_ug", check_guardrail(self.dose_ug, "dose_ug", PATIENT_BOLUS_DOSE))
        duration = check_guardrail(self.duration_min, "duration_min", BOLUS_DURATION)
        set_field(self, "duration_min", duration)
        lockout = check_guardrail(self.lockout_min, "lockout_min", PATIENT_BOLUS_LOCKOUT)
        set_field(self, "lockout_min", lockout)
        check_int(self.max_per_day, "max_per_day", 0, int(PATIENT_BOLUS_PER_DAY.absolute_max))


@dataclass(frozen=True, slots=True)
class PatientBolusRequest(Command):
    """The patient's remote asks for one bolus; the firmware applies the clinician's limits."""

    request_id: str
    type_name: ClassVar[str] = "patient_bolus"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


# Two-step commands (docs/security.md): prepare, review, commit ------------------------------
@dataclass(frozen=True, slots=True)
class Prepare(Query):
    """Ask the pump to check a high-risk ``command`` without applying it.

    The pump answers :class:`Prepared` (what would change, and a fresh challenge) or
    :class:`Rejected` (the firmware's refusal); nothing changes either way. On the wire the
    command travels as ``{"type": ..., "body": ...}``, as in an envelope.
    """

    command: Command
    type_name: ClassVar[str] = "prepare"

    def __post_init__(self) -> None:
        if not isinstance(self.command, Command) or type(self.command) not in HIGH_RISK_COMMANDS:
            allowed = ", ".join(sorted(t.type_name for t in HIGH_RISK_COMMANDS))
            raise MessageError("command", f"expected one of the two-step commands: {allowed}")

    @property
    def request_id(self) -> str:
        return self.command.request_id

    def to_wire(self) -> dict[str, JSON]:
        return {"command": {"type": self.command.type_name, "body": self.command.to_wire()}}

    @classmethod
    def from_wire(cls, data: object, where: str = "") -> Prepare:
        if not isinstance(data, dict) or set(data) != {"command"}:
            raise MessageError(where or "prepare", "expected exactly the key command")
        inner = data["command"]
        if not isinstance(inner, dict) or set(inner) != {"type", "body"}:
            raise MessageError("command", "expected exactly the keys type, body")
        command_type = next((t for t in HIGH_RISK_COMMANDS if t.type_name == inner["type"]), None)
        if command_type is None:
            allowed = ", ".join(sorted(t.type_name for t in HIGH_RISK_COMMANDS))
            raise MessageError("command.type", f"{inner['type']!r} is not one of: {allowed}")
        return cls(command_type.from_wire(inner["body"], "command.body"))


@dataclass(frozen=True, slots=True)
class Commit(Command):
    """Apply the command prepared under ``request_id``, echoing the pump's ``challenge``."""

    request_id: str
    challenge: str
    type_name: ClassVar[str] = "commit"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_challenge(self.challenge)


# High-risk commands go only through Prepare/Commit; a bare one is refused by the pump. The
# rationale for the list is in docs/telemetry.md ("Two-step prepare/commit").
HIGH_RISK_COMMANDS: frozenset[type[Command]] = frozenset(
    {
        SetProgram,
        StartBolus,
        Refill,
        StopPump,
        ResumePump,
        SetPatientBolusLimits,
        SetLowReservoirAlarm,
        SetClock,
    }
)
