"""A stand-in for the pump's command handler (the real one wraps the firmware), and key helpers."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itb.link.keys import generate_private_key, public_key_of
from itb.pump.status import BatteryStatus, Mode, PumpStatus
from itb.telemetry.endpoint import PairedKey, PumpEndpoint, RefusalReport, Role
from itb.telemetry.messages import (
    JSON,
    Accepted,
    Command,
    EventLogPage,
    Interrogate,
    LogRecord,
    PatientBolusRequest,
    ReadEventLog,
    Rejected,
    Request,
    Response,
    SetLowReservoirAlarm,
    SetProgram,
    StartBolus,
    StatusReport,
    StopPump,
)
from itb.therapy import program_from_dict

START = datetime(2024, 3, 1, 9, 0)


class FirmwareRefusalError(ValueError):
    """Shaped like the firmware's CommandRejected."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class FakePump:
    """Applies commands to a little state and logs each with its request id, as the pump will."""

    program: dict[str, JSON] = field(default_factory=lambda: {"rate_ug_per_day": 100.0})
    low_reservoir_alarm_ml: float = 2.0
    stopped: bool = False
    boluses_ug: list[float] = field(default_factory=list)
    log: list[LogRecord] = field(default_factory=list)
    refusals: list[RefusalReport] = field(default_factory=list)
    saved_states: list[dict[str, JSON]] = field(default_factory=list)
    applied: int = 0

    def therapy(self) -> tuple[object, ...]:
        """Everything a command could change (compare before and after an attack)."""
        return (
            dict(self.program), self.low_reservoir_alarm_ml, self.stopped,
            tuple(self.boluses_ug), self.applied,
        )  # fmt: skip

    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        if isinstance(request, Interrogate):
            return self.status()
        if isinstance(request, ReadEventLog):
            entries = [e for e in self.log if e.seq > request.since_seq]
            page = tuple(entries[: request.limit])
            next_seq = page[-1].seq if page else request.since_seq
            return EventLogPage(page, next_seq, len(entries) > len(page), 0)
        assert isinstance(request, Command)
        if isinstance(request, SetProgram):
            self.program = dict(request.program)
        elif isinstance(request, SetLowReservoirAlarm):
            self.low_reservoir_alarm_ml = request.volume_ml
        elif isinstance(request, StopPump):
            if self.stopped:
                raise FirmwareRefusalError("mode", "already stopped")
            self.stopped = True
        elif isinstance(request, StartBolus):
            self.boluses_ug.append(request.dose_ug or 0.0)
        elif isinstance(request, PatientBolusRequest):
            self.boluses_ug.append(10.0)
        else:
            return Rejected(request.request_id, "type", "not supported by the fake pump")
        self.applied += 1
        self.record(request.type_name, {"request_id": request.request_id, "key_id": key_id})
        return Accepted(request.request_id)

    def prepare(self, command: Command, role: Role, key_id: str) -> dict[str, JSON]:
        """The dry run: the command on a copy; what would change."""
        trial = FakePump(  # the therapy only: the log and refusals are not copied
            copy.deepcopy(self.program), self.low_reservoir_alarm_ml, self.stopped,
            list(self.boluses_ug), applied=self.applied,
        )  # fmt: skip
        response = trial.handle(command, role, key_id)
        if isinstance(response, Rejected):
            raise FirmwareRefusalError(response.field, response.reason)
        before, after = self.summary_view(), trial.summary_view()
        changes: dict[str, JSON] = {
            name: {"old": before[name], "new": after[name]}
            for name in before
            if before[name] != after[name]
        }
        return {"request": command.type_name, "changes": changes}

    def summary_view(self) -> dict[str, JSON]:
        return {
            "program": dict(self.program), "low_reservoir_alarm_ml": self.low_reservoir_alarm_ml,
            "stopped": self.stopped, "boluses_ug": list(self.boluses_ug),
        }  # fmt: skip

    def record(self, kind: str, data: dict[str, JSON]) -> None:
        seq = len(self.log) + 1
        self.log.append(LogRecord(seq, START + timedelta(minutes=seq), kind, data))

    def on_refused(self, report: RefusalReport) -> None:
        self.refusals.append(report)
        self.record(report.log_kind, report.to_log_data())

    def save_link_state(self, state: dict[str, JSON]) -> None:
        self.saved_states.append(state)

    def status(self) -> StatusReport:
        return StatusReport(PumpStatus(
            serial="SIM-0001", model="peristaltic-20", now=START, mode=Mode.STOPPED if self.stopped
            else Mode.RUNNING, program=program_from_dict(dict(self.program)), daily_dose_ug=100.0,
            concentration_ug_per_ml=500.0, reservoir_ml=18.5, low_reservoir_alarm_ml=
            self.low_reservoir_alarm_ml, battery=BatteryStatus(1800.0, None, None), alarms=(),
            delivered_ug=0.0, delivered_ml=0.0, received_ug=10000.0, bolus=None,
            patient_bolus_limits=None, last_refill_at=None, delivered_since_refill_ml=0.0,
        ))  # fmt: skip


@dataclass
class Keys:
    pump_private: bytes
    clinician_private: bytes
    patient_private: bytes
    stranger_private: bytes

    @property
    def pump_public(self) -> bytes:
        return public_key_of(self.pump_private)

    def paired(self) -> list[PairedKey]:
        return [
            PairedKey(public_key_of(self.clinician_private), Role.CLINICIAN, "clinic"),
            PairedKey(public_key_of(self.patient_private), Role.PATIENT, "remote"),
        ]


def make_keys() -> Keys:
    return Keys(*(generate_private_key() for _ in range(4)))


def seeded_random_bytes(seed: int = 1) -> Callable[[int], bytes]:
    """A repeatable stand-in for ``os.urandom`` (the endpoint takes its randomness passed in)."""
    return random.Random(seed).randbytes


def make_pump(keys: Keys, state: dict[str, JSON] | None = None) -> tuple[PumpEndpoint, FakePump]:
    fake = FakePump()
    endpoint = PumpEndpoint(
        keys.pump_private, keys.paired(), fake, random_bytes=seeded_random_bytes(), state=state
    )
    return endpoint, fake
