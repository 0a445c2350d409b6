"""The care team's everyday pump commands: a clinician bolus, stop, resume, clear an alarm,
test the alarm tones.

Each one is a command visit (``commands.run_command_visit``: committed as sent before the
command leaves, settled from the pump's event log if the answer is lost), audited, and in the
pump's own log (the firmware logs ``bolus_start``, ``stop``, ``resume``, ``alarm_cleared``,
``alarm_test``).

- **Bolus** (physicians, as a program change): reviewed by the programmer's checks
  (:func:`itb.programmer.bolus_review.review_bolus`: the single-bolus and daily maxima, the
  motor's headroom, at the concentration read back from the pump, for the patient's age). What
  you review is what you send: the review's token covers the pump, its program and the bolus;
  a warning needs ``confirm`` and a reason; a refusal sends nothing.
- **Stop** (physicians): says in words that withdrawal begins, with the hours from the
  patient's own model (:func:`itb.clinic.services.family_view.withdrawal_onset_h`, the
  pharmacology's withdrawal function); a reason is required.
- **Resume** (physicians): shows the program and the daily dose that restart.
- **Clear an alarm** (nurses and physicians): only an alarm the pump reports and the pump's
  rules let a clinician clear (``ALARM_RULES``: motor stall, memory error); the pump checks it
  again.

- **Alarm test** (nurses and physicians): the pump sounds each of its alarm tones once (the
  tones of its alarm rules, ``alarm_test_tones``: the critical two-tone, the non-critical single
  tone), so the clinician can check that the patient and family hear them. It changes no
  delivery and no alarm; any mode, stopped included. A reason is required (it is audited, and
  a tone in a waiting room is not nothing), and the page confirms before sending.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError
from itb.clinic.family_words import alarm_words
from itb.clinic.models import Alarm, Patient, Pump, User, Visit, VisitKind, VisitStatus
from itb.clinic.pumps import PumpActionLink, PumpCommandRefusedError, PumpLink, PumpLinks
from itb.clinic.services.commands import (
    PumpCommand,
    complete_visit,
    refuse_if_pending,
    run_command_visit,
    settle_pending,
)
from itb.clinic.services.family_view import patient_model, withdrawal_onset_h
from itb.clinic.services.lookups import REASON_MAX_CHARS, active_pump, current_program
from itb.clinic.services.programming import age_years, check_review_token
from itb.errors import InputError
from itb.guardrails import Verdict
from itb.programmer.bolus_review import BolusReview, bolus_token, review_bolus
from itb.pump.alarms import ALARM_RULES, AlarmKind, ClearedBy, alarm_test_tones
from itb.pump.hardware import pump_model
from itb.pump.status import Mode
from itb.therapy import Program, program_from_dict
from itb.units import HOURS_PER_DAY

# The field a refused bolus check names (the form labels them "Dose" and "Duration").
BOLUS_CHECK_FIELDS = {
    "dose": "dose_ug",
    "day": "dose_ug",
    "duration": "duration_min",
    "motor": "duration_min",
}


# --- the link's capability ------------------------------------------------------------------
def _action_link(links: PumpLinks, pump: Pump) -> tuple[PumpLink, PumpActionLink]:
    """The pump's link, and the same link as one that sends the pump page's commands."""
    link = links.link(pump.serial)
    if not isinstance(link, PumpActionLink):
        raise PumpCommandRefusedError(
            "pump", f"the clinic's link to pump {pump.serial} cannot send this command"
        )
    return link, link


def _program(db: Session, pump: Pump) -> tuple[int, Program]:
    current = current_program(db, pump)
    if current is None:
        raise ConflictError("the pump has no program recorded: program it first")
    return current.version, program_from_dict(json.loads(current.program_json))


def _reason(reason: object, needed_because: str) -> str:
    if not isinstance(reason, str) or len(reason.strip()) > REASON_MAX_CHARS:
        raise InputError("reason", f"text of at most {REASON_MAX_CHARS} characters")
    if not reason.strip():
        raise InputError(
            "reason",
            f"a reason (1 to {REASON_MAX_CHARS} characters) is required: {needed_because}",
        )
    return reason.strip()


def _finite(value: object, field: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(field, f"a number of {unit}")
    return float(value)


# --- bolus ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BolusRequest:
    """A clinician bolus as submitted, with its confirmation and the review's token."""

    dose_ug: float
    duration_min: float | None = None
    confirm: bool = False
    reason: str = ""
    review_token: str | None = None

    @classmethod
    def parse(cls, data: Any) -> BolusRequest:
        """From an API body: dose_ug, duration_min, confirm, reason, review_token."""
        if not isinstance(data, dict):
            raise InputError("dose_ug", "expected an object with dose_ug")
        if "dose_ug" not in data:
            raise InputError("dose_ug", "required: the bolus dose in µg")
        dose = _finite(data["dose_ug"], "dose_ug", "µg")
        duration = data.get("duration_min")
        minutes = None if duration is None else _finite(duration, "duration_min", "minutes")
        confirm = data.get("confirm", False)
        if not isinstance(confirm, bool):
            raise InputError("confirm", "allowed true or false")
        reason = data.get("reason", "")
        if not isinstance(reason, str) or len(reason) > REASON_MAX_CHARS:
            raise InputError("reason", f"text of at most {REASON_MAX_CHARS} characters")
        token = check_review_token(data.get("review_token"))
        return cls(dose, minutes, confirm, reason.strip(), token)


