"""The programmer's facade over the telemetry link: the clinician's and patient's workflows.

Used by ``itb programmer`` (CLI), the web app and tests. Every rule lives in the pure modules
beside this one (``programming.py``, ``refill.py``, ``bridge.py``, ``priming.py``,
``report.py``); this module connects, reads the pump, calls those rules with what the pump
reports (model, concentration, program, volumes: never typed by hand), and sends one command.

Outcomes of a command are the link's: ``done``, ``rejected`` (the firmware refused, nothing
changed), ``refused`` (the link refused: role, pairing; nothing changed) or ``uncertain`` (sent,
no answer: maybe applied). An uncertain command is settled from the pump's event log at the
next connection (:meth:`PumpSession.resolve`); :class:`UncertainJournal` keeps the ids between
program runs. A workflow whose programmer-side check fails raises before anything is sent:
:class:`ConfirmationRequiredError` (a warning to confirm), :class:`ProgramRefusedError` (a
refusal), :class:`AcknowledgementRequiredError` (a refill discrepancy to acknowledge).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from itb.errors import InputError
from itb.guardrails import Verdict
from itb.link.journal import UncertainJournal
from itb.link.keys import KeyFileError, KeyOwner, load_private_key, load_public_key
from itb.link.plans import (
    RefillPreparation,
    known_concentration,
    last_concentration_change,
    model_of,
    prepare_refill,
    program_24h_ago,
    review_new_program,
)
from itb.link.transport import LinkError, ProgrammerClient
from itb.programmer.bolus_review import review_bolus
from itb.programmer.bridge import plan_concentration_change
from itb.programmer.priming import PrimingPlan, plan_priming
from itb.programmer.programming import (
    ConfirmationRequiredError,
    ProgramRefusedError,
    ProgramReview,
    ReviewContext,
    review_token,
)
from itb.programmer.refill import DiscrepancyCheck
from itb.programmer.report import build_report, render_report_html
from itb.pump.alarms import AlarmKind, alarm_test_tones
from itb.pump.hardware import implanted_catheter_volume_ml
from itb.pump.status import BolusKind, PumpStatus
from itb.telemetry.messages import (
    JSON,
    ClearAlarm,
    Command,
    LogRecord,
    PatientBolusRequest,
    Refill,
    Rejected,
    ResumePump,
    SetProgram,
    StartBolus,
    StopPump,
    TestAlarm,
)
from itb.telemetry.outcomes import CommandResult, Outcome, Resolution, resolve_uncertain
from itb.therapy import Program

__all__ = [
    "AcknowledgementRequiredError",
    "AddressError",
    "CommandReport",
    "ConfirmationRequiredError",
    "LinkError",
    "ProgramRefusedError",
    "PumpAddress",
    "PumpSession",
    "RefillPreparation",
    "UncertainJournal",
    "last_concentration_change",
    "model_of",
    "prepare_refill",
    "review_new_program",
    "run_session",
    "with_session",
]

_T = TypeVar("_T")


class AcknowledgementRequiredError(InputError):
    """The withdrawn volume differs from the expected one beyond tolerance: acknowledge it."""

    def __init__(self, check: DiscrepancyCheck) -> None:
        self.check = check
        reason = "discrepancy needs an acknowledgement: " + "; ".join(check.reasons)
        super().__init__("withdrawn_ml", reason)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (AcknowledgementRequiredError, (self.check,))


class AddressError(InputError):
    """A bad connection setting; ``field`` names it."""


@dataclass(frozen=True, slots=True)
class PumpAddress:
    """Where a pump listens and the keys of the session (the programmer's and the pump's)."""

    host: str
    port: int
    programmer_private: bytes
    pump_public: bytes
    timeout_s: float = 1.0
    attempts: int = 4

    @classmethod
    def from_files(
        cls,
        pump: str,
        key_file: Path,
        pump_key_file: Path,
        *,
        timeout_s: float = 1.0,
        attempts: int = 4,
    ) -> PumpAddress:
        """``pump`` is HOST:PORT. Raises ValueError (KeyFileError) naming the field or file."""
        host, sep, port_text = pump.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise AddressError("pump", f"{pump!r}; expected HOST:PORT, port 1 to 65535")
        if not 0.0 < timeout_s <= 60.0:
            raise AddressError("timeout_s", f"{timeout_s:g}; allowed more than 0 up to 60 s")
        if not 1 <= attempts <= 20:
            raise AddressError("attempts", f"{attempts}; allowed 1 to 20")
        try:
            programmer_private = load_private_key(key_file, KeyOwner.PROGRAMMER)
            pump_public = load_public_key(pump_key_file, KeyOwner.PUMP)
        except KeyFileError as error:  # name the parameter: the programmer's key or the pump's
            name = "key_file" if error.field == "private_key" else "pump_key_file"
            raise KeyFileError(name, error.reason, str(error)) from None
        host = host.strip("[]")
        return cls(host, int(port_text), programmer_private, pump_public, timeout_s, attempts)


@dataclass(frozen=True, slots=True)
class CommandReport:
    """One command's outcome and what the programmer showed before sending it."""

    command: str
    outcome: Outcome
    request_id: str
    field: str | None = None
    reason: str | None = None
    details: dict[str, object] = dataclass_field(default_factory=dict)
    pump_summary: dict[str, JSON] | None = None  # the pump's prepare summary (two-step commands)

    @classmethod
    def from_result(
        cls, command: str, result: CommandResult, details: Mapping[str, object] | None = None
    ) -> CommandReport:
        response = result.response
        field_name = response.field if isinstance(response, Rejected) else None
        reason = response.reason if isinstance(response, Rejected) else (result.detail or None)
        return cls(
            command,
            result.outcome,
            result.request_id,
            field_name,
            reason,
            dict(details or {}),
            result.summary,
        )

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "command": self.command,
            "status": self.outcome.value,
            "request_id": self.request_id,
        }
        if self.field is not None:
            out["field"] = self.field
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.details)
        if self.pump_summary is not None:
            out["pump_summary"] = self.pump_summary
        return out


