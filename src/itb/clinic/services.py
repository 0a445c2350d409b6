"""The clinic's units of work: dashboard, interrogation, program, refill, screening, reconcile.

Each function that changes something commits once. A pump command follows the LoopKit rule
for "uncertain delivery": the visit is committed as ``pump_command_sent`` *before* the command
goes out, then completed with the pump's answer in one transaction; if the process dies in
between, :func:`settle_pending` settles the visit from the pump's event log: at the next start,
the next interrogation or before the next command to that pump.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError, InputError, NotFoundError, SerialMismatchError
from itb.clinic.models import (
    Alarm,
    Catheter,
    Interrogation,
    Patient,
    ProgramVersion,
    Pump,
    PumpEvent,
    RefillRecord,
    Role,
    User,
    Visit,
    VisitKind,
    VisitStatus,
)
from itb.clinic.pumps import (
    NoPumps,
    PumpCommandRefusedError,
    PumpLinks,
    PumpReading,
    PumpUnreachableError,
    SimulatedPumps,
)
from itb.clinic.urgency import days_until, due_dates, eri_estimate, reservoir_plan
from itb.drugs import BACLOFEN
from itb.guardrails import LOW_RESERVOIR_ALARM, LimitError, Verdict
from itb.programmer.priming import (
    CATHETER_LENGTH_CM,
    PrimingPlan,
    implanted_catheter_volume_ml,
    plan_priming,
)
from itb.programmer.programming import Origin, Phase, ProgramReview, review_program
from itb.programmer.refill import (
    DEFAULT_LOW_RESERVOIR_ALARM_ML,
    DiscrepancyCheck,
    check_withdrawn_volume,
)
from itb.programmer.screening import (
    Assessment,
    EarlierDose,
    ResponseRule,
    ScreeningInputError,
    ScreeningTrial,
    assess,
    dose_from_hourly_scores,
)
from itb.pump.firmware import CommandRejected, Firmware
from itb.pump.hardware import MODELS, PumpModel, pump_model
from itb.therapy import Program, ProgramError, program_from_dict

# Event-log kinds that show a command was applied (names from itb.pump.eventlog).
REFILL_EVENT_KINDS = frozenset({"refill"})
PROGRAM_EVENT_KINDS = frozenset({"program"})


# Dashboard -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DashboardRow:
    id: int
    name: str
    mrn: str
    clinician: str | None
    serial: str | None
    model: str | None
    reservoir_ml: float | None
    days_to_low_reservoir: float | None
    days_to_empty: float | None
    days_to_stability_limit: float | None
    days_to_eri: float | None
    next_due_at: datetime | None
    next_refill_at: datetime | None
    days_to_next_refill: float | None = None

    @property
    def days_to_eos(self) -> float | None:
        """End of service: delivery stops a fixed time after ERI (S3 S21: 90 days)."""
        if self.days_to_eri is None or self.model is None:
            return None
        return self.days_to_eri + pump_model(self.model).eos_after_eri_days

    @property
    def most_urgent_days(self) -> float | None:
        days = [
            d
            for d in (self.days_to_low_reservoir, self.days_to_stability_limit, self.days_to_eri)
            if d is not None
        ]
        return min(days) if days else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "mrn": self.mrn,
            "clinician": self.clinician,
            "serial": self.serial,
            "model": self.model,
            "reservoir_ml": self.reservoir_ml,
            "days_to_low_reservoir": _round(self.days_to_low_reservoir),
            "days_to_empty": _round(self.days_to_empty),
            "days_to_stability_limit": _round(self.days_to_stability_limit),
            "days_to_eri": _round(self.days_to_eri),
            "days_to_eos": _round(self.days_to_eos),
            "next_due_at": _iso(self.next_due_at),
            "next_refill_at": _iso(self.next_refill_at),
            "days_to_next_refill": _round(self.days_to_next_refill),
        }


def _round(days: float | None) -> float | None:
    return None if days is None else round(days, 1)


def dashboard(
    db: Session,
    now: datetime,
    clinician_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[DashboardRow], int]:
    """The patients, most urgent first (soonest of low reservoir, stability limit, ERI).

    Two queries, so that the first pages walk the index on ``pumps.next_due_at`` instead of
    sorting every patient: pumps with a due date first, then everyone else (no pump yet, or a
    pump never read).
    """
    columns = (
        Patient.id,
        Patient.name,
        Patient.mrn,
        User.username,
        Pump.serial,
        Pump.model,
        Pump.reservoir_ml,
        Pump.low_reservoir_at,
        Pump.empty_at,
        Pump.stability_at,
        Pump.eri_at,
        Pump.next_due_at,
        Pump.next_refill_at,
    )
    mine = (Patient.clinician_id == clinician_id) if clinician_id is not None else true()
    dated = (
        select(*columns)
        .select_from(Pump)
        .join(Patient, Patient.id == Pump.patient_id)
        .outerjoin(User, User.id == Patient.clinician_id)
        .where(Pump.active, Pump.next_due_at.is_not(None), mine)
        .order_by(Pump.next_due_at, Pump.id)
    )
    undated = (
        select(*columns)
        .outerjoin(Pump, (Pump.patient_id == Patient.id) & Pump.active)
        .outerjoin(User, User.id == Patient.clinician_id)
        .where(Pump.next_due_at.is_(None), mine)
        .order_by(Patient.id)
    )
    found = list(db.execute(dated.limit(limit).offset(offset)))
    if len(found) < limit:
        dated_count = db.execute(select(func.count()).select_from(dated.subquery())).scalar_one()
        rest_offset = max(offset - dated_count, 0)
        found += db.execute(undated.limit(limit - len(found)).offset(rest_offset)).all()
    total = db.execute(select(func.count()).select_from(Patient).where(mine)).scalar_one()
    rows = [
        DashboardRow(
            id=r.id,
            name=r.name,
            mrn=r.mrn,
            clinician=r.username,
            serial=r.serial,
            model=r.model,
            reservoir_ml=r.reservoir_ml,
            days_to_low_reservoir=days_until(r.low_reservoir_at, now),
            days_to_empty=days_until(r.empty_at, now),
            days_to_stability_limit=days_until(r.stability_at, now),
            days_to_eri=days_until(r.eri_at, now),
            next_due_at=r.next_due_at,
            next_refill_at=r.next_refill_at,
            days_to_next_refill=days_until(r.next_refill_at, now),
        )
        for r in found
    ]
    return rows, total


# Lookups -------------------------------------------------------------------------------------
def get_patient(db: Session, patient_id: int) -> Patient:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise NotFoundError(f"patient {patient_id} not found")
    return patient


def active_pump(db: Session, patient: Patient) -> Pump:
    pump = db.execute(
        select(Pump).where(Pump.patient_id == patient.id, Pump.active)
    ).scalar_one_or_none()
    if pump is None:
        raise ConflictError(f"patient {patient.id} has no implanted pump")
    return pump


def current_program(db: Session, pump: Pump) -> ProgramVersion | None:
    return db.execute(
        select(ProgramVersion)
        .where(ProgramVersion.pump_id == pump.id)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def pump_snapshot(pump: Pump) -> dict[str, Any]:
    """The audit log's before/after view of a pump."""
    return {
        "serial": pump.serial,
        "reservoir_ml": pump.reservoir_ml,
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "daily_dose_ug": pump.daily_dose_ug,
        "filled_at": pump.filled_at,
        "mode": pump.mode,
    }


