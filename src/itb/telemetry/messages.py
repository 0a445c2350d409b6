"""Typed telemetry messages: what the programmer and the patient's remote may ask, and the answers.

Every message is a frozen, slotted dataclass that validates itself on construction, so a message
that exists is a message the pump may act on (shape and absolute ranges; the firmware still makes
the therapy decision). ``to_wire()`` gives a JSON-ready dict; ``message_from_wire()`` is its strict
inverse: unknown keys, wrong types, out-of-range numbers and bad enum values each raise
:class:`MessageError` naming the field and what is allowed.

Requests split in two: :class:`Query` (read-only, may be repeated freely) and :class:`Command`
(changes the pump; carries a ``request_id`` so that a retransmission is applied exactly once).
A high-risk command (``HIGH_RISK_COMMANDS``) travels in two steps: :class:`Prepare` carries it
(the pump checks it, changes nothing and answers :class:`Prepared` with a summary and a fresh
challenge), then :class:`Commit` echoes the request id and the challenge.
Numbers with a unit say it in their name; times are naive datetimes on the pump clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar, TypeAlias, TypeVar

from itb.drugs import BACLOFEN
from itb.guardrails import (
    BOLUS_DOSE,
    BOLUS_DURATION,
    LOW_RESERVOIR_ALARM,
    PATIENT_BOLUS_DOSE,
    PATIENT_BOLUS_LOCKOUT,
    PATIENT_BOLUS_PER_DAY,
    Guardrail,
)
from itb.pump.hardware import MODELS
from itb.therapy import ProgramError, program_from_dict

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

MAX_COUNTER = 2**53 - 1  # largest integer every JSON reader keeps exactly
MAX_LOG_PAGE = 64  # entries per event-log page; the pump may return fewer to fit a frame
MAX_TEXT_CHARS = 500
MAX_JSON_DEPTH = 8  # opaque JSON (program, log data) nests no deeper than this
MAX_VOLUME_ML = max(model.reservoir_ml for model in MODELS.values())
REQUEST_ID_RE = re.compile(r"[0-9a-f]{32}")
CHALLENGE_BYTES = 16  # a prepare/commit challenge: 128 random bits, hex on the wire
CHALLENGE_RE = re.compile(f"[0-9a-f]{{{2 * CHALLENGE_BYTES}}}")
MAX_CHALLENGE_LIFETIME_S = 3600.0


class MessageError(ValueError):
    """A message that cannot exist. ``field`` names the culprit, ``reason`` says what is allowed."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class BolusKind(StrEnum):
    """Clinician-started boluses (the patient's own goes through :class:`PatientBolusRequest`)."""

    CLINICIAN = "clinician"
    BRIDGE = "bridge"
    PRIMING = "priming"


class AlarmKind(StrEnum):
    """Same values as the firmware's ``AlarmKind``; map with ``firmware.AlarmKind(kind.value)``."""

    LOW_RESERVOIR = "low_reservoir"
    EMPTY_RESERVOIR = "empty_reservoir"
    ERI = "eri"
    EOS = "eos"
    MOTOR_STALL = "motor_stall"
    MEMORY_ERROR = "memory_error"


def new_request_id(random_bytes: bytes) -> str:
    """A request id from 16 caller-supplied random bytes (the core never draws randomness)."""
    if len(random_bytes) != 16:
        raise MessageError("request_id", f"needs 16 random bytes, got {len(random_bytes)}")
    return random_bytes.hex()


# Validation helpers ------------------------------------------------------------------------------
def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(name, f"expected an integer from {low} to {high}")
    if not low <= value <= high:
        raise MessageError(name, f"{value} is outside the allowed range {low} to {high}")
    return value