@dataclass(frozen=True, slots=True)
class ReviewedBolus:
    review: BolusReview
    token: str
    serial: str

    def to_dict(self) -> dict[str, object]:
        return {**self.review.to_dict(), "review_token": self.token, "serial": self.serial}


def review_clinician_bolus(
    db: Session, patient: Patient, pump: Pump, request: BolusRequest, now: datetime
) -> ReviewedBolus:
    """The programmer's bolus checks at the concentration read back at the last reading, on
    the program in force, for the patient's age; with the review's token."""
    if pump.concentration_ug_per_ml is None:
        raise ConflictError("the pump has not been interrogated: interrogate it first")
    _, program = _program(db, pump)
    review = review_bolus(
        pump_model(pump.model),
        program,
        pump.concentration_ug_per_ml,
        request.dose_ug,
        request.duration_min,
        age_years(patient, now),
    )
    token = bolus_token(pump.serial, program, review.dose_ug, review.duration_min)
    return ReviewedBolus(review, token, pump.serial)


def accept_bolus(reviewed: ReviewedBolus, request: BolusRequest) -> None:
    """The send follows the review of this very bolus on this very pump and program; no check
    refuses it; every warning is confirmed with a reason. Else InputError naming the field."""
    if request.review_token is None:
        raise InputError("review_token", "review the bolus first, then give it")
    if not hmac.compare_digest(request.review_token, reviewed.token):
        raise InputError(
            "review_token",
            "the bolus (or the pump's program) differs from the one reviewed: nothing sent; "
            "review it again",
        )
    review = reviewed.review
    for check in review.checks:
        if check.verdict is Verdict.REFUSE:
            refused = "refused: " + "; ".join(review.reasons(Verdict.REFUSE))
            raise InputError(BOLUS_CHECK_FIELDS.get(check.name, "dose_ug"), refused, refused)
    if review.needs_confirmation:
        warnings = "; ".join(review.reasons(Verdict.WARN))
        if not request.confirm:
            raise InputError("confirm", f"this bolus needs your confirmation, because {warnings}")
        _reason(request.reason, f"to confirm, because {warnings}")