# Pump history, stored idempotently -------------------------------------------------------------
def ingest_reading(
    db: Session, pump: Pump, reading: PumpReading, visit: Visit | None = None
) -> Interrogation:
    """Store an interrogation: refuse a foreign serial first; each log entry stored once."""
    status = reading.status
    if status.get("serial") != pump.serial:
        raise SerialMismatchError(
            f"the pump answered with serial {status.get('serial')!r}, but the patient's record "
            f"says {pump.serial!r}: nothing was stored"
        )
    seqs = [int(e["seq"]) for e in reading.entries]
    known: set[int] = set()
    if seqs:
        known = set(
            db.execute(
                select(PumpEvent.seq).where(
                    PumpEvent.serial == pump.serial, PumpEvent.seq.in_(seqs)
                )
            ).scalars()
        )
    for entry in reading.entries:
        seq = int(entry["seq"])
        if seq in known:
            continue
        known.add(seq)
        db.add(
            PumpEvent(
                pump_id=pump.id,
                serial=pump.serial,
                seq=seq,
                at=_as_datetime(entry["at"]),
                kind=str(entry["kind"]),
                data_json=audit.canonical_json(entry.get("data", {})),
            )
        )
    if seqs:
        pump.last_event_seq = max(pump.last_event_seq, *seqs)
    _store_alarms(db, pump, status.get("alarms", []))
    at = _as_datetime(status["now"])
    interrogation = Interrogation(
        pump_id=pump.id,
        visit_id=visit.id if visit else None,
        at=at,
        status_json=audit.canonical_json(status),
    )
    db.add(interrogation)
    _update_pump_state(pump, status, at)
    return interrogation


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _store_alarms(db: Session, pump: Pump, alarms: list[dict[str, Any]]) -> None:
    stored = {
        (a.kind, a.raised_at): a
        for a in db.execute(select(Alarm).where(Alarm.pump_id == pump.id)).scalars()
    }
    seen = set()
    for item in alarms:
        key = (str(item["kind"]), _as_datetime(item["at"]))
        seen.add(key)
        alarm = stored.get(key)
        if alarm is None:
            db.add(
                Alarm(
                    pump_id=pump.id,
                    kind=key[0],
                    priority=str(item.get("priority", "")),
                    raised_at=key[1],
                    active=bool(item.get("active", True)),
                )
            )
        else:
            alarm.active = bool(item.get("active", True))
    for key, alarm in stored.items():
        if key not in seen and alarm.active:
            alarm.active = False  # no longer reported by the pump: cleared


def _update_pump_state(pump: Pump, status: dict[str, Any], at: datetime) -> None:
    pump.state_at = at
    pump.mode = str(status.get("mode", ""))
    pump.reservoir_ml = float(status["reservoir_ml"])
    pump.concentration_ug_per_ml = float(status["concentration_ug_per_ml"])
    pump.daily_dose_ug = float(status["daily_dose_ug"])
    pump.low_reservoir_alarm_ml = float(status.get("low_reservoir_alarm_ml", 2.0))
    if status.get("last_refill_at"):
        pump.filled_at = _as_datetime(status["last_refill_at"])
    battery = status.get("battery") or {}
    if battery.get("eri_at"):
        pump.battery_eri_at = _as_datetime(battery["eri_at"])
    elif battery.get("remaining_mah") is not None and pump.concentration_ug_per_ml:
        pump.battery_eri_at = eri_estimate(
            at,
            pump.model,
            float(battery["remaining_mah"]),
            pump.daily_dose_ug / pump.concentration_ug_per_ml,
        )
    refresh_due_dates(pump)


def refresh_due_dates(pump: Pump) -> None:
    """Recompute the projected dates the dashboard sorts on, from the pump's last state."""
    if pump.state_at is None:
        return
    dates = due_dates(
        pump.state_at,
        pump.reservoir_ml,
        pump.low_reservoir_alarm_ml,
        pump.daily_dose_ug,
        pump.concentration_ug_per_ml,
        pump.filled_at,
        pump.battery_eri_at,
        pump.model,
        pump.implanted_at,
    )
    pump.low_reservoir_at = dates.low_reservoir_at
    pump.empty_at = dates.empty_at
    pump.stability_at = dates.stability_at
    pump.eri_at = dates.eri_at
    pump.next_due_at = dates.next_due_at
    pump.next_refill_at = dates.next_refill_at


def interrogate(db: Session, links: PumpLinks, patient: Patient, user: User) -> Interrogation:
    pump = active_pump(db, patient)
    settle_pending(db, links, pump, links.link(pump.serial).now())
    reading = links.link(pump.serial).interrogate(pump.last_event_seq)
    before = pump_snapshot(pump)
    interrogation = ingest_reading(db, pump, reading)
    audit.record(db, user, "pump.interrogate", "pump", pump.serial, before, pump_snapshot(pump))
    db.commit()
    return interrogation


# Program change ----------------------------------------------------------------------------
# The field a REFUSE check of itb.programmer.programming names in a 422.
CHECK_FIELDS = {"daily_dose": "daily_dose_ug"}
PROGRAM_KEYS = ("rate_ug_per_day", "steps", "week")
REASON_MAX_CHARS = 500
# A pump with no refill since its implant fill is in the titration phase (S46: changes every
# 24 h after implant; maintenance changes come at refills) [R]: the stricter increase limits.
TITRATION_UNTIL_FIRST_REFILL = timedelta(days=1)


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
        raise InputError("program", "expected an object with rate_ug_per_day, steps or week")
    body = dict(data)
    confirm = body.pop("confirm", False)
    if not isinstance(confirm, bool):
        raise InputError("confirm", "confirm: allowed true or false")
    reason = body.pop("reason", "")
    if not isinstance(reason, str) or len(reason) > REASON_MAX_CHARS:
        raise InputError("reason", f"reason: text of at most {REASON_MAX_CHARS} characters")
    phase_text = body.pop("phase", None)
    phase = None
    if phase_text is not None:
        try:
            phase = Phase(phase_text)
        except ValueError:
            raise InputError("phase", "phase: allowed titration or maintenance") from None
    return ProgramRequest(body, confirm, reason.strip(), phase)


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
    if not isinstance(request.program, dict) or not request.program:
        raise InputError("program", "expected an object with rate_ug_per_day, steps or week")
    try:
        program = program_from_dict(request.program)
    except ProgramError as exc:
        raise InputError(_field_of(str(exc)), str(exc)) from None
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
        raise InputError("concentration_ug_per_ml", str(exc)) from None


