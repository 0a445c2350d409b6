"""A program change (physicians): parse, review against the current program, send, store.

The review is the programmer's (:func:`itb.programmer.programming.review_program`): dose limits,
a refusal above the absolute maximum or outside the pump's flow range, and a change that needs
an explicit confirmation with a reason. The clinic gives it the patient's context
(:func:`review_context`): the origin from the record (unknown: the strictest limits, and the
review says so), the phase from the clinic's rule (:func:`default_phase`) unless chosen, the age
from the date of birth (children's dose range, S25) and the program in force 24 h earlier, from
the pump's event log as stored in the clinic and the program versions (one titration increase
per 24 h, S46: two changes minutes apart are judged together, H29).

What you review is what you send (H32): the review answers a ``review_token``
(:func:`itb.programmer.programming.review_token`: the pump's serial, its current program and the
normalized new program). A send must carry the token of the review it follows; a program edited
after its review, or a pump whose program changed since, gives another token, and the send is
refused (naming ``review_token``) with nothing sent: review again.

The command goes through the crash-safe command visit (``commands.run_command_visit``); the new
program version is written with the pump's answer.
"""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.dose_words import dose_sentence
from itb.clinic.errors import ConflictError
from itb.clinic.models import (
    Patient,
    ProgramVersion,
    Pump,
    PumpEvent,
    User,
    Visit,
    VisitKind,
    VisitStatus,
)
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
from itb.programmer.programming import (
    Origin,
    Phase,
    ProgramChange,
    ProgramReview,
    ReviewContext,
    program_in_force_at,
    review_program,
    review_token,
)
from itb.pump.hardware import pump_model
from itb.therapy import Program, ProgramError, program_from_dict
from itb.units import SECONDS_PER_DAY

# The field a REFUSE check of itb.programmer.programming names in a 422.
CHECK_FIELDS = {"daily_dose": "daily_dose_ug"}
PROGRAM_KEYS = ("rate_ug_per_day", "steps", "week")
# A pump with no refill since its implant fill is in the titration phase (S46: changes every
# 24 h after implant; maintenance changes come at refills) [R]: the stricter increase limits.
TITRATION_UNTIL_FIRST_REFILL = timedelta(days=1)
_EXPECTED_PROGRAM = "expected an object with rate_ug_per_day, steps or week"
# The label allows one titration increase per 24 h (S46): a change is judged against the
# program in force this long before it too.
TITRATION_WINDOW = timedelta(days=1)
# A review token: SHA-256 in hex.
REVIEW_TOKEN_CHARS = 64
DAYS_PER_YEAR = 365.2425


@dataclass(frozen=True, slots=True)
class ProgramRequest:
    """A program change as submitted: the scenario's [program] keys, and the confirmation."""

    program: dict[str, Any]
    confirm: bool = False
    reason: str = ""
    phase: Phase | None = None  # None: from the pump's history (default_phase)
    # the token of the review this send follows (ReviewedProgram.token); None: not reviewed
    review_token: str | None = None


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
    token = check_review_token(body.pop("review_token", None))
    return ProgramRequest(body, confirm, reason.strip(), phase, token)


def check_review_token(value: Any) -> str | None:
    """None (not given) or the 64 hex digits of a review token; InputError otherwise."""
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) != REVIEW_TOKEN_CHARS
        or any(c not in "0123456789abcdef" for c in value)
    ):
        raise InputError(
            "review_token",
            f"expected the {REVIEW_TOKEN_CHARS} hex digits answered by the review",
        )
    return value


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


def patient_origin(patient: Patient) -> Origin | None:
    """The origin on the record; None when it is unknown: the review then applies the
    strictest limits of every origin and says so (H30)."""
    try:
        return Origin(patient.origin)
    except ValueError:
        return None


def age_years(patient: Patient, now: datetime) -> float | None:
    """The patient's age from the date of birth; None when the record has none."""
    if patient.birth_date is None or patient.birth_date > now:
        return None
    return (now - patient.birth_date).total_seconds() / SECONDS_PER_DAY / DAYS_PER_YEAR