def _check_float(
    value: object, name: str, low: float, high: float, unit: str, *, low_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(name, f"expected a number in {unit}")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        bracket = "more than" if low_open else "from"
        raise MessageError(
            name, f"{value!r} {unit} is outside the allowed range: {bracket} {low:g} to {high:g}"
        )
    return number


def _check_guardrail(value: object, name: str, rail: Guardrail) -> float:
    return _check_float(value, name, rail.absolute_min, rail.absolute_max, rail.unit)


def _check_text(value: object, name: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise MessageError(name, "expected a string")
    if not 1 <= len(value) <= max_chars:
        raise MessageError(name, f"expected 1 to {max_chars} characters, got {len(value)}")
    return value


def _check_request_id(value: object) -> str:
    if not isinstance(value, str) or REQUEST_ID_RE.fullmatch(value) is None:
        raise MessageError("request_id", "expected 32 lowercase hex digits")
    return value


def _check_challenge(value: object) -> str:
    if not isinstance(value, str) or CHALLENGE_RE.fullmatch(value) is None:
        raise MessageError("challenge", f"expected {2 * CHALLENGE_BYTES} lowercase hex digits")
    return value


def _check_time(value: object, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise MessageError(name, "expected an ISO 8601 time YYYY-MM-DDTHH:MM:SS") from None
    if not isinstance(value, datetime):
        raise MessageError(name, "expected an ISO 8601 time YYYY-MM-DDTHH:MM:SS")
    if value.tzinfo is not None:
        raise MessageError(name, "the pump clock has no UTC offset; give a naive time")
    if not 2000 <= value.year <= 2100:
        raise MessageError(name, f"year {value.year} is outside the allowed range 2000 to 2100")
    return value


def _check_enum(value: object, name: str, enum_type: type[_E]) -> _E:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise MessageError(name, f"{value!r} is not one of: {allowed}") from None


_E = TypeVar("_E", bound=Enum)


def _check_json(value: object, name: str, depth: int = 0) -> None:
    """Opaque JSON (a program, log data): plain types, finite numbers, bounded depth."""
    if depth > MAX_JSON_DEPTH:
        raise MessageError(name, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MessageError(name, "numbers must be finite")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{name}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MessageError(name, "object keys must be strings")
            _check_json(item, f"{name}.{key}", depth + 1)
        return
    raise MessageError(name, f"{type(value).__name__} is not a JSON value")


def _check_object(value: object, name: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise MessageError(name, "expected an object")
    _check_json(value, name)
    return value


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)  # normalising a field of a frozen dataclass


def _wire_value(value: object) -> JSON:
    if isinstance(value, Enum):
        return _wire_value(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_wire_value(item) for item in value]
    if isinstance(value, _Wire):
        return value.to_wire()
    return value  # type: ignore[return-value]  # already JSON (checked on construction)


class _Wire:
    """Mixin: a dataclass whose fields map one-to-one to wire keys."""

    __slots__ = ()
    type_name: ClassVar[str] = ""

    def to_wire(self) -> dict[str, JSON]:
        return {f.name: _wire_value(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_wire(cls, data: object, where: str = "") -> Any:
        if not isinstance(data, dict):
            raise MessageError(where or cls.type_name, "expected an object")
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise MessageError(where or cls.type_name, f"unknown keys {unknown}; known: {names}")
        missing = [n for n in names if n not in data]
        if missing:
            raise MessageError(where or cls.type_name, f"missing keys {missing}")
        return cls(**data)


# Requests --------------------------------------------------------------------------------------
class Request(_Wire):
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
        _check_int(self.since_seq, "since_seq", 0, MAX_COUNTER)
        _check_int(self.limit, "limit", 1, MAX_LOG_PAGE)


@dataclass(frozen=True, slots=True)
class SetProgram(Command):
    """``program`` uses the scenario's [program] keys (``Program.to_dict()``)."""

    request_id: str
    program: dict[str, JSON]
    type_name: ClassVar[str] = "set_program"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_object(self.program, "program")
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
        _check_request_id(self.request_id)
        _set(self, "volume_ml", _check_guardrail(self.volume_ml, "volume_ml", LOW_RESERVOIR_ALARM))


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
        _check_request_id(self.request_id)
        _set(self, "kind", _check_enum(self.kind, "kind", BolusKind))
        if (self.dose_ug is None) == (self.volume_ml is None):
            raise MessageError("dose_ug", "give exactly one of dose_ug or volume_ml")
        if self.dose_ug is not None:
            dose = _check_float(
                self.dose_ug, "dose_ug", 0.0, BOLUS_DOSE.absolute_max, "µg", low_open=True
            )
            _set(self, "dose_ug", dose)
        if self.volume_ml is not None:
            volume = _check_float(
                self.volume_ml, "volume_ml", 0.0, MAX_VOLUME_ML, "mL", low_open=True
            )
            _set(self, "volume_ml", volume)
        if self.duration_min is not None:
            duration = _check_guardrail(self.duration_min, "duration_min", BOLUS_DURATION)
            _set(self, "duration_min", duration)


@dataclass(frozen=True, slots=True)
class StopPump(Command):
    request_id: str
    type_name: ClassVar[str] = "stop"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class ResumePump(Command):
    request_id: str
    type_name: ClassVar[str] = "resume"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class Refill(Command):
    request_id: str
    volume_ml: float
    concentration_ug_per_ml: float
    type_name: ClassVar[str] = "refill"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        volume = _check_float(self.volume_ml, "volume_ml", 0.0, MAX_VOLUME_ML, "mL", low_open=True)
        _set(self, "volume_ml", volume)
        concentration = _check_float(
            self.concentration_ug_per_ml, "concentration_ug_per_ml", 0.0, math.inf, "µg/mL"
        )
        if concentration not in BACLOFEN.concentrations_ug_per_ml:
            allowed = ", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml)
            raise MessageError(
                "concentration_ug_per_ml", f"{concentration:g} µg/mL is not one of {allowed} µg/mL"
            )
        _set(self, "concentration_ug_per_ml", concentration)


@dataclass(frozen=True, slots=True)
class ClearAlarm(Command):
    request_id: str
    kind: AlarmKind
    type_name: ClassVar[str] = "clear_alarm"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _set(self, "kind", _check_enum(self.kind, "kind", AlarmKind))


@dataclass(frozen=True, slots=True)
class SetClock(Command):
    request_id: str
    new_time: datetime
    type_name: ClassVar[str] = "set_clock"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _set(self, "new_time", _check_time(self.new_time, "new_time"))


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
        _check_request_id(self.request_id)
        _set(self, "dose_ug", _check_guardrail(self.dose_ug, "dose_ug", PATIENT_BOLUS_DOSE))
        duration = _check_guardrail(self.duration_min, "duration_min", BOLUS_DURATION)
        _set(self, "duration_min", duration)
        lockout = _check_guardrail(self.lockout_min, "lockout_min", PATIENT_BOLUS_LOCKOUT)
        _set(self, "lockout_min", lockout)
        _check_int(self.max_per_day, "max_per_day", 0, int(PATIENT_BOLUS_PER_DAY.absolute_max))


@dataclass(frozen=True, slots=True)
class PatientBolusRequest(Command):
    """The patient's remote asks for one bolus; the firmware applies the clinician's limits."""

    request_id: str
    type_name: ClassVar[str] = "patient_bolus"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


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
        _check_request_id(self.request_id)
        _check_challenge(self.challenge)


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


# Responses -------------------------------------------------------------------------------------
class Response(_Wire):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class BatteryReport(_Wire):
    remaining_mah: float
    eri_at: datetime | None
    eos_at: datetime | None
    type_name: ClassVar[str] = "battery"

    def __post_init__(self) -> None:
        _set(
            self,
            "remaining_mah",
            _check_float(self.remaining_mah, "battery.remaining_mah", 0.0, 1e6, "mAh"),
        )
        for name in ("eri_at", "eos_at"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _check_time(value, f"battery.{name}"))


@dataclass(frozen=True, slots=True)
class AlarmReport(_Wire):
    kind: AlarmKind
    priority: str
    at: datetime
    active: bool
    type_name: ClassVar[str] = "alarm"

    def __post_init__(self) -> None:
        _set(self, "kind", _check_enum(self.kind, "alarms.kind", AlarmKind))
        _check_text(self.priority, "alarms.priority", 32)
        _set(self, "at", _check_time(self.at, "alarms.at"))
        if not isinstance(self.active, bool):
            raise MessageError("alarms.active", "expected true or false")


_AMOUNT_MAX = 1e9  # a lifetime of delivery in µg or mL stays far below this


@dataclass(frozen=True, slots=True)
class StatusReport(Response):
    """The answer to :class:`Interrogate`: the firmware's ``PumpStatus.to_dict()``, typed."""

    serial: str
    model: str
    now: datetime
    mode: str
    program: dict[str, JSON] | None
    daily_dose_ug: float
    concentration_ug_per_ml: float
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    battery: BatteryReport
    alarms: tuple[AlarmReport, ...]
    delivered_ug: float
    delivered_ml: float
    received_ug: float
    bolus: dict[str, JSON] | None
    patient_bolus_limits: dict[str, JSON] | None = None
    last_refill_at: datetime | None = None
    delivered_since_refill_ml: float = 0.0
    type_name: ClassVar[str] = "status"

    def __post_init__(self) -> None:
        for name in ("serial", "model", "mode"):
            _check_text(getattr(self, name), name, 64)
        _set(self, "now", _check_time(self.now, "now"))
        if self.program is not None:
            _check_object(self.program, "program")
        if self.bolus is not None:
            _check_object(self.bolus, "bolus")
        if self.patient_bolus_limits is not None:
            _check_object(self.patient_bolus_limits, "patient_bolus_limits")
        if self.last_refill_at is not None:
            _set(self, "last_refill_at", _check_time(self.last_refill_at, "last_refill_at"))
        for name, unit in (
            ("daily_dose_ug", "µg/day"),
            ("concentration_ug_per_ml", "µg/mL"),
            ("reservoir_ml", "mL"),
            ("low_reservoir_alarm_ml", "mL"),
            ("delivered_ug", "µg"),
            ("delivered_ml", "mL"),
            ("received_ug", "µg"),
            ("delivered_since_refill_ml", "mL"),
        ):
            _set(self, name, _check_float(getattr(self, name), name, 0.0, _AMOUNT_MAX, unit))
        battery = self.battery
        if not isinstance(battery, BatteryReport):
            battery = BatteryReport.from_wire(battery, "battery")
        _set(self, "battery", battery)
        if not isinstance(self.alarms, list | tuple):
            raise MessageError("alarms", "expected a list")
        alarms = tuple(
            a if isinstance(a, AlarmReport) else AlarmReport.from_wire(a, f"alarms[{i}]")
            for i, a in enumerate(self.alarms)
        )
        _set(self, "alarms", alarms)

    @classmethod
    def from_status_dict(cls, status: Mapping[str, object]) -> StatusReport:
        """From the firmware's ``PumpStatus.to_dict()`` (datetimes or ISO strings both accepted)."""
        result: StatusReport = cls.from_wire(dict(status), "status")
        return result


@dataclass(frozen=True, slots=True)
class LogRecord(_Wire):
    """One pump event-log entry, as the firmware's ``LogEntry``."""

    seq: int
    at: datetime
    kind: str
    data: dict[str, JSON] = field(default_factory=dict)
    type_name: ClassVar[str] = "log_entry"

    def __post_init__(self) -> None:
        _check_int(self.seq, "entries.seq", 0, MAX_COUNTER)
        _set(self, "at", _check_time(self.at, "entries.at"))
        _check_text(self.kind, "entries.kind", 64)
        _check_object(self.data, "entries.data")


@dataclass(frozen=True, slots=True)
class EventLogPage(Response):
    """Entries after the asked ``since_seq``; ask again from ``next_seq`` while ``more``."""

    entries: tuple[LogRecord, ...]
    next_seq: int
    more: bool
    lost_count: int
    type_name: ClassVar[str] = "event_log_page"

    def __post_init__(self) -> None:
        if not isinstance(self.entries, list | tuple):
            raise MessageError("entries", "expected a list")
        if len(self.entries) > MAX_LOG_PAGE:
            raise MessageError("entries", f"at most {MAX_LOG_PAGE} entries a page")
        entries = tuple(
            e if isinstance(e, LogRecord) else LogRecord.from_wire(e, f"entries[{i}]")
            for i, e in enumerate(self.entries)
        )
        _set(self, "entries", entries)
        _check_int(self.next_seq, "next_seq", 0, MAX_COUNTER)
        _check_int(self.lost_count, "lost_count", 0, MAX_COUNTER)
        if not isinstance(self.more, bool):
            raise MessageError("more", "expected true or false")


@dataclass(frozen=True, slots=True)
class Accepted(Response):
    """The command was applied (once)."""

    request_id: str
    type_name: ClassVar[str] = "accepted"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class Rejected(Response):
    """The firmware refused the command and changed nothing; ``field`` and ``reason`` say why."""

    request_id: str
    field: str
    reason: str
    type_name: ClassVar[str] = "rejected"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_text(self.field, "field", 100)
        _check_text(self.reason, "reason")


@dataclass(frozen=True, slots=True)
class Prepared(Response):
    """The pump checked a prepared command: ``summary`` says what would change (old and new,
    units in the key names); commit it with ``challenge`` within ``expires_in_s`` seconds."""

    request_id: str
    challenge: str
    expires_in_s: float
    summary: dict[str, JSON]
    type_name: ClassVar[str] = "prepared"

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_challenge(self.challenge)
        lifetime = _check_float(
            self.expires_in_s, "expires_in_s", 0.0, MAX_CHALLENGE_LIFETIME_S, "s", low_open=True
        )
        _set(self, "expires_in_s", lifetime)
        _check_object(self.summary, "summary")


@dataclass(frozen=True, slots=True)
class Refused(Response):
    """Generic link refusal: no detail, so a forger learns nothing (the pump logs the reason)."""

    type_name: ClassVar[str] = "refused"


REQUEST_TYPES: dict[str, type[Request]] = {
    cls.type_name: cls
    for cls in (
        Interrogate,
        ReadEventLog,
        SetProgram,
        SetLowReservoirAlarm,
        StartBolus,
        StopPump,
        ResumePump,
        Refill,
        ClearAlarm,
        SetClock,
        SetPatientBolusLimits,
        PatientBolusRequest,
        Prepare,
        Commit,
    )
}
RESPONSE_TYPES: dict[str, type[Response]] = {
    cls.type_name: cls
    for cls in (StatusReport, EventLogPage, Accepted, Rejected, Prepared, Refused)
}


# Envelopes: what travels inside one encrypted frame ------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestEnvelope:
    """A request and its command counter (strictly increasing, kept by the pump across restarts)."""

    counter: int
    request: Request

    def __post_init__(self) -> None:
        _check_int(self.counter, "counter", 1, MAX_COUNTER)
        if not isinstance(self.request, Request):
            raise MessageError("request", "expected a request message")

    def to_wire(self) -> dict[str, JSON]:
        return {
            "counter": self.counter,
            "type": self.request.type_name,
            "body": self.request.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: object) -> RequestEnvelope:
        counter, type_name, body = _envelope_parts(data)
        request_type = REQUEST_TYPES.get(type_name)
        if request_type is None:
            raise MessageError("type", f"{type_name!r} is not one of: {', '.join(REQUEST_TYPES)}")
        return cls(_check_int(counter, "counter", 1, MAX_COUNTER), request_type.from_wire(body))


@dataclass(frozen=True, slots=True)
class ResponseEnvelope:
    """A response; ``counter`` echoes the request it answers (0 when the request was unreadable)."""

    counter: int
    response: Response

    def __post_init__(self) -> None:
        _check_int(self.counter, "counter", 0, MAX_COUNTER)
        if not isinstance(self.response, Response):
            raise MessageError("response", "expected a response message")

    def to_wire(self) -> dict[str, JSON]:
        return {
            "counter": self.counter,
            "type": self.response.type_name,
            "body": self.response.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: object) -> ResponseEnvelope:
        counter, type_name, body = _envelope_parts(data)
        response_type = RESPONSE_TYPES.get(type_name)
        if response_type is None:
            allowed = ", ".join(RESPONSE_TYPES)
            raise MessageError("type", f"{type_name!r} is not one of: {allowed}")
        return cls(_check_int(counter, "counter", 0, MAX_COUNTER), response_type.from_wire(body))


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """The pump's handshake answer: the first command counter this session may use."""

    next_counter: int

    def __post_init__(self) -> None:
        _check_int(self.next_counter, "next_counter", 1, MAX_COUNTER)

    def to_wire(self) -> dict[str, JSON]:
        return {"next_counter": self.next_counter}

    @classmethod
    def from_wire(cls, data: object) -> SessionGrant:
        if not isinstance(data, dict) or set(data) != {"next_counter"}:
            raise MessageError("session_grant", "expected exactly the key next_counter")
        return cls(data["next_counter"])


def _envelope_parts(data: object) -> tuple[object, str, object]:
    if not isinstance(data, dict) or set(data) != {"counter", "type", "body"}:
        raise MessageError("envelope", "expected exactly the keys counter, type, body")
    type_name = data["type"]
    if not isinstance(type_name, str):
        raise MessageError("type", "expected a string")
    return data["counter"], type_name, data["body"]