def accept_program(review: ProgramReview, request: ProgramRequest) -> Program:
    """The program to send, or InputError naming the field: a refusal, or a change that needs
    ``confirm: true`` and a ``reason``."""
    for check in review.checks:
        if check.verdict is Verdict.REFUSE:
            field = CHECK_FIELDS.get(check.name) or next(
                (k for k in PROGRAM_KEYS if k in request.program), "program"
            )
            raise InputError(field, "refused: " + "; ".join(review.reasons(Verdict.REFUSE)))
    if review.needs_confirmation:
        warnings = "; ".join(review.reasons(Verdict.WARN))
        if not request.confirm:
            raise InputError(
                "confirm",
                "confirm: this change needs an explicit confirmation (confirm: true) with a "
                f"reason, because {warnings}",
            )
        if not request.reason:
            raise InputError(
                "reason", f"reason: a reason (1 to {REASON_MAX_CHARS} characters) is required "
                f"to confirm, because {warnings}",
            )  # fmt: skip
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
    _refuse_if_pending(db, pump)
    link = links.link(pump.serial)
    previous = current_program(db, pump)
    details: dict[str, Any] = {
        "program": program.to_dict(),
        "daily_dose_ug": round(review.new_daily_dose_ug, 2),
        "change_percent": None
        if review.change_percent is None
        else round(review.change_percent, 1),
        "verdict": review.verdict.value,
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
    }
    if review.needs_confirmation:
        details["confirmation_reason"] = request.reason
    visit = _start_command_visit(db, patient, pump, user, VisitKind.PROGRAMMING, now, details)
    _send(db, visit, now, lambda: link.set_program(program))
    if after_pump_command:
        after_pump_command()
    before = pump_snapshot(pump)
    ingest_reading(db, pump, link.interrogate(pump.last_event_seq), visit)
    version = _add_program_version(db, pump, program, user, visit, now)
    _complete(visit, VisitStatus.COMPLETED, now)
    audit.record(
        db,
        user,
        "pump.program",
        "pump",
        pump.serial,
        {**before, "program": json.loads(previous.program_json) if previous else None},
        {
            **pump_snapshot(pump),
            "program": program.to_dict(),
            "version": version.version,
            "verdict": review.verdict.value,
            "confirmation_reason": request.reason if review.needs_confirmation else None,
        },
    )
    db.commit()
    return version, review


def _field_of(message: str) -> str:
    head = message.split(":", 1)[0].split("=", 1)[0].strip()
    return head if head and " " not in head else "program"


def _add_program_version(
    db: Session, pump: Pump, program: Program, user: User | None, visit: Visit | None, at: datetime
) -> ProgramVersion:
    latest = current_program(db, pump)
    version = ProgramVersion(
        pump_id=pump.id,
        version=(latest.version + 1) if latest else 1,
        program_json=audit.canonical_json(program.to_dict()),
        daily_dose_ug=program.daily_dose_ug(),
        created_at=at,
        user_id=user.id if user else None,
        visit_id=visit.id if visit else None,
    )
    db.add(version)
    db.flush()
    return version


# Refill --------------------------------------------------------------------------------------
# what the user said about a flagged withdrawn volume, kept in the visit and the audit log
DISCREPANCY_ACK_KEYS = ("discrepancy_acknowledged", "discrepancy_note")


class AcknowledgementRequired(InputError):
    """A flagged withdrawn volume not acknowledged: nothing sent, nothing stored (HTTP 422)."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        super().__init__(
            "acknowledge_discrepancy",
            "acknowledge_discrepancy: the withdrawn volume is flagged (possible pump, catheter "
            "or pocket-fill problem); acknowledge it to refill: " + "; ".join(reasons),
        )


@dataclass(frozen=True, slots=True)
class RefillInput:
    withdrawn_ml: float
    filled_ml: float
    concentration_ug_per_ml: float


def validate_refill(pump: Pump, values: RefillInput) -> RefillInput:
    model = pump_model(pump.model)
    if not (
        math.isfinite(values.withdrawn_ml) and 0.0 <= values.withdrawn_ml <= model.reservoir_ml
    ):
        raise InputError(
            "withdrawn_ml",
            f"withdrawn_ml={values.withdrawn_ml:g} mL: allowed 0 to {model.reservoir_ml:g} mL",
        )
    # never overfill (S26 S27); an empty fill is not a refill
    if not (math.isfinite(values.filled_ml) and 0.0 < values.filled_ml <= model.reservoir_ml):
        raise InputError(
            "filled_ml",
            f"filled_ml={values.filled_ml:g} mL: allowed more than 0 up to the reservoir's "
            f"{model.reservoir_ml:g} mL",
        )
    if values.concentration_ug_per_ml not in BACLOFEN.concentrations_ug_per_ml:
        allowed = ", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml)
        raise InputError(
            "concentration_ug_per_ml",
            f"concentration_ug_per_ml={values.concentration_ug_per_ml:g}: allowed {allowed} µg/mL",
        )
    return values


def expected_volume_ml(pump: Pump, now: datetime) -> float | None:
    """What the reservoir should hold now: the last reading less the refill plan's volume per
    day (docs/refill.md) for the days since."""
    if pump.reservoir_ml is None or pump.state_at is None:
        return None
    plan = reservoir_plan(
        pump.model,
        pump.reservoir_ml,
        pump.low_reservoir_alarm_ml,
        pump.daily_dose_ug,
        pump.concentration_ug_per_ml,
    )
    if plan is None:
        return pump.reservoir_ml
    elapsed_days = max(days_until(now, pump.state_at) or 0.0, 0.0)
    return max(pump.reservoir_ml - elapsed_days * plan.volume_per_day_ml, 0.0)


def delivered_since_fill_ml(db: Session, pump: Pump, status: dict[str, Any]) -> float:
    """What the pump counted as delivered since its last fill: its own figure when it reports
    one, else the last recorded fill less the volume it expects now."""
    reported = status.get("delivered_since_refill_ml")
    if reported is not None:
        return max(float(reported), 0.0)
    last_fill_ml = db.execute(
        select(RefillRecord.filled_ml)
        .where(RefillRecord.pump_id == pump.id)
        .order_by(RefillRecord.at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last_fill_ml is None:
        last_fill_ml = pump_model(pump.model).reservoir_ml
    return max(last_fill_ml - float(status["reservoir_ml"]), 0.0)


def withdrawn_volume_check(pump: Pump, details: dict[str, Any]) -> DiscrepancyCheck:
    """The programmer's withdrawn-volume check (S28 and the pump's accuracy band)."""
    model = pump_model(pump.model)
    return check_withdrawn_volume(
        model,
        min(max(details["expected_ml"], 0.0), model.reservoir_ml),
        details["withdrawn_ml"],
        # a visit stored before this field existed: the pump's whole reservoir less what is left
        details.get("delivered_since_fill_ml", model.reservoir_ml - details["expected_ml"]),
    )


def refill(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    user: User,
    values: RefillInput,
    now: datetime,
    after_pump_command: Callable[[], None] | None = None,
    acknowledge_discrepancy: bool = False,
    discrepancy_note: str = "",
) -> RefillRecord:
    """Interrogate, record the visit as sent, refill the pump, then store everything at once.

    A withdrawn volume flagged by the programmer's check (S28, the pump's accuracy band) needs
    ``acknowledge_discrepancy``: without it nothing is sent or stored (InputError on
    ``acknowledge_discrepancy`` with the reasons). The acknowledgement and the note go into the
    visit and the audit log."""
    pump = active_pump(db, patient)
    validate_refill(pump, values)
    settle_pending(db, links, pump, now)
    _refuse_if_pending(db, pump)
    link = links.link(pump.serial)
    # a fresh reading first: the expected volume and the serial check come from the pump itself
    reading = link.interrogate(pump.last_event_seq)
    ingest_reading(db, pump, reading)
    expected_ml = pump.reservoir_ml or 0.0
    details: dict[str, Any] = {
        "expected_ml": expected_ml,
        "withdrawn_ml": values.withdrawn_ml,
        "delivered_since_fill_ml": delivered_since_fill_ml(db, pump, reading.status),
        "filled_ml": values.filled_ml,
        "concentration_ug_per_ml": values.concentration_ug_per_ml,
    }
    check = withdrawn_volume_check(pump, details)
    details["discrepancy_check"] = check.to_dict()
    if check.flagged:
        if not acknowledge_discrepancy:
            db.rollback()  # not even the fresh reading: nothing is stored
            raise AcknowledgementRequired(check.reasons)
        details["discrepancy_acknowledged"] = True
        details["discrepancy_note"] = discrepancy_note.strip()[:REASON_MAX_CHARS]
    visit = _start_command_visit(db, patient, pump, user, VisitKind.REFILL, now, details)
    _send(db, visit, now, lambda: link.refill(values.filled_ml, values.concentration_ug_per_ml))
    if after_pump_command:
        after_pump_command()
    return _finish_refill(db, links, pump, visit, user, now, VisitStatus.COMPLETED)


def _finish_refill(
    db: Session,
    links: PumpLinks,
    pump: Pump,
    visit: Visit,
    user: User | None,
    now: datetime,
    status: VisitStatus,
) -> RefillRecord:
    details = json.loads(visit.details_json)
    before = pump_snapshot(pump)
    ingest_reading(db, pump, links.link(pump.serial).interrogate(pump.last_event_seq), visit)
    check = withdrawn_volume_check(pump, details)
    record = RefillRecord(
        visit_id=visit.id,
        pump_id=pump.id,
        at=pump.filled_at or now,
        expected_ml=details["expected_ml"],
        withdrawn_ml=details["withdrawn_ml"],
        filled_ml=details["filled_ml"],
        concentration_ug_per_ml=details["concentration_ug_per_ml"],
        discrepancy_ml=check.discrepancy_ml,
        discrepancy_flagged=check.flagged,
    )
    db.add(record)
    _complete(visit, status, now)
    audit.record(
        db,
        user,
        "pump.refill",
        "pump",
        pump.serial,
        before,
        {
            **pump_snapshot(pump),
            "visit_id": visit.id,
            "visit_status": status.value,
            **{k: v for k, v in details.items() if k in DISCREPANCY_ACK_KEYS},
        },
    )
    db.commit()
    return record


# The crash-safe protocol ----------------------------------------------------------------------
def _refuse_if_pending(db: Session, pump: Pump) -> None:
    pending = db.execute(
        select(Visit.id).where(
            Visit.pump_id == pump.id, Visit.status == VisitStatus.PUMP_COMMAND_SENT.value
        )
    ).first()
    if pending:
        raise ConflictError(
            f"visit {pending[0]} still has a pump command in flight; reconcile it first"
        )


def _start_command_visit(
    db: Session,
    patient: Patient,
    pump: Pump,
    user: User,
    kind: VisitKind,
    now: datetime,
    details: dict[str, Any],
) -> Visit:
    """Commit the visit as ``pump_command_sent`` before the command leaves."""
    visit = add_visit(
        db,
        patient,
        pump,
        user,
        kind,
        now,
        {**details, "seq_before": pump.last_event_seq},
        status=VisitStatus.PUMP_COMMAND_SENT,
    )
    audit.record(db, user, f"visit.{kind.value}.sent", "visit", visit.id, None, details)
    db.commit()
    return visit


def _send(db: Session, visit: Visit, now: datetime, command: Callable[[], None]) -> None:
    """Send the command; a refusal (the pump changed nothing) fails the visit and says why; a
    link that failed before the command left marks it not applied."""
    try:
        command()
    except PumpCommandRefusedError as exc:
        _complete(visit, VisitStatus.FAILED, now)
        visit.notes = f"refused by the pump: {exc}"
        audit.record(db, None, "visit.failed", "visit", visit.id, None, {"reason": str(exc)})
        db.commit()
        raise InputError(exc.field, f"the pump refused the command: {exc}") from None
    except PumpUnreachableError as exc:  # the command never left: certainly not applied
        _complete(visit, VisitStatus.NOT_APPLIED, now)
        visit.notes = f"not sent: {exc}"
        audit.record(db, None, "visit.not_applied", "visit", visit.id, None, {"reason": str(exc)})
        db.commit()
        raise
    # PumpCommandUncertainError (sent, no answer) propagates: the visit stays
    # pump_command_sent and reconcile_pending settles it from the pump's event log.


def _complete(visit: Visit, status: VisitStatus, now: datetime) -> None:
    visit.status = status.value
    visit.completed_at = now


def _event_after(
    db: Session, pump: Pump, seq_before: int, kinds: frozenset[str]
) -> PumpEvent | None:
    return db.execute(
        select(PumpEvent)
        .where(
            PumpEvent.serial == pump.serial, PumpEvent.seq > seq_before, PumpEvent.kind.in_(kinds)
        )
        .order_by(PumpEvent.seq)
        .limit(1)
    ).scalar_one_or_none()


def reconcile_pending(db: Session, links: PumpLinks, now: datetime) -> list[Visit]:
    """At start: settle each visit left ``pump_command_sent`` from its pump's event log."""
    pump_ids = db.execute(
        select(Visit.pump_id).where(Visit.status == VisitStatus.PUMP_COMMAND_SENT.value).distinct()
    ).scalars()
    settled: list[Visit] = []
    for pump_id in list(pump_ids):
        pump = db.get(Pump, pump_id)
        if pump is not None:
            settled.extend(settle_pending(db, links, pump, now))
    return settled


