"""``FirmwareHandler``: the telemetry endpoint's ``PumpHandler`` over the real firmware.

One request, one firmware call, at the pump clock's "now":

    Interrogate            -> StatusReport of ``firmware.status()``
    ReadEventLog           -> EventLogPage of ``firmware.log``
    SetProgram             -> set_program            StartBolus     -> start_bolus
    SetLowReservoirAlarm   -> set_low_reservoir_alarm StopPump      -> stop
    ResumePump             -> resume                  Refill         -> refill
    ClearAlarm             -> clear_alarm             PatientBolus.. -> patient_bolus
    TestAlarm              -> test_alarm (each tone once, logged; answered ``Accepted``)
    SetPatientBolusLimits  -> set_patient_bolus_limits
    SetClock               -> set_clock: the clock's offset moves, the running time does not
                              (``itb.pump.clock``); a patient's key never gets here (pairing)

Times leave on the pump's clock: the status, and each log entry's running time shown with the
clock's offset as set now (the best estimate of when it happened, once the clock is corrected).

After the firmware applied a command, a ``command`` entry is logged with ``request_id``,
``outcome="applied"``, the request type, the key id and role; a refused one is logged with
``outcome="rejected"`` and the field and reason, and the firmware's ``CommandRejected``
propagates (the endpoint answers ``Rejected``). Either way the endpoint then calls
``save_link_state``, which saves (the log's new entries and the link state to the journal, the
settings image to its bank) *before* the answer is sealed and sent: an answer the programmer
sees is always on disk. A save for the link alone (a counter passing the stored ceiling at a
prepare) writes no settings bank unless the firmware's settings changed (a session's battery
charge) or a clinical entry was logged (``StateDir.write_image``).

``prepare`` (step one of a two-step command) is the dry run: the same command applied by the
same code to a copy of the firmware rebuilt from its settings image (``persistence.from_image``
with a deep copy of the world and an empty log: copying the log made a prepare cost as much as
the log was long). The real firmware, its log and the disk are not touched; the firmware's
refusal propagates as for ``handle``; the summary is the status fields that would change, old and
new (``SUMMARY_FIELDS``, units in the names).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from itb.pump import persistence
from itb.pump.checks import CommandRejected
from itb.pump.eventlog import EventLog
from itb.pump.firmware import Firmware
from itb.pump.status import PatientBolusLimits
from itb.pumpd.state import StateDir
from itb.telemetry.endpoint import PairedKey, RefusalReport, Role
from itb.telemetry.messages import (
    JSON,
    Accepted,
    ClearAlarm,
    Command,
    EventLogPage,
    Interrogate,
    LogRecord,
    PatientBolusRequest,
    ReadEventLog,
    Refill,
    Request,
    Response,
    ResumePump,
    SetClock,
    SetLowReservoirAlarm,
    SetPatientBolusLimits,
    SetProgram,
    StartBolus,
    StatusReport,
    StopPump,
    TestAlarm,
)
from itb.therapy import program_from_dict

# What a prepare summary compares, before and after the dry run (StatusReport wire names).
SUMMARY_FIELDS = (
    "mode",
    "program",
    "daily_dose_ug",
    "concentration_ug_per_ml",
    "reservoir_ml",
    "low_reservoir_alarm_ml",
    "bolus",
    "patient_bolus_limits",
)


class FirmwareHandler:
    """Satisfies :class:`itb.telemetry.endpoint.PumpHandler`."""

    def __init__(
        self,
        firmware: Firmware,
        state: StateDir,
        clock: Callable[[], datetime],
        paired_keys: list[PairedKey],
        link_state: dict[str, Any] | None,
    ) -> None:
        self.firmware = firmware
        self.state = state
        self.clock = clock
        self.paired_keys = paired_keys
        self.link_state = link_state
        self.saves = 0
        self._session_charged = True
        self._settings_changed = False  # since the last save: the next one writes the bank

    # ------------------------------------------------------------------ PumpHandler
    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        fw = self.firmware
        now = self._now_charged()
        if isinstance(request, Interrogate):
            return StatusReport(fw.status())
        if isinstance(request, ReadEventLog):
            return self._log_page(request)
        if not isinstance(request, Command):  # pragma: no cover - every request is one of these
            raise CommandRejected("type", f"{request.type_name} is not supported")
        base: dict[str, JSON] = {
            "request_id": request.request_id,
            "request": request.type_name,
            "key_id": key_id,
            "role": role.value,
        }
        self._settings_changed = True
        try:
            self._apply(request, now)
        except CommandRejected as error:
            fw.record(
                fw.now,
                "command",
                {**base, "outcome": "rejected", "field": error.field, "reason": error.reason},
            )
            raise
        fw.record(fw.now, "command", {**base, "outcome": "applied"})
        return Accepted(request.request_id)

    def prepare(self, command: Command, role: Role, key_id: str) -> dict[str, JSON]:
        """Dry run: ``command`` on a copy of the firmware; what would change, old and new."""
        fw = self.firmware
        now = self._now_charged()
        trial = persistence.from_image(
            Firmware, persistence.settings_image(fw), copy.deepcopy(fw.world), EventLog()
        )
        before = _summary_view(trial)
        _apply_to(trial, command, now)  # raises CommandRejected exactly as handle would
        after = _summary_view(trial)
        changes: dict[str, JSON] = {
            name: {"old": before[name], "new": after[name]}
            for name in SUMMARY_FIELDS
            if before[name] != after[name]
        }
        at = trial.clock_now.isoformat()
        return {"request": command.type_name, "at": at, "changes": changes}

    def on_refused(self, report: RefusalReport) -> None:
        """Log a refusal (or a summary of unauthenticated ones) in the security ring. No memory
        write: a keyless peer causes these, and each write wears the implant's memory; the
        entry is saved with the next write (a command, the periodic save, a clean stop)."""
        now = self.advance()
        data = report.to_log_data()
        if self.firmware.log.security_lost_count:
            data["security_entries_lost"] = self.firmware.log.security_lost_count
        self.firmware.record(now, report.log_kind, data)

    def save_link_state(self, state: dict[str, JSON]) -> None:
        self.link_state = state
        self._save(settings=self._settings_changed)

    # ------------------------------------------------------------------ the process's own
    def new_link(self) -> None:
        """A proved session took the pump's one session: its first request costs a session's
        charge (``PumpServer(on_session_start=...)``)."""
        self._session_charged = False

    def advance(self) -> datetime:
        now = self.clock()
        if now > self.firmware.now:
            self.firmware.advance(now)
        return self.firmware.now

    def save(self) -> None:
        """A checkpoint (start, every ``save_every_s``, a clean stop): the bank too."""
        self._save(settings=True)

    def _save(self, *, settings: bool) -> None:
        self.state.write_image(self.firmware, self.link_state, settings=settings)
        self._settings_changed = False
        self.saves += 1

    # ------------------------------------------------------------------ internals
    def _now_charged(self) -> datetime:
        now = self.advance()
        if not self._session_charged:  # one telemetry session's charge per authenticated link
            self._session_charged = True
            self._settings_changed = True  # the battery's charge
            self.firmware.telemetry_session(now)
        return now

    def _apply(self, request: Command, now: datetime) -> None:
        _apply_to(self.firmware, request, now)

    def _log_page(self, request: ReadEventLog) -> EventLogPage:
        log = self.firmware.log
        entries = log.entries(request.since_seq)
        page = entries[: request.limit]
        on_clock = self.firmware.on_clock
        records = tuple(LogRecord(e.seq, on_clock(e.t_s), e.kind, _json_data(e.data)) for e in page)
        next_seq = page[-1].seq if page else request.since_seq
        return EventLogPage(records, next_seq, len(entries) > len(page), log.lost_count)


def _summary_view(fw: Firmware) -> dict[str, JSON]:
    wire = StatusReport(fw.status()).to_wire()
    return {name: wire.get(name) for name in SUMMARY_FIELDS}


def _apply_to(fw: Firmware, request: Command, now: datetime) -> None:
    """One command, one firmware call (the real firmware, or a dry run's copy)."""
    if isinstance(request, SetProgram):
        fw.set_program(now, program_from_dict(dict(request.program)))
    elif isinstance(request, SetLowReservoirAlarm):
        fw.set_low_reservoir_alarm(now, request.volume_ml)
    elif isinstance(request, StartBolus):
        fw.start_bolus(
            now,
            request.kind,
            dose_ug=request.dose_ug,
            volume_ml=request.volume_ml,
            duration_min=request.duration_min,
        )
    elif isinstance(request, StopPump):
        fw.stop(now)
    elif isinstance(request, ResumePump):
        fw.resume(now)
    elif isinstance(request, Refill):
        fw.refill(now, request.volume_ml, request.concentration_ug_per_ml)
    elif isinstance(request, ClearAlarm):
        fw.clear_alarm(now, request.kind)
    elif isinstance(request, TestAlarm):
        fw.test_alarm(now)
    elif isinstance(request, SetPatientBolusLimits):
        fw.set_patient_bolus_limits(
            now,
            PatientBolusLimits(
                request.dose_ug, request.duration_min, request.lockout_min, request.max_per_day
            ),
        )
    elif isinstance(request, PatientBolusRequest):
        fw.patient_bolus(now)
    elif isinstance(request, SetClock):
        fw.set_clock(now, request.new_time)
    else:  # pragma: no cover - a new command type needs a line here
        raise CommandRejected("type", f"{request.type_name} is not supported by this pump")


def _json_data(data: Mapping[str, object]) -> dict[str, JSON]:
    return cast(dict[str, JSON], dict(data))  # log data is JSON by construction
