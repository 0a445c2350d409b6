"""A program change (physicians): parse, review against the current program, send, store.

The review is the programmer's (:func:`itb.programmer.programming.review_program`): dose limits,
a refusal above the absolute maximum or outside the pump's flow range, and a change that needs
an explicit confirmation with a reason. The command goes through the crash-safe command visit
(``commands.run_command_visit``); the new program version is written with the pump's answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError
from itb.clinic.models import Patient, ProgramVersion, Pump, User, Visit, VisitKind, VisitStatus
from itb.clinic.pumps import PumpLink, PumpLinks
from itb.clinic.services.commands import (
    PumpCommand,
    complete_visit,
    refuse_if_pending,
    run_command_visit,
    settle_pending,
)
from itb.clinic.services.lookups import (
    REASON_MAX_CHARS,
    active_pump,
    add_program_version,
    current_program,
    pump_snapshot,
)
from itb.errors import InputError
from itb.guardrails import LimitError, Verdict
from itb.programmer.programming import Origin, Phase, ProgramReview, review_program
from itb.pump.hardware import pump_model
from itb.therapy import Program, program_from_dict

# The field a REFUSE check of itb.programmer.programming names in a 422.
CHECK_FIELDS = {"daily_dose": "daily_dose_ug"}
PROGRAM_KEYS = ("rate_ug_per_day", "steps", "week")
# A pump with no refill since its implant fill is in the titration phase (S46: changes every
# 24 h after implant; maintenance changes come at refills) [R]: the stricter increase limits.
TITRATION_UNTIL_FIRST_REFILL = timedelta(days=1)
_EXPECTED_PROGRAM = "expected an object with rate_ug_per_day, steps or week"


@dataclass(frozen=True, slots=True)
class ProgramRequest:
    """A program change as submitted: the scenario's [program] keys, and the confirmation."""

    program: dict[str, Any]
    confirm: bool = False
    reason: str = ""
    phase: Phase | None = None  # None: from the pump's history (default_phase)


def parse_program_request(data: Any) -> ProgramRequest:
    """Split the body into the program keys and confirm / reason / phase; InputError if bad."""
    if not isinstance(data, dict):
        raise InputError("program", _EXPECTED_PROGRAM, _EXPECTED_PROGRAM)
    body = dict(data)
    confirm = body.pop("confirm", False)
    if not isinstance(confirm, bool):
        raise InputError("confirm", "allowed true or false")
    reason = body.pop("reason", "")
    if not isinstance(reason, str) or len(reason) > REASON_MAX_CHARS:
        raise InputError("reason", f"text of at most {REASON_MAX_CHARS} characters")
    phase_text = body.pop("phase", None)
    phase = None
    if phase_text is not None:
        try:
            phase = Phase(phase_text)
        except ValueError:
            raise InputError("phase", "allowed titration or maintenance") from None
    return ProgramRequest(body, confirm, reason.strip(), phase)


def parse_program(data: dict[str, Any]) -> Program:
    """The program of a request; InputError (a ProgramError) naming the field if it is bad."""
    if not isinstance(data, dict) or not data:
        raise InputError("program", _EXPECTED_PROGRAM, _EXPECTED_PROGRAM)
    return program_from_dict(data)


def default_phase(pump: Pump) -> Phase:
    """Titration until the first refill after the implant, maintenance after it [R]."""
    if pump.filled_at is None or pump.filled_at - pump.implanted_at < TITRATION_UNTIL_FIRST_REFILL:
        return Phase.TITRATION
    return Phase.MAINTENANCE


def patient_origin(patient: Patient) -> Origin:
    try:
        return Origin(patient.origin)
    except ValueError:
        return Origin.CEREBRAL  # unknown: the stricter titration limits (S46)


def review_program_change(
    db: Session, patient: Patient, pump: Pump, request: ProgramRequest
) -> ProgramReview:
    """The programmer's comparison and checks (itb.programmer.programming.review_program)
    against the current program, at the concentration read back at the last interrogation."""
    program = parse_program(request.program)
    if pump.concentration_ug_per_ml is None:
        raise ConflictError("the pump has not been interrogated: interrogate it first")
    current = current_program(db, pump)
    old = program_from_dict(json.loads(current.program_json)) if current else None
    try:
        return review_program(
            pump_model(pump.model),
            old,
            program,
            pump.concentration_ug_per_ml,
            patient_origin(patient),
            request.phase or default_phase(pump),
        )
    except LimitError as exc:
        raise InputError("concentration_ug_per_ml", exc.reason, str(exc)) from None


def accept_program(review: ProgramReview, request: ProgramRequest) -> Program:
    """The program to send, or InputError naming the field: a refusal, or a change that needs
    ``confirm: true`` and a ``reason``."""
    for check in review.checks:
        if check.verdict is Verdict.REFUSE:
            field = CHECK_FIELDS.get(check.name) or next(
                (k for k in PROGRAM_KEYS if k in request.program), "program"
            )
            refused = "refused: " + "; ".join(review.reasons(Verdict.REFUSE))
            raise InputError(field, refused, refused)
    if review.needs_confirmation:
        warnings = "; ".join(review.reasons(Verdict.WARN))
        if not request.confirm:
            raise InputError(
                "confirm",
                "this change needs an explicit confirmation (confirm: true) with a reason, "
                f"because {warnings}",
            )
        if not request.reason:
            raise InputError(
                "reason",
                f"a reason (1 to {REASON_MAX_CHARS} characters) is required to confirm, "
                f"because {warnings}",
            )
    return review.accept(request.reason or None)


def change_program(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    user: User,
    data: Any,
    now: datetime,
    after_pump_command: Callable[[], None] | None = None,
) -> tuple[ProgramVersion, ProgramReview]:
    pump = active_pump(db, patient)
    request = data if isinstance(data, ProgramRequest) else parse_program_request(data)
    review = review_program_change(db, patient, pump, request)
    program = accept_program(review, request)
    settle_pending(db, links, pump, now)
    refuse_if_pending(db, pump)
    previous = current_program(db, pump)
    previous_program = json.loads(previous.program_json) if previous else None
    confirmation = request.reason if review.needs_confirmation else None

    def send(link: PumpLink) -> None:
        link.set_program(program)

    def complete(visit: Visit, before: dict[str, Any], at: datetime) -> ProgramVersion:
        version = add_program_version(db, pump, program, user, visit, at)
        complete_visit(visit, VisitStatus.COMPLETED, at)
        after = {
            **pump_snapshot(pump),
            "program": program.to_dict(),
            "version": version.version,
            "verdict": review.verdict.value,
            "confirmation_reason": confirmation,
        }
        before = {**before, "program": previous_program}
        audit.record(db, user, "pump.program", "pump", pump.serial, before, after)
        return version

    details = _program_details(program, review, confirmation)
    command = PumpCommand(patient, pump, user, VisitKind.PROGRAMMING, now, details, send)
    version = run_command_visit(db, links.link(pump.serial), command, complete, after_pump_command)
    return version, review


def _program_details(
    program: Program, review: ProgramReview, confirmation: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "program": program.to_dict(),
        "daily_dose_ug": round(review.new_daily_dose_ug, 2),
        "change_percent": None
        if review.change_percent is None
        else round(review.change_percent, 1),
        "verdict": review.verdict.value,
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
    }
    if confirmation is not None:
        details["confirmation_reason"] = confirmation
    return details