def settle_pending(db: Session, links: PumpLinks, pump: Pump, now: datetime) -> list[Visit]:
    """Settle this pump's visits left ``pump_command_sent`` (an answer that never came) from
    its event log: at start, at the next interrogation, and before the next command."""
    pending = db.execute(
        select(Visit)
        .where(Visit.pump_id == pump.id, Visit.status == VisitStatus.PUMP_COMMAND_SENT.value)
        .order_by(Visit.id)
    ).scalars()
    settled = []
    for visit in list(pending):
        link = links.link(pump.serial)
        details = json.loads(visit.details_json)
        ingest_reading(db, pump, link.interrogate(pump.last_event_seq), visit)
        kinds = REFILL_EVENT_KINDS if visit.kind == VisitKind.REFILL else PROGRAM_EVENT_KINDS
        applied = _event_after(db, pump, details["seq_before"], kinds)
        if applied is not None and visit.kind == VisitKind.REFILL:
            _finish_refill(db, links, pump, visit, None, now, VisitStatus.COMPLETED_AFTER_RESTART)
        else:
            if applied is not None:
                program = program_from_dict(details["program"])
                _add_program_version(db, pump, program, visit.user, visit, applied.at)
            status = VisitStatus.COMPLETED_AFTER_RESTART if applied else VisitStatus.NOT_APPLIED
            _complete(visit, status, now)
            audit.record(
                db, None, "visit.reconciled", "visit", visit.id, None, {"status": status.value}
            )
            db.commit()
        settled.append(visit)
    return settled


# Screening trial -----------------------------------------------------------------------------
def screening_history(db: Session, patient: Patient) -> list[tuple[Visit, EarlierDose]]:
    """The patient's screening doses, oldest first, each with its recorded outcome. Visits
    recorded before the hourly scores existed carry ``responded`` instead of ``positive``."""
    rows = db.execute(
        select(Visit)
        .where(Visit.patient_id == patient.id, Visit.kind == VisitKind.SCREENING_TRIAL.value)
        .order_by(Visit.started_at, Visit.id)
    ).scalars()
    history = []
    for visit in rows:
        details = json.loads(visit.details_json)
        positive = bool(details.get("positive", details.get("responded", False)))
        history.append((visit, EarlierDose(float(details["dose_ug"]), positive, visit.started_at)))
    return history