def give_bolus(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    user: User,
    request: BolusRequest,
    now: datetime,
    after_pump_command: Callable[[], None] | None = None,
) -> ReviewedBolus:
    """Review again, check it is the one reviewed, accept it, send it (a command visit)."""
    pump = active_pump(db, patient)
    reviewed = review_clinician_bolus(db, patient, pump, request, now)
    accept_bolus(reviewed, request)
    review = reviewed.review
    details: dict[str, Any] = {
        "dose_ug": review.dose_ug,
        "duration_min": review.duration_min,
        "bolus_volume_ml": round(review.volume_ml, 5),
        "concentration_ug_per_ml": review.concentration_ug_per_ml,
        "day_total_ug": round(review.day_total_ug, 2),
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
        "confirmation_reason": request.reason if review.needs_confirmation else None,
    }
    action = _Action(
        VisitKind.BOLUS,
        details,
        lambda link: link.clinician_bolus(review.dose_ug, review.duration_min),
    )
    _run(db, links, (patient, pump, user), now, action, after_pump_command)
    return reviewed


# --- stop and resume ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StopOutlook:
    """What stopping means for this patient, in words, before the physician stops."""

    daily_dose_ug: float
    withdrawal_onset_h: float | None  # from the patient's own model; None: no crossing

    def words(self) -> str:
        said = (
            "Stopping delivery begins withdrawal: the pump keeps only a minimum rate to hold "
            "the catheter open."
        )
        if self.withdrawal_onset_h is None:
            return said + " Watch for withdrawal signs."
        return (
            f"{said} At the current {self.daily_dose_ug:.4g} µg/day, signs are expected from "
            f"about {self.withdrawal_onset_h:.0f} hours after the stop (the patient's own "
            "model); they grow over the next days."
        )


def stop_outlook(db: Session, patient: Patient, pump: Pump) -> StopOutlook:
    _, program = _program(db, pump)
    dose = program.daily_dose_ug()
    return StopOutlook(dose, withdrawal_onset_h(patient_model(db, patient), dose))


@dataclass(frozen=True, slots=True)
class ResumeOutlook:
    """The program and the dose that restart when the pump resumes."""

    version: int
    daily_dose_ug: float

    def words(self) -> str:
        return (
            f"Delivery restarts on program version {self.version}: "
            f"{self.daily_dose_ug:.4g} µg/day ({self.daily_dose_ug / HOURS_PER_DAY:.3g} µg/h)"
        )


def resume_outlook(db: Session, pump: Pump) -> ResumeOutlook:
    version, program = _program(db, pump)
    return ResumeOutlook(version, program.daily_dose_ug())


def stop_pump(
    db: Session, links: PumpLinks, patient: Patient, user: User, reason: object, now: datetime
) -> StopOutlook:
    """Stop delivery, with a reason (withdrawal begins: the outlook says when)."""
    pump = active_pump(db, patient)
    why = _reason(reason, "stopping delivery begins withdrawal")
    outlook = stop_outlook(db, patient, pump)
    details: dict[str, Any] = {
        "reason": why,
        "daily_dose_ug": round(outlook.daily_dose_ug, 2),
        "withdrawal_onset_h": None
        if outlook.withdrawal_onset_h is None
        else round(outlook.withdrawal_onset_h, 1),
    }
    _run(db, links, (patient, pump, user), now, _Action(VisitKind.STOP, details, _stop))
    return outlook


def resume_pump(
    db: Session, links: PumpLinks, patient: Patient, user: User, now: datetime
) -> ResumeOutlook:
    pump = active_pump(db, patient)
    outlook = resume_outlook(db, pump)
    details: dict[str, Any] = {
        "program_version": outlook.version,
        "daily_dose_ug": round(outlook.daily_dose_ug, 2),
    }
    _run(db, links, (patient, pump, user), now, _Action(VisitKind.RESUME, details, _resume))
    return outlook


def _stop(link: PumpActionLink) -> None:
    link.stop()


def _resume(link: PumpActionLink) -> None:
    link.resume()


def is_stopped(pump: Pump) -> bool:
    """As the pump reported at its last reading."""
    return pump.mode == Mode.STOPPED.value


