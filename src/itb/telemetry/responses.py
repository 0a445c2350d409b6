"""Responses: what the pump answers.

:class:`StatusReport` carries the pump's one status type (:class:`~itb.pump.status.PumpStatus`,
wire form in status_wire.py); :class:`EventLogPage` a page of the event log; :class:`Accepted`,
:class:`Rejected` and :class:`Prepared` answer commands; :class:`Refused` is the link's refusal,
with no detail so that a forger learns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from itb.pump.status import PumpStatus
from itb.telemetry.status_wire import status_from_wire, status_to_wire
from itb.telemetry.validation import (
    JSON,
    MAX_CHALLENGE_LIFETIME_S,
    MAX_COUNTER,
    MAX_LOG_PAGE,
    MessageError,
    Wire,
    check_challenge,
    check_float,
    check_int,
    check_object,
    check_request_id,
    check_text,
    check_time,
    set_field,
)


class Response(Wire):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class StatusReport(Response):
    """The answer to ``Interrogate``: the pump's own typed status (``Firmware.status()``).

    One interrogation is all a programmer needs: ``status.now`` is the pump's clock, so nobody
    opens a second session just to read the time.
    """

    status: PumpStatus
    type_name: ClassVar[str] = "status"

    def __post_init__(self) -> None:
        if not isinstance(self.status, PumpStatus):
            raise MessageError("status", "expected the pump's PumpStatus")

    def to_wire(self) -> dict[str, JSON]:
        return status_to_wire(self.status)

    @classmethod
    def from_wire(cls, data: object, where: str = "") -> StatusReport:
        return cls(status_from_wire(data, where or cls.type_name))


@dataclass(frozen=True, slots=True)
class LogRecord(Wire):
    """One pump event-log entry, as the firmware's ``LogEntry``."""

    seq: int
    at: datetime
    kind: str
    data: dict[str, JSON] = field(default_factory=dict)
    type_name: ClassVar[str] = "log_entry"

    def __post_init__(self) -> None:
        check_int(self.seq, "entries.seq", 0, MAX_COUNTER)
        set_field(self, "at", check_time(self.at, "entries.at"))
        check_text(self.kind, "entries.kind", 64)
        check_object(self.data, "entries.data")


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
        set_field(self, "entries", entries)
        check_int(self.next_seq, "next_seq", 0, MAX_COUNTER)
        check_int(self.lost_count, "lost_count", 0, MAX_COUNTER)
        if not isinstance(self.more, bool):
            raise MessageError("more", "expected true or false")


@dataclass(frozen=True, slots=True)
class Accepted(Response):
    """The command was applied (once)."""

    request_id: str
    type_name: ClassVar[str] = "accepted"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


@dataclass(frozen=True, slots=True)
class Rejected(Response):
    """The firmware refused the command and changed nothing; ``field`` and ``reason`` say why."""

    request_id: str
    field: str
    reason: str
    type_name: ClassVar[str] = "rejected"

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_text(self.field, "field", 100)
        check_text(self.reason, "reason")


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
        check_request_id(self.request_id)
        check_challenge(self.challenge)
        lifetime = check_float(
            self.expires_in_s, "expires_in_s", 0.0, MAX_CHALLENGE_LIFETIME_S, "s", low_open=True
        )
        set_field(self, "expires_in_s", lifetime)
        check_object(self.summary, "summary")


@dataclass(frozen=True, slots=True)
class Refused(Response):
    """Generic link refusal: no detail, so a forger learns nothing (the pump logs the reason)."""

    type_name: ClassVar[str] = "refused"