def screening_assessment(visit: Visit, earlier: Sequence[EarlierDose]) -> Assessment | None:
    """Recompute a stored screening dose with the rule it was recorded under (None for a visit
    recorded before the hourly scores)."""
    details = json.loads(visit.details_json)
    if "scores" not in details:
        return None
    dose = dose_from_hourly_scores(
        float(details["dose_ug"]),
        {int(h): float(m) for h, m in details["scores"].items()},
        visit.started_at,
    )
    rule = ResponseRule(float(details["min_fall_mas"]))
    return assess(ScreeningTrial(dose, tuple(earlier)), rule)


def record_screening_dose(
    db: Session,
    patient: Patient,
    user: User,
    dose_ug: float,
    scores_by_hour: Mapping[int, float],
    now: datetime,
    given_at: datetime | None = None,
    notes: str = "",
    rule: ResponseRule = ResponseRule(),
) -> tuple[Visit, Assessment]:
    """Store one trial bolus with its hourly MAS (hour 0 = baseline) and the programmer's
    comparison, classification and decision (itb.programmer.screening). ``given_at``: when the
    bolus was given; by default the last score was just taken."""
    if not scores_by_hour:
        raise InputError("scores", "scores: hour 0 (baseline) and at least 4 later hours needed")
    try:
        last_hour = max(h for h in scores_by_hour if isinstance(h, int))
    except ValueError:
        last_hour = 0
    bolus_at = given_at if given_at is not None else now - timedelta(hours=last_hour)
    if bolus_at + timedelta(hours=last_hour) > now:
        raise InputError(
            "given_at",
            f"given_at={bolus_at.isoformat()}: the {last_hour} h score would be in the future; "
            f"allowed up to {now - timedelta(hours=last_hour):%Y-%m-%d %H:%M}",
        )
    try:
        dose = dose_from_hourly_scores(dose_ug, scores_by_hour, bolus_at)
        earlier = tuple(d for _, d in screening_history(db, patient))
        assessment = assess(ScreeningTrial(dose, earlier), rule)
    except ScreeningInputError as exc:
        raise InputError(exc.field, str(exc)) from None
    result = assessment.to_dict()
    details = {
        "dose_ug": dose.dose_ug,
        "given_at": bolus_at.isoformat(),
        "scores": {str(h): float(m) for h, m in sorted(scores_by_hour.items())},
        "min_fall_mas": rule.min_fall_mas,
        "positive": assessment.classification.positive,
        "max_fall_mas": result["classification"]["max_fall_mas"],
        "decision": assessment.decision.action.value,
        "next_dose_ug": assessment.decision.next_dose_ug,
        "not_before": result["decision"]["not_before"],
        "first_daily_dose_ug": assessment.decision.first_daily_dose_ug,
        "reason": assessment.decision.reason,
    }
    visit = Visit(
        patient_id=patient.id,
        user_id=user.id,
        kind=VisitKind.SCREENING_TRIAL.value,
        status=VisitStatus.COMPLETED.value,
        started_at=bolus_at,
        completed_at=now,
        details_json=audit.canonical_json(details),
        notes=notes[:2000],
    )
    db.add(visit)
    db.flush()
    audit.record(db, user, "visit.screening_trial", "visit", visit.id, None, details)
    db.commit()
    return visit, assessment


def visits(db: Session, patient: Patient) -> list[Visit]:
    return list(
        db.execute(
            select(Visit).where(Visit.patient_id == patient.id).order_by(Visit.started_at.desc())
        ).scalars()
    )