# --- alarms ---------------------------------------------------------------------------------
def clearable_alarms(db: Session, pump: Pump) -> list[AlarmKind]:
    """The alarms the pump reported at its last reading that a clinician clears (the pump's
    rules, ``ALARM_RULES``); others end with a refill, a new program or a new pump."""
    kinds = db.execute(
        select(Alarm.kind).where(Alarm.pump_id == pump.id, Alarm.active.is_(True))
    ).scalars()
    found = {AlarmKind(k) for k in kinds if k in AlarmKind._value2member_map_}
    return sorted(
        (k for k in found if ALARM_RULES[k].cleared_by is ClearedBy.PROGRAMMER),
        key=lambda k: k.value,
    )


# An alarm's name on the care team's pages (the kind's own name, but the battery's two).
_ALARM_NAMES = {
    AlarmKind.ERI: "battery near its end (ERI)",
    AlarmKind.EOS: "battery finished (EOS)",
}


def alarm_name(kind: AlarmKind) -> str:
    return _ALARM_NAMES.get(kind) or kind.value.replace("_", " ")


def clear_alarm(
    db: Session, links: PumpLinks, patient: Patient, user: User, kind: object, now: datetime
) -> AlarmKind:
    pump = active_pump(db, patient)
    allowed = clearable_alarms(db, pump)
    chosen = next((k for k in allowed if k.value == kind), None)
    if chosen is None:
        names = ", ".join(alarm_name(k) for k in allowed) or "none at the last reading"
        raise InputError("alarm", f"choose an alarm a clinician may clear now: {names}")
    details: dict[str, Any] = {"alarm": chosen.value, "meaning": alarm_words(chosen).means}
    action = _Action(VisitKind.CLEAR_ALARM, details, lambda link: link.clear_alarm(chosen))
    _run(db, links, (patient, pump, user), now, action)
    return chosen


def alarm_test(
    db: Session, links: PumpLinks, patient: Patient, user: User, reason: object, now: datetime
) -> list[dict[str, object]]:
    """Sound each alarm tone once, with a reason; the tones sounded (the pump's rules)."""
    pump = active_pump(db, patient)
    why = _reason(reason, "the test sounds every alarm tone of the pump")
    tones = alarm_test_tones()
    details: dict[str, Any] = {"reason": why, "tones": tones}
    _run(db, links, (patient, pump, user), now, _Action(VisitKind.ALARM_TEST, details, _test))
    return tones


def _test(link: PumpActionLink) -> None:
    link.test_alarm()


# --- the command visit ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Action:
    kind: VisitKind
    details: dict[str, Any]  # what the visit and the audit entry keep
    send: Callable[[PumpActionLink], None]


def _run(
    db: Session,
    links: PumpLinks,
    who: tuple[Patient, Pump, User],
    now: datetime,
    action: _Action,
    after_pump_command: Callable[[], None] | None = None,
) -> Visit:
    """Settle what is pending, then one command visit; its audit entry has the pump's state
    before and after (``pump.<kind>``)."""
    patient, pump, user = who
    kind, details = action.kind, action.details
    link, actions = _action_link(links, pump)
    settle_pending(db, links, pump, now)
    refuse_if_pending(db, pump)

    def complete(visit: Visit, before: dict[str, Any], at: datetime) -> Visit:
        complete_visit(visit, VisitStatus.COMPLETED, at)
        after = {**_snapshot(pump), **details}
        audit.record(db, user, f"pump.{kind.value}", "pump", pump.serial, before, after)
        return visit

    command = PumpCommand(patient, pump, user, kind, now, details, lambda _: action.send(actions))
    return run_command_visit(db, link, command, complete, after_pump_command)


def _snapshot(pump: Pump) -> dict[str, Any]:
    return {"serial": pump.serial, "mode": pump.mode, "reservoir_ml": pump.reservoir_ml}