def program_changes_since(db: Session, pump: Pump, since: datetime) -> list[ProgramChange]:
    """The program changes after ``since``: each "program" entry of the pump's own event log
    stored in the clinic, and each program version the clinic recorded (a change made before
    the log was read, or one the log lost), each with the program it replaced."""
    changes: list[ProgramChange] = []
    events = db.execute(
        select(PumpEvent)
        .where(PumpEvent.pump_id == pump.id, PumpEvent.kind == "program", PumpEvent.at > since)
        .order_by(PumpEvent.seq)
    ).scalars()
    for event in events:
        data = json.loads(event.data_json)
        try:
            old, new = program_from_dict(data["old"]), program_from_dict(data["new"])
        except (KeyError, TypeError, ProgramError):
            continue  # an entry without both programs cannot say what ran before it
        changes.append(ProgramChange(event.at, old, new))
    versions = list(
        db.execute(
            select(ProgramVersion)
            .where(ProgramVersion.pump_id == pump.id)
            .order_by(ProgramVersion.version)
        ).scalars()
    )
    for before, version in itertools.pairwise(versions):
        if version.created_at > since:
            changes.append(
                ProgramChange(version.created_at, _program_of(before), _program_of(version))
            )
    return changes


def _program_of(version: ProgramVersion) -> Program:
    return program_from_dict(json.loads(version.program_json))


def review_context(
    db: Session, patient: Patient, pump: Pump, phase: Phase | None, now: datetime
) -> ReviewContext:
    """What the review needs from the record and the history (see the module's docstring)."""
    current = current_program(db, pump)
    day_ago = now - TITRATION_WINDOW
    program_24h_ago = None
    if current is not None:
        changes = program_changes_since(db, pump, day_ago)
        program_24h_ago = program_in_force_at(changes, day_ago, _program_of(current))
    return ReviewContext(
        origin=patient_origin(patient),
        phase=phase or default_phase(pump),
        age_years=age_years(patient, now),
        program_24h_ago=program_24h_ago,
    )


@dataclass(frozen=True, slots=True)
class ReviewedProgram:
    """A review and its token: the pump's serial, its current program and the new one."""

    review: ProgramReview
    token: str
    serial: str

    def to_dict(self) -> dict[str, object]:
        return {**self.review.to_dict(), "review_token": self.token, "serial": self.serial}


def review_program_change(
    db: Session, patient: Patient, pump: Pump, request: ProgramRequest, now: datetime
) -> ReviewedProgram:
    """The programmer's comparison and checks (itb.programmer.programming.review_program)
    against the current program, at the concentration read back at the last interrogation,
    with the patient's context (:func:`review_context`); and the review's token."""
    program = parse_program(request.program)
    if pump.concentration_ug_per_ml is None:
        raise ConflictError("the pump has not been interrogated: interrogate it first")
    current = current_program(db, pump)
    old = _program_of(current) if current else None
    try:
        review = review_program(
            pump_model(pump.model),
            old,
            program,
            pump.concentration_ug_per_ml,
            review_context(db, patient, pump, request.phase, now),
        )
    except LimitError as exc:
        raise InputError("concentration_ug_per_ml", exc.reason, str(exc)) from None
    return ReviewedProgram(review, review_token(pump.serial, old, review.new_program), pump.serial)


def check_reviewed(reviewed: ReviewedProgram, request: ProgramRequest) -> None:
    """The send must follow the review of this very program on this very pump (H32)."""
    if request.review_token is None:
        raise InputError(
            "review_token",
            "review the program first (its review answers a review_token) and send that token "
            "with the program",
        )
    if not hmac.compare_digest(request.review_token, reviewed.token):
        raise InputError(
            "review_token",
            "the program (or the pump's current program) differs from the one reviewed: "
            "nothing sent; review it again",
        )


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
    """Review the program again, check it is the one reviewed (its token), accept it (no
    refusal, every warning confirmed with a reason), send it, store the new version."""
    pump = active_pump(db, patient)
    request = data if isinstance(data, ProgramRequest) else parse_program_request(data)
    reviewed = review_program_change(db, patient, pump, request, now)
    check_reviewed(reviewed, request)  # first: a changed program goes back to review
    review = reviewed.review
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
        "dose_words": dose_sentence(review),
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