# Read models for the pages and the API --------------------------------------------------------
def visit_dict(visit: Visit) -> dict[str, Any]:
    return {
        "id": visit.id,
        "kind": visit.kind,
        "status": visit.status,
        "started_at": visit.started_at.isoformat(),
        "completed_at": visit.completed_at.isoformat() if visit.completed_at else None,
        "user": visit.user.username if visit.user else None,
        "details": json.loads(visit.details_json),
        "notes": visit.notes,
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def pump_dict(pump: Pump, now: datetime) -> dict[str, Any]:
    return {
        "serial": pump.serial,
        "model": pump.model,
        "implanted_at": _iso(pump.implanted_at),
        "state_at": _iso(pump.state_at),
        "mode": pump.mode,
        "reservoir_ml": pump.reservoir_ml,
        "expected_reservoir_ml_now": expected_volume_ml(pump, now),
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "daily_dose_ug": pump.daily_dose_ug,
        "low_reservoir_alarm_ml": pump.low_reservoir_alarm_ml,
        "filled_at": _iso(pump.filled_at),
        "low_reservoir_at": _iso(pump.low_reservoir_at),
        "empty_at": _iso(pump.empty_at),
        "stability_at": _iso(pump.stability_at),
        "eri_at": _iso(pump.eri_at),
        "next_refill_at": _iso(next_refill_at(pump)),
        "days_to_next_refill": _round(days_until(pump.next_refill_at, now)),
        "days_to_low_reservoir": _round(days_until(pump.low_reservoir_at, now)),
        "days_to_empty": _round(days_until(pump.empty_at, now)),
        "days_to_stability_limit": _round(days_until(pump.stability_at, now)),
        "days_to_eri": _round(days_until(pump.eri_at, now)),
    }


def next_refill_at(pump: Pump) -> datetime | None:
    """The programmer's next refill date (plan_refill), projected at the last reading."""
    return pump.next_refill_at


def last_interrogation(db: Session, pump: Pump) -> Interrogation | None:
    return db.execute(
        select(Interrogation)
        .where(Interrogation.pump_id == pump.id)
        .order_by(Interrogation.at.desc(), Interrogation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def recent_events(db: Session, pump: Pump, limit: int = 200) -> list[dict[str, Any]]:
    """The pump's own event log as stored, most recent first, in the report's shape."""
    rows = db.execute(
        select(PumpEvent)
        .where(PumpEvent.pump_id == pump.id)
        .order_by(PumpEvent.seq.desc())
        .limit(limit)
    ).scalars()
    return [
        {"seq": e.seq, "at": e.at.isoformat(), "kind": e.kind, "data": json.loads(e.data_json)}
        for e in rows
    ]


def program_history(db: Session, pump: Pump) -> list[ProgramVersion]:
    return list(
        db.execute(
            select(ProgramVersion)
            .where(ProgramVersion.pump_id == pump.id)
            .order_by(ProgramVersion.version.desc())
        ).scalars()
    )


def alarms(db: Session, pump: Pump) -> list[Alarm]:
    return list(
        db.execute(
            select(Alarm)
            .where(Alarm.pump_id == pump.id)
            .order_by(Alarm.active.desc(), Alarm.raised_at.desc())
            .limit(50)
        ).scalars()
    )


def patient_summary(db: Session, patient: Patient, now: datetime) -> dict[str, Any]:
    pump = db.execute(
        select(Pump).where(Pump.patient_id == patient.id, Pump.active)
    ).scalar_one_or_none()
    out: dict[str, Any] = {
        "id": patient.id,
        "name": patient.name,
        "mrn": patient.mrn,
        "origin": patient.origin,
        "clinician": patient.clinician.username if patient.clinician else None,
        "pump": None,
        "program": None,
        "alarms": [],
        "visits": [visit_dict(v) for v in visits(db, patient)[:100]],
    }
    if pump is not None:
        out["pump"] = pump_dict(pump, now)
        current = current_program(db, pump)
        if current is not None:
            out["program"] = {
                "version": current.version,
                "program": json.loads(current.program_json),
                "daily_dose_ug": current.daily_dose_ug,
            }
        out["alarms"] = [
            {
                "kind": a.kind,
                "priority": a.priority,
                "raised_at": a.raised_at.isoformat(),
                "active": a.active,
            }
            for a in alarms(db, pump)
        ]
    return out


def refill_summary(db: Session, record: RefillRecord, now: datetime) -> dict[str, Any]:
    pump = db.get(Pump, record.pump_id)
    visit = db.get(Visit, record.visit_id)
    assert pump is not None and visit is not None
    check = withdrawn_volume_check(pump, json.loads(visit.details_json))
    return {
        "visit_id": record.visit_id,
        "at": record.at.isoformat(),
        "expected_ml": record.expected_ml,
        "withdrawn_ml": record.withdrawn_ml,
        "filled_ml": record.filled_ml,
        "concentration_ug_per_ml": record.concentration_ug_per_ml,
        "discrepancy_ml": round(record.discrepancy_ml, 3),
        "discrepancy_flagged": record.discrepancy_flagged,
        "discrepancy_check": check.to_dict(),
        "pump": pump_dict(pump, now),
    }


# Onboarding: new patient, implant, pump replacement ------------------------------------------
ORIGINS = ("spinal", "cerebral")  # origin of spasticity (S46: the titration limits differ)
NAME_MAX_CHARS = 128
MRN_MAX_CHARS = 32
SERIAL_MAX_CHARS = 32
AGE_MAX_YEARS = 120
# a record older than this is a typing error, not an implant or replacement date
RECORD_MAX_AGE_YEARS = 50
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def _text(field: str, value: Any, max_chars: int, pattern: re.Pattern[str] | None = None) -> str:
    text = value.strip() if isinstance(value, str) else ""
    allowed = f"1 to {max_chars} characters"
    if pattern is not None:
        allowed += ": letters, digits and . _ / - (starting with a letter or digit)"
    if (
        not text
        or len(text) > max_chars
        or not text.isprintable()
        or (pattern is not None and not pattern.match(text))
    ):
        raise InputError(field, f"{field}: allowed {allowed}")
    return text


def _record_date(field: str, value: datetime | None, now: datetime, earliest: datetime) -> datetime:
    when = now if value is None else value
    if when > now or when < earliest:
        raise InputError(
            field,
            f"{field}={when.isoformat()}: allowed {earliest:%Y-%m-%d %H:%M} to "
            f"{now:%Y-%m-%d %H:%M} (not in the future)",
        )
    return when


def _years_before(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


@dataclass(frozen=True, slots=True)
class PatientInput:
    name: str
    mrn: str
    origin: str
    birth_date: date | None = None
    age_years: int | None = None  # when the date of birth is not known
    clinician_id: int | None = None  # default: the physician who creates the record


def patient_snapshot(patient: Patient) -> dict[str, Any]:
    return {
        "name": patient.name,
        "mrn": patient.mrn,
        "birth_date": _iso(patient.birth_date),
        "origin": patient.origin,
        "clinician_id": patient.clinician_id,
    }


def create_patient(db: Session, user: User, data: PatientInput, now: datetime) -> Patient:
    """A new patient record (physicians): MRN unique, date of birth (or age), origin, clinician."""
    name = _text("name", data.name, NAME_MAX_CHARS)
    mrn = _text("mrn", data.mrn, MRN_MAX_CHARS, _IDENTIFIER)
    if data.origin not in ORIGINS:
        raise InputError("origin", f"origin={data.origin!r}: allowed {' or '.join(ORIGINS)}")
    oldest = _years_before(now, AGE_MAX_YEARS)
    birth: datetime | None = None
    if data.birth_date is not None:
        birth = datetime.combine(data.birth_date, datetime.min.time())
        if birth > now or birth < oldest:
            raise InputError(
                "birth_date",
                f"birth_date={data.birth_date.isoformat()}: allowed {oldest:%Y-%m-%d} to "
                f"{now:%Y-%m-%d}",
            )
    elif data.age_years is not None:
        if not 0 <= data.age_years <= AGE_MAX_YEARS:
            raise InputError(
                "age_years", f"age_years={data.age_years}: allowed 0 to {AGE_MAX_YEARS} years"
            )
        # the age only: the birthday is taken as today, the year is right
        birth = datetime.combine(_years_before(now, data.age_years).date(), datetime.min.time())
    clinician_id = user.id if data.clinician_id is None else data.clinician_id
    clinician = db.get(User, clinician_id) if 0 < clinician_id < 2**31 else None
    if clinician is None or clinician.role != Role.PHYSICIAN.value or not clinician.active:
        raise InputError(
            "clinician_id", f"clinician_id={clinician_id}: allowed the id of an active physician"
        )
    if db.execute(select(Patient.id).where(Patient.mrn == mrn)).first() is not None:
        raise InputError(
            "mrn", f"mrn={mrn!r}: already used by another patient; allowed: an MRN not used before"
        )
    patient = Patient(
        mrn=mrn, name=name, birth_date=birth, origin=data.origin, clinician_id=clinician.id,
        created_at=now,
    )  # fmt: skip
    db.add(patient)
    db.flush()
    audit.record(db, user, "patient.create", "patient", patient.id, None, patient_snapshot(patient))
    db.commit()
    return patient


@dataclass(frozen=True, slots=True)
class PumpInput:
    """A new pump as implanted: model, serial, first fill and program.

    For a replacement, ``concentration_ug_per_ml``, ``program`` and ``low_reservoir_alarm_ml``
    may be None: they carry over from the pump it replaces."""

    model: str
    serial: str
    filled_ml: float
    concentration_ug_per_ml: float | None = None
    program: dict[str, Any] | None = None
    low_reservoir_alarm_ml: float | None = None
    at: datetime | None = None  # the implant (or replacement) date; default now
    confirm: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ImplantResult:
    patient: Patient
    pump: Pump
    visit: Visit
    review: ProgramReview
    catheter_length_cm: float
    catheter_volume_ml: float
    priming: dict[str, Any]  # itb.programmer.priming.PrimingPlan.to_dict()


def catheter_length_cm(catheter_trimmed_cm: float) -> float:
    """The implanted length after ``catheter_trimmed_cm`` were cut off (S31: 110 cm catheter)."""
    return CATHETER_LENGTH_CM - catheter_trimmed_cm


def check_catheter_trimmed_cm(catheter_trimmed_cm: float) -> float:
    """At least 1 cm stays implanted (programmer/priming.py): trimmed 0 to 109 cm."""
    high = CATHETER_LENGTH_CM - 1.0
    if not (math.isfinite(catheter_trimmed_cm) and 0.0 <= catheter_trimmed_cm <= high):
        raise InputError(
            "catheter_trimmed_cm",
            f"catheter_trimmed_cm={catheter_trimmed_cm:g} cm cut off the {CATHETER_LENGTH_CM:g} "
            f"cm catheter: allowed 0 to {high:g} cm (an implanted length of 1 to "
            f"{CATHETER_LENGTH_CM:g} cm, S31)",
        )
    return catheter_trimmed_cm


def add_pump_with_catheter(
    db: Session,
    patient: Patient,
    model: str,
    serial: str,
    implanted_at: datetime,
    catheter_trimmed_cm: float,
    paired_key_hex: str | None = None,
) -> tuple[Pump, Catheter]:
    """The pump and catheter rows of an implant (the demo's seed and :func:`record_implant`):
    the catheter's volume from its implanted length (S31)."""
    pump = Pump(
        patient_id=patient.id,
        model=model,
        serial=serial,
        implanted_at=implanted_at,
        paired_key_hex=paired_key_hex,
        active=True,
    )
    db.add(pump)
    db.flush()
    catheter = Catheter(
        patient_id=patient.id,
        pump_id=pump.id,
        length_cm=catheter_length_cm(catheter_trimmed_cm),
        volume_ml=round(implanted_catheter_volume_ml(catheter_trimmed_cm), 4),
        implanted_at=implanted_at,
    )
    db.add(catheter)
    db.flush()
    return pump, catheter


def _validate_pump_input(
    db: Session,
    links: PumpLinks,
    data: PumpInput,
    earliest: datetime,
    now: datetime,
    date_field: str = "implanted_at",
) -> tuple[PumpModel, str, datetime]:
    if data.model not in MODELS:
        raise InputError("model", f"model={data.model!r}: allowed {', '.join(MODELS)}")
    model = MODELS[data.model]
    serial = _text("serial", data.serial, SERIAL_MAX_CHARS, _IDENTIFIER)
    if db.execute(select(Pump.id).where(Pump.serial == serial)).first() is not None:
        raise InputError(
            "serial",
            f"serial={serial!r}: already on another pump record; allowed: a serial not used before",
        )
    if isinstance(links, SimulatedPumps) and serial in links.serials():
        raise InputError(
            "serial",
            f"serial={serial!r}: already a simulated pump; allowed: a serial not used before",
        )
    oldest = _years_before(now, RECORD_MAX_AGE_YEARS)
    at = _record_date(date_field, data.at, now, max(earliest, oldest))
    # never overfill (S26 S27); an empty pump is not implanted
    if not (math.isfinite(data.filled_ml) and 0.0 < data.filled_ml <= model.reservoir_ml):
        raise InputError(
            "filled_ml",
            f"filled_ml={data.filled_ml:g} mL: allowed more than 0 up to the {model.name}'s "
            f"{model.reservoir_ml:g} mL reservoir (never overfill)",
        )
    return model, serial, at


def _validate_alarm(model: PumpModel, alarm_ml: float) -> float:
    low, high = LOW_RESERVOIR_ALARM.absolute_min, LOW_RESERVOIR_ALARM.absolute_max  # S37 [R]
    high = min(high, model.reservoir_ml)
    if not (math.isfinite(alarm_ml) and low <= alarm_ml < high):
        raise InputError(
            "low_reservoir_alarm_ml",
            f"low_reservoir_alarm_ml={alarm_ml:g} mL: allowed {low:g} mL up to below {high:g} mL",
        )
    return alarm_ml


def _review_first_program(
    model: PumpModel,
    old: Program | None,
    data: dict[str, Any],
    concentration_ug_per_ml: float,
    patient: Patient,
    phase: Phase,
    confirm: bool,
    reason: str,
) -> tuple[Program, ProgramReview]:
    """The same checks as a program change (review_program): dose limits, a refusal above the
    absolute maximum, the pump's flow range, a change that needs confirmation."""
    request = parse_program_request({**data, "confirm": confirm, "reason": reason})
    if not request.program:
        raise InputError("program", "program: expected rate_ug_per_day, steps or week")
    try:
        program = program_from_dict(request.program)
    except ProgramError as exc:
        raise InputError(_field_of(str(exc)), str(exc)) from None
    review = review_program(
        model, old, program, concentration_ug_per_ml, patient_origin(patient), phase
    )
    return accept_program(review, request), review


def _check_concentration(value: float | None) -> float:
    if value is None or value not in BACLOFEN.concentrations_ug_per_ml:
        allowed = ", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml)
        raise InputError(
            "concentration_ug_per_ml",
            f"concentration_ug_per_ml={value}: allowed {allowed} µg/mL (the drug library)",
        )
    return value


def _set_entered_state(
    pump: Pump,
    at: datetime,
    filled_ml: float,
    concentration: float,
    dose_ug: float,
    alarm_ml: float,
) -> None:
    """The pump's state as filled and programmed in the operating room; replaced by the pump's
    own figures when it is read."""
    pump.state_at = at
    pump.mode = "running"
    pump.reservoir_ml = filled_ml
    pump.concentration_ug_per_ml = concentration
    pump.daily_dose_ug = dose_ug
    pump.low_reservoir_alarm_ml = alarm_ml
    pump.filled_at = at
    refresh_due_dates(pump)


def _connect_new_pump(
    db: Session,
    links: PumpLinks,
    pump: Pump,
    model: PumpModel,
    program: Program,
    catheter_volume_ml: float,
    visit: Visit,
) -> None:
    """The demo's simulated pumps get a new firmware; any other link must reach the pump with
    that serial (a telemetry pump listed in the pumps file), whose reading is then stored."""
    if isinstance(links, NoPumps):
        return  # no pump connection: the entered state stands until the first interrogation
    added = False
    if isinstance(links, SimulatedPumps):
        try:
            fw = Firmware.implant(
                model,
                pump.implanted_at,
                serial=pump.serial,
                concentration_ug_per_ml=pump.concentration_ug_per_ml or 0.0,
                volume_ml=pump.reservoir_ml or 0.0,
                program=program,
                low_reservoir_alarm_ml=pump.low_reservoir_alarm_ml,
                catheter_volume_ml=min(catheter_volume_ml, 1.0),
                catheter_primed=True,  # the priming bolus was given in the operating room
            )
        except CommandRejected as exc:
            raise InputError(exc.field, f"the pump refused: {exc}") from None
        links.add(fw)
        added = True
    try:
        ingest_reading(db, pump, links.link(pump.serial).interrogate(0), visit)
    except Exception:
        if added:
            assert isinstance(links, SimulatedPumps)
            links.discard(pump.serial)
        raise


@dataclass(frozen=True, slots=True)
class _PreparedImplant:
    model: PumpModel
    serial: str
    at: datetime
    trimmed_cm: float
    concentration_ug_per_ml: float
    alarm_ml: float
    program: Program
    review: ProgramReview
    priming: PrimingPlan


def _prepare_implant(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    data: PumpInput,
    catheter_trimmed_cm: float,
    now: datetime,
) -> _PreparedImplant:
    """Every check of an implant record, nothing written."""
    if db.execute(select(Pump.id).where(Pump.patient_id == patient.id, Pump.active)).first():
        raise ConflictError(
            f"patient {patient.id} already has an active pump: record a replacement instead"
        )
    model, serial, at = _validate_pump_input(
        db, links, data, patient.birth_date or datetime.min, now
    )
    trimmed_cm = check_catheter_trimmed_cm(catheter_trimmed_cm)
    concentration = _check_concentration(data.concentration_ug_per_ml)
    alarm_ml = _validate_alarm(
        model,
        DEFAULT_LOW_RESERVOIR_ALARM_ML if data.low_reservoir_alarm_ml is None
        else data.low_reservoir_alarm_ml,
    )  # fmt: skip
    priming = plan_priming(model, trimmed_cm, concentration)
    program, review = _review_first_program(
        model, None, data.program or {}, concentration, patient, Phase.TITRATION,
        data.confirm, data.reason,
    )  # fmt: skip
    return _PreparedImplant(
        model, serial, at, trimmed_cm, concentration, alarm_ml, program, review, priming
    )


def catheter_preview(
    model_name: str, catheter_trimmed_cm: float, concentration_ug_per_ml: float
) -> dict[str, Any]:
    """The implanted catheter's length and volume (S31) and the priming bolus (priming.py)."""
    trimmed_cm = check_catheter_trimmed_cm(catheter_trimmed_cm)
    if model_name not in MODELS:
        raise InputError("model", f"model={model_name!r}: allowed {', '.join(MODELS)}")
    concentration = _check_concentration(concentration_ug_per_ml)
    return {
        "catheter_length_cm": catheter_length_cm(trimmed_cm),
        "catheter_volume_ml": round(implanted_catheter_volume_ml(trimmed_cm), 4),
        "priming": plan_priming(MODELS[model_name], trimmed_cm, concentration).to_dict(),
    }


def preview_implant(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    data: PumpInput,
    catheter_trimmed_cm: float,
    now: datetime,
) -> ProgramReview:
    """The implant page's review step: every check of :func:`record_implant`, nothing stored;
    the program's review (as a program change)."""
    return _prepare_implant(db, links, patient, data, catheter_trimmed_cm, now).review


def record_implant(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    user: User,
    data: PumpInput,
    catheter_trimmed_cm: float,
    now: datetime,
) -> ImplantResult:
    """The implant (physicians): pump and catheter rows, program version 1, an ``implant``
    visit, the due dates (plan_refill); the catheter and priming volumes (S31, priming.py)."""
    prepared = _prepare_implant(db, links, patient, data, catheter_trimmed_cm, now)
    model, serial, at, trimmed_cm = (
        prepared.model,
        prepared.serial,
        prepared.at,
        prepared.trimmed_cm,
    )
    concentration, alarm_ml = prepared.concentration_ug_per_ml, prepared.alarm_ml
    program, review, priming = prepared.program, prepared.review, prepared.priming
    pump, catheter = add_pump_with_catheter(db, patient, model.name, serial, at, trimmed_cm)
    _set_entered_state(pump, at, data.filled_ml, concentration, program.daily_dose_ug(), alarm_ml)
    details: dict[str, Any] = {
        "model": model.name,
        "serial": serial,
        "catheter_trimmed_cm": trimmed_cm,
        "catheter_length_cm": catheter.length_cm,
        "catheter_volume_ml": catheter.volume_ml,
        "priming": priming.to_dict(),
        "filled_ml": data.filled_ml,
        "concentration_ug_per_ml": concentration,
        "low_reservoir_alarm_ml": alarm_ml,
        "program": program.to_dict(),
        "daily_dose_ug": round(program.daily_dose_ug(), 2),
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
    }
    if review.needs_confirmation:
        details["confirmation_reason"] = data.reason
    visit = add_visit(db, patient, pump, user, VisitKind.IMPLANT, at, details, completed_at=now)
    _add_program_version(db, pump, program, user, visit, at)
    _connect_new_pump(db, links, pump, model, program, catheter.volume_ml, visit)
    audit.record(
        db, user, "pump.implant", "pump", serial, None,
        {**pump_snapshot(pump), **details, "patient_id": patient.id, "visit_id": visit.id},
    )  # fmt: skip
    db.commit()
    return ImplantResult(
        patient, pump, visit, review, catheter.length_cm, catheter.volume_ml, priming.to_dict()
    )


def add_visit(
    db: Session,
    patient: Patient,
    pump: Pump,
    user: User,
    kind: VisitKind,
    started_at: datetime,
    details: dict[str, Any],
    status: VisitStatus = VisitStatus.COMPLETED,
    completed_at: datetime | None = None,
) -> Visit:
    """A visit row (flushed, not committed); a completed one ends when it started unless told."""
    done = status is VisitStatus.COMPLETED
    visit = Visit(
        patient_id=patient.id,
        pump_id=pump.id,
        user_id=user.id,
        kind=kind.value,
        status=status.value,
        started_at=started_at,
        completed_at=(completed_at or started_at) if done else completed_at,
        details_json=audit.canonical_json(details),
    )
    db.add(visit)
    db.flush()
    return visit


def record_replacement(
    db: Session, links: PumpLinks, patient: Patient, user: User, data: PumpInput, now: datetime
) -> ImplantResult:
    """The patient's pump replaced by a new one (physicians; S3 S4 S21: at ERI, before EOS).

    The old pump is retired (kept, no longer active); the catheter stays and is connected to
    the new pump; the concentration, program and alarm threshold carry over unless given. Only
    the new pump's internal tubing is primed: the catheter is already full of drug."""
    old = active_pump(db, patient)
    model, serial, at = _validate_pump_input(db, links, data, old.implanted_at, now, "replaced_at")
    concentration = _check_concentration(
        old.concentration_ug_per_ml
        if data.concentration_ug_per_ml is None
        else data.concentration_ug_per_ml
    )
    alarm_ml = _validate_alarm(
        model,
        old.low_reservoir_alarm_ml if data.low_reservoir_alarm_ml is None
        else data.low_reservoir_alarm_ml,
    )  # fmt: skip
    current = current_program(db, old)
    old_program = program_from_dict(json.loads(current.program_json)) if current else None
    if data.program:
        program_data = data.program
    elif current is not None:
        program_data = json.loads(current.program_json)
    else:
        raise InputError("program", "program: the old pump has no program; give one")
    program, review = _review_first_program(
        model, old_program, program_data, concentration, patient, default_phase(old),
        data.confirm, data.reason,
    )  # fmt: skip
    catheter = db.execute(
        select(Catheter)
        .where(Catheter.patient_id == patient.id)
        .order_by(Catheter.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    before = {**pump_snapshot(old), "active": True, "model": old.model}
    old.active = False
    old.explanted_at = at
    pump = Pump(
        patient_id=patient.id, model=model.name, serial=serial, implanted_at=at, active=True
    )
    db.add(pump)
    db.flush()
    if catheter is not None:
        catheter.pump_id = pump.id
    _set_entered_state(pump, at, data.filled_ml, concentration, program.daily_dose_ug(), alarm_ml)
    catheter_volume_ml = catheter.volume_ml if catheter is not None else 0.0
    priming = {
        "priming_volume_ml": round(model.internal_tubing_ml, 4),
        "reasons": [
            f"pump internal tubing {model.internal_tubing_ml:.4f} mL ({model.name})",
            f"the catheter stays ({catheter_volume_ml:.4f} mL, already full of drug): not "
            f"primed; a catheter priming bolus would put "
            f"{catheter_volume_ml * concentration:.0f} µg into the spinal fluid",
        ],
    }
    details: dict[str, Any] = {
        "old_serial": old.serial,
        "old_model": old.model,
        "model": model.name,
        "serial": serial,
        "catheter_kept": catheter is not None,
        "catheter_volume_ml": catheter_volume_ml,
        "priming": priming,
        "filled_ml": data.filled_ml,
        "concentration_ug_per_ml": concentration,
        "low_reservoir_alarm_ml": alarm_ml,
        "program": program.to_dict(),
        "daily_dose_ug": round(program.daily_dose_ug(), 2),
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
    }
    if review.needs_confirmation:
        details["confirmation_reason"] = data.reason
    visit = add_visit(db, patient, pump, user, VisitKind.REPLACEMENT, at, details, completed_at=now)
    _add_program_version(db, pump, program, user, visit, at)
    _connect_new_pump(db, links, pump, model, program, catheter_volume_ml, visit)
    audit.record(
        db, user, "pump.replace", "patient", patient.id, before,
        {**pump_snapshot(pump), **details, "visit_id": visit.id},
    )  # fmt: skip
    db.commit()
    return ImplantResult(
        patient,
        pump,
        visit,
        review,
        catheter.length_cm if catheter else 0.0,
        catheter_volume_ml,
        priming,
    )