def _as_json(value: Mapping[str, object]) -> dict[str, JSON]:
    loaded: dict[str, JSON] = json.loads(json.dumps(value))
    return loaded


# The session -------------------------------------------------------------------------------
class PumpSession:
    """One authenticated session with a pump (async). Use ``async with await
    PumpSession.connect(address)`` or :func:`run_session` from synchronous code."""

    def __init__(self, client: ProgrammerClient) -> None:
        self.client = client

    @classmethod
    async def connect(cls, address: PumpAddress) -> PumpSession:
        client = await ProgrammerClient.connect(
            address.host,
            address.port,
            address.programmer_private,
            address.pump_public,
            timeout_s=address.timeout_s,
            attempts=address.attempts,
        )
        return cls(client)

    async def __aenter__(self) -> PumpSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.close()

    # Reading ------------------------------------------------------------------------------
    async def interrogate(self) -> PumpStatus:
        """The pump's status. ``status.now`` is the pump's clock: one session reads both."""
        return await self.client.interrogate()

    async def event_log(self, since_seq: int = 0) -> tuple[list[LogRecord], int]:
        return await self.client.read_event_log(since_seq)

    async def resolve(self, request_ids: list[str]) -> dict[str, Resolution]:
        """Settle uncertain commands from the whole event log (one read for all of them)."""
        if not request_ids:
            return {}
        entries, lost = await self.event_log(0)
        return {rid: resolve_uncertain(rid, entries, lost_count=lost) for rid in request_ids}

    async def report(self, generated_at: datetime) -> tuple[dict[str, object], str]:
        """The interrogation report (report.py) as a dict and as HTML."""
        status = await self.interrogate()
        entries, _ = await self.event_log(0)
        report = build_report(status, [e.to_wire() for e in entries], generated_at)
        return report, render_report_html(report)

    # Commands -----------------------------------------------------------------------------
    async def send(
        self,
        make: Callable[[str], Command],
        details: Mapping[str, object] | None = None,
        on_sent: Callable[[str], None] | None = None,
    ) -> CommandReport:
        """Send one command. ``on_sent(request_id)`` is called just before it leaves, so a
        journal can note it in case the answer never comes. A high-risk command goes as prepare
        then commit (``ProgrammerClient.command``); the report carries the pump's summary."""
        command = make(self.client.new_request_id())
        if on_sent is not None:
            on_sent(command.request_id)
        result = await self.client.command(command)
        return CommandReport.from_result(command.type_name, result, details)

    async def review(
        self, new: Program, context: ReviewContext | None = None
    ) -> tuple[ProgramReview, str]:
        """Review ``new`` against the pump's program and the program in force 24 h ago (read
        from the pump's event log); with the review's token (pump serial, current program, new
        program) that a later send may carry."""
        status = await self.interrogate()
        try:
            entries, _ = await self.event_log(0)
            earlier = program_24h_ago(status, entries)
        except LinkError as error:
            # Only a refusal of the log (type exactly LinkError; timeouts and closed links are
            # subclasses and propagate). The pump refuses the log to a role it also refuses
            # every program change (itb.telemetry.pairing.role_allows: only a clinician may do
            # either), so such a session's change is refused by the pump, not sent blind.
            if type(error) is not LinkError:
                raise
            earlier = None
        full = replace(context or ReviewContext(), program_24h_ago=earlier)
        review = review_new_program(status, new, full)
        return review, review_token(status.serial, status.program, new)

    async def program(
        self,
        new: Program,
        *,
        context: ReviewContext | None = None,
        confirmation_reason: str | None = None,
        reviewed_token: str | None = None,
        on_sent: Callable[[str], None] | None = None,
    ) -> CommandReport:
        """Review ``new`` (as :meth:`review`); send it if no check refuses it and every warning
        is confirmed with a reason (else raise, nothing sent). With ``reviewed_token`` (from an
        earlier review) the send is refused unless the program and the pump's current program
        are still the ones reviewed. Without it, the review and the send read the pump in this
        one session, so what is reviewed is what is sent."""
        review, token = await self.review(new, context)
        if reviewed_token is not None and reviewed_token != token:
            raise InputError(
                "review_token",
                "the program or the pump's current program differs from the one reviewed; "
                "review it again (--dry-run) and send with the new token",
            )
        program = review.accept(confirmation_reason)
        details: dict[str, object] = {"review": review.to_dict(), "review_token": token}
        if review.needs_confirmation:
            details["confirmation_reason"] = confirmation_reason
        return await self.send(
            lambda rid: SetProgram(rid, _as_json(program.to_dict())), details, on_sent
        )

    async def refill(
        self,
        *,
        withdrawn_ml: float,
        volume_ml: float,
        concentration_ug_per_ml: float,
        acknowledge_discrepancy: bool = False,
        catheter_trimmed_cm: float = 0.0,
        on_sent: Callable[[str], None] | None = None,
    ) -> CommandReport:
        """Check the withdrawn volume against the pump's estimate, then refill. A flagged
        discrepancy needs ``acknowledge_discrepancy`` (else raise, nothing sent)."""
        status = await self.interrogate()
        prep = prepare_refill(
            status,
            withdrawn_ml,
            volume_ml,
            concentration_ug_per_ml,
            implanted_catheter_volume_ml(catheter_trimmed_cm),
        )
        if prep.discrepancy.flagged and not acknowledge_discrepancy:
            raise AcknowledgementRequiredError(prep.discrepancy)
        details: dict[str, object] = {
            **prep.to_dict(),
            "discrepancy_acknowledged": prep.discrepancy.flagged,
        }
        return await self.send(
            lambda rid: Refill(rid, volume_ml, concentration_ug_per_ml), details, on_sent
        )

    async def clinician_bolus(
        self,
        dose_ug: float,
        duration_min: float,
        on_sent: Callable[[str], None] | None = None,
        *,
        confirmation_reason: str | None = None,
        age_years: float | None = None,
    ) -> CommandReport:
        """Review the bolus against the pump as read now (the programmer's checks, the same as
        the clinic's); send it if no check refuses it and every warning is confirmed with a
        reason (else raise, nothing sent)."""
        status = await self.interrogate()
        if status.program is None or status.concentration_ug_per_ml is None:
            raise InputError(
                "dose_ug", "the pump has lost its program or concentration: refill and program it"
            )
        review = review_bolus(
            model_of(status),
            status.program,
            status.concentration_ug_per_ml,
            dose_ug,
            duration_min,
            age_years,
        )
        if review.refused:
            raise ProgramRefusedError("dose_ug", "; ".join(review.reasons(Verdict.REFUSE)))
        if review.needs_confirmation and not (confirmation_reason or "").strip():
            warnings = "; ".join(review.reasons(Verdict.WARN))
            raise ConfirmationRequiredError(
                "confirm", f"{warnings}; confirm with a reason to give {review.words()}"
            )
        details: dict[str, object] = {"dose_ug": dose_ug, "duration_min": duration_min}
        details["review"] = review.to_dict()
        if review.needs_confirmation:
            details["confirmation_reason"] = confirmation_reason
        return await self.send(
            lambda rid: StartBolus(rid, BolusKind.CLINICIAN, dose_ug, None, duration_min),
            details,
            on_sent,
        )

    async def bridge_bolus(
        self,
        *,
        catheter_trimmed_cm: float = 0.0,
        duration_min: float | None = None,
        on_sent: Callable[[str], None] | None = None,
    ) -> CommandReport:
        """bridge.py's bridge after the last concentration change read from the pump's log."""
        status = await self.interrogate()
        entries, _ = await self.event_log(0)
        change = last_concentration_change(entries)
        if change is None:
            raise InputError(
                "kind", "the pump's last refill did not change the concentration; no bridge needed"
            )
        plan = plan_concentration_change(
            model_of(status),
            implanted_catheter_volume_ml(catheter_trimmed_cm),
            change[0],
            change[1],
            status.daily_dose_ug,
        )
        minutes = plan.bridge_duration_h * 60.0 if duration_min is None else duration_min
        volume_ml = plan.dead_space_ml
        return await self.send(
            lambda rid: StartBolus(rid, BolusKind.BRIDGE, None, volume_ml, minutes),
            {"bridge": plan.to_dict(), "volume_ml": volume_ml, "duration_min": minutes},
            on_sent,
        )

    async def priming_bolus(
        self,
        *,
        catheter_trimmed_cm: float = 0.0,
        pump_tubing_empty: bool = False,
        duration_min: float | None = None,
        confirm: bool = False,
        on_sent: Callable[[str], None] | None = None,
    ) -> CommandReport:
        """priming.py's volume. Into a full catheter it is an overdose: needs ``confirm``."""
        status = await self.interrogate()
        plan: PrimingPlan = plan_priming(
            model_of(status),
            catheter_trimmed_cm,
            known_concentration(status),
            pump_tubing_empty,
        )
        if not confirm:
            raise ConfirmationRequiredError(
                "confirm",
                "a priming bolus is only for an empty catheter: " + "; ".join(plan.reasons),
            )
        volume_ml = plan.priming_volume_ml
        return await self.send(
            lambda rid: StartBolus(rid, BolusKind.PRIMING, None, volume_ml, duration_min),
            {"priming": plan.to_dict(), "volume_ml": volume_ml, "duration_min": duration_min},
            on_sent,
        )

    async def stop(self, on_sent: Callable[[str], None] | None = None) -> CommandReport:
        return await self.send(StopPump, None, on_sent)

    async def resume(self, on_sent: Callable[[str], None] | None = None) -> CommandReport:
        return await self.send(ResumePump, None, on_sent)

    async def clear_alarm(
        self, kind: AlarmKind, on_sent: Callable[[str], None] | None = None
    ) -> CommandReport:
        return await self.send(lambda rid: ClearAlarm(rid, kind), {"alarm": kind.value}, on_sent)

    async def test_alarm(self, on_sent: Callable[[str], None] | None = None) -> CommandReport:
        """The pump sounds each alarm tone once (the tones its rules name, in the report)."""
        return await self.send(TestAlarm, {"tones": alarm_test_tones()}, on_sent)

    async def patient_bolus(self, on_sent: Callable[[str], None] | None = None) -> CommandReport:
        return await self.send(PatientBolusRequest, None, on_sent)


async def with_session(address: PumpAddress, work: Callable[[PumpSession], Awaitable[_T]]) -> _T:
    """Connect, run ``work``, close. LinkError if the pump cannot be reached."""
    session = await PumpSession.connect(address)
    try:
        return await work(session)
    finally:
        await session.close()


def run_session(address: PumpAddress, work: Callable[[PumpSession], Awaitable[_T]]) -> _T:
    """The synchronous facade: one session on a fresh event loop."""
    return asyncio.run(with_session(address, work))
