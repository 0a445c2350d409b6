"""The telemetry message catalogue: every request and response, and the envelopes they travel in.

Every message is a frozen, slotted dataclass that validates itself on construction, so a message
that exists is a message the pump may act on (shape and absolute ranges; the firmware still makes
the therapy decision). ``to_wire()`` gives a JSON-ready dict; ``from_wire()`` is its strict
inverse: unknown keys, wrong types, out-of-range numbers and bad enum values each raise
:class:`MessageError` naming the field and what is allowed.

The messages live by kind: requests.py (queries and commands), responses.py (answers; the
status is the pump's own ``PumpStatus``, wire form in status_wire.py), validation.py (the checks
and limits). This module adds the envelopes, the type registries, and re-exports the lot, so
``from itb.telemetry.messages import X`` names any message.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.telemetry.requests import (
    CLINICIAN_BOLUS_KINDS,
    HIGH_RISK_COMMANDS,
    ClearAlarm,
    Command,
    Commit,
    Interrogate,
    PatientBolusRequest,
    Prepare,
    Query,
    ReadEventLog,
    Refill,
    Request,
    ResumePump,
    SetClock,
    SetLowReservoirAlarm,
    SetPatientBolusLimits,
    SetProgram,
    StartBolus,
    StopPump,
    TestAlarm,
    new_request_id,
)
from itb.telemetry.responses import (
    Accepted,
    EventLogPage,
    LogRecord,
    Prepared,
    Refused,
    Rejected,
    Response,
    StatusReport,
)
from itb.telemetry.validation import (
    CHALLENGE_BYTES,
    JSON,
    MAX_CHALLENGE_LIFETIME_S,
    MAX_COUNTER,
    MAX_LOG_PAGE,
    MAX_TEXT_CHARS,
    MAX_VOLUME_ML,
    MessageError,
    check_int,
)

__all__ = [
    "CHALLENGE_BYTES", "CLINICIAN_BOLUS_KINDS", "HIGH_RISK_COMMANDS", "JSON",
    "MAX_CHALLENGE_LIFETIME_S", "MAX_COUNTER", "MAX_LOG_PAGE", "MAX_TEXT_CHARS", "MAX_VOLUME_ML",
    "REQUEST_TYPES", "RESPONSE_TYPES", "Accepted", "ClearAlarm", "Command", "Commit",
    "EventLogPage", "Interrogate", "LogRecord", "MessageError", "PatientBolusRequest", "Prepare",
    "Prepared", "Query", "ReadEventLog", "Refill", "Refused", "Rejected", "Request",
    "RequestEnvelope", "Response", "ResponseEnvelope", "ResumePump", "SessionGrant", "SetClock",
    "SetLowReservoirAlarm", "SetPatientBolusLimits", "SetProgram", "StartBolus", "StatusReport",
    "StopPump", "TestAlarm", "new_request_id",
]  # fmt: skip

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
        TestAlarm,
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
        check_int(self.counter, "counter", 1, MAX_COUNTER)
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
        return cls(check_int(counter, "counter", 1, MAX_COUNTER), request_type.from_wire(body))


@dataclass(frozen=True, slots=True)
class ResponseEnvelope:
    """A response; ``counter`` echoes the request it answers (0 when the request was unreadable)."""

    counter: int
    response: Response

    def __post_init__(self) -> None:
        check_int(self.counter, "counter", 0, MAX_COUNTER)
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
        return cls(check_int(counter, "counter", 0, MAX_COUNTER), response_type.from_wire(body))


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """The pump's handshake answer: the first command counter this session may use."""

    next_counter: int

    def __post_init__(self) -> None:
        check_int(self.next_counter, "next_counter", 1, MAX_COUNTER)

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
