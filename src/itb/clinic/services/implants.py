"""Implant and replacement records (physicians): the pump, the catheter, the first program.

Every check runs before anything is written: the pump model, a serial not used before, the
date, the fill (never overfill: ``PumpModel.check_fill``), the drug library's concentration, the
low-reservoir alarm (``PumpModel.check_low_reservoir_alarm``, default
``guardrails.DEFAULT_LOW_RESERVOIR_ALARM_ML``), the catheter's trimmed length (S31,
``hardware.implanted_catheter_volume_ml``) and the first program, reviewed like a program change.
The pump's state is then entered as filled in the operating room, and a pump connection (when the
clinic has one) reads the new pump back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError
from itb.clinic.models import Catheter, Patient, Pump, User, Visit, VisitKind
from itb.clinic.pumps import NewPump, PumpCommandRefusedError, PumpLinks, PumpReading
from itb.clinic.services.history import ingest_reading, refresh_due_dates
from itb.clinic.services.lookups import (
    NewVisit,
    active_pump,
    add_program_version,
    add_visit,
    current_program,
    pump_snapshot,
)
from itb.clinic.services.patients import (
    IDENTIFIER,
    check_record_date,
    check_text,
    years_before,
)
from itb.clinic.services.programming import (
    ProgramRequest,
    accept_program,
    age_years,
    default_phase,
    parse_program,
    parse_program_request,
    patient_origin,
)
from itb.drugs import BACLOFEN
from itb.errors import InputError
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML, Verdict
from itb.programmer.priming import plan_priming
from itb.programmer.programming import Phase, ProgramReview, ReviewContext, review_program
from itb.pump.hardware import (
    CATHETER_LENGTH_CM,
    PumpModel,
    implanted_catheter_volume_ml,
    pump_model,
)
from itb.pump.status import BolusKind
from itb.therapy import Program, program_from_dict

SERIAL_MAX_CHARS = 32
# a record older than this is a typing error, not an implant or replacement date
RECORD_MAX_AGE_YEARS = 50


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
    """At least 1 cm stays implanted: the device rule (hardware.implanted_catheter_volume_ml)."""
    implanted_catheter_volume_ml(catheter_trimmed_cm)
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


# Checks ---------------------------------------------------------------------------------------
def _check_serial(db: Session, links: PumpLinks, serial_text: str) -> str:
    serial = check_text("serial", serial_text, SERIAL_MAX_CHARS, IDENTIFIER)
    if db.execute(select(Pump.id).where(Pump.serial == serial)).first() is not None:
        reason = "already on another pump record; allowed: a serial not used before"
        raise InputError("serial", reason, f"serial={serial!r}: {reason}")
    if links.serial_taken(serial):
        reason = "already a simulated pump; allowed: a serial not used before"
        raise InputError("serial", reason, f"serial={serial!r}: {reason}")
    return serial


def _check_concentration(value: float | None) -> float:
    """The drug library's concentrations (``BACLOFEN.check_concentration``); None: not given."""
    if value is None:
        allowed = ", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml)
        raise InputError("concentration_ug_per_ml", f"required; allowed {allowed} µg/mL")
    return BACLOFEN.check_concentration(value)


@dataclass(frozen=True, slots=True)
class _CheckedPump:
    model: PumpModel
    serial: str
    at: datetime
    concentration_ug_per_ml: float
    alarm_ml: float


def _check_pump_input(
    db: Session,
    links: PumpLinks,
    data: PumpInput,
    earliest: datetime,
    now: datetime,
    date_field: str = "implanted_at",
) -> tuple[PumpModel, str, datetime]:
    model = pump_model(data.model)
    serial = _check_serial(db, links, data.serial)
    oldest = years_before(now, RECORD_MAX_AGE_YEARS)
    at = check_record_date(date_field, data.at, now, max(earliest, oldest))
    model.check_fill(data.filled_ml, "filled_ml")  # never overfill (S26 S27); not empty
    return model, serial, at


def _review_first_program(
    model: PumpModel,
    old: Program | None,
    request: ProgramRequest,
    concentration_ug_per_ml: float,
    patient: Patient,
    phase: Phase,
    now: datetime,
) -> tuple[Program, ProgramReview]:
    """The same checks as a program change (review_program): dose limits (the children's range
    from the age), a refusal above the absolute maximum, the pump's flow range, a change that
    needs confirmation; an unknown origin gets the strictest limits."""
    program = parse_program(request.program)
    context = ReviewContext(patient_origin(patient), phase, age_years(patient, now))
    review = review_program(model, old, program, concentration_ug_per_ml, context)
    return accept_program(review, request), review


def _first_program_request(data: PumpInput, program: dict[str, Any]) -> ProgramRequest:
    if not program:
        raise InputError("program", "expected rate_ug_per_day, steps or week")
    return parse_program_request({**program, "confirm": data.confirm, "reason": data.reason})


def _set_entered_state(
    pump: Pump, at: datetime, checked: _CheckedPump, program: Program, reservoir_ml: float
) -> None:
    """The pump's state as filled, primed and programmed in the operating room; replaced by
    the pump's own figures when it is read."""
    pump.state_at = at
    pump.mode = "running"
    pump.reservoir_ml = reservoir_ml
    pump.concentration_ug_per_ml = checked.concentration_ug_per_ml
    pump.daily_dose_ug = program.daily_dose_ug()
    pump.low_reservoir_alarm_ml = checked.alarm_ml
    pump.filled_at = at
    refresh_due_dates(pump)


def _connect_new_pump(
    db: Session, links: PumpLinks, pump: Pump, new: NewPump, visit: Visit, priming_ml: float
) -> bool:
    """A simulated pump is made for the record; any other link must reach the pump with that
    serial (a telemetry pump listed in the pumps file). The priming bolus goes to the pump
    unless its own log already has one (never prime twice: into a full catheter it is an
    overdose); then the pump's reading is stored. True when this record sent the priming."""
    if not links.connected:
        return False  # no pump connection: the entered state stands until the first reading
    try:
        made = links.implant(new)
    except PumpCommandRefusedError as exc:
        raise InputError(exc.field, exc.reason, f"the pump refused: {exc}") from None
    try:
        link = links.link(pump.serial)
        sent = priming_ml > 0.0 and not _primed_in_log(link.interrogate(0))
        if sent:
            try:
                link.prime(priming_ml)
            except PumpCommandRefusedError as exc:
                raise InputError(
                    exc.field, exc.reason, f"the pump refused the priming bolus: {exc}"
                ) from None
        ingest_reading(db, pump, link.interrogate(0), visit)
    except Exception:
        if made:
            links.forget(pump.serial)
        raise
    return sent


def _primed_in_log(reading: PumpReading) -> bool:
    return any(
        e["kind"] == "bolus_start" and e.get("data", {}).get("kind") == BolusKind.PRIMING.value
        for e in reading.entries
    )


def _pump_details(
    checked: _CheckedPump, data: PumpInput, program: Program, review: ProgramReview
) -> dict[str, Any]:
    """What the implant or replacement visit and its audit entry keep about the new pump."""
    details: dict[str, Any] = {
        "model": checked.model.name,
        "serial": checked.serial,
        "filled_ml": data.filled_ml,
        "concentration_ug_per_ml": checked.concentration_ug_per_ml,
        "low_reservoir_alarm_ml": checked.alarm_ml,
        "program": program.to_dict(),
        "daily_dose_ug": round(program.daily_dose_ug(), 2),
        "checks": [c.to_dict() for c in review.checks if c.verdict is not Verdict.OK],
    }
    if review.needs_confirmation:
        details["confirmation_reason"] = data.reason
    return details


# Implant --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _PreparedImplant:
    checked: _CheckedPump
    trimmed_cm: float
    program: Program
    review: ProgramReview
    priming: dict[str, Any]
    priming_volume_ml: float


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
    model, serial, at = _check_pump_input(db, links, data, patient.birth_date or datetime.min, now)
    trimmed_cm = check_catheter_trimmed_cm(catheter_trimmed_cm)
    concentration = _check_concentration(data.concentration_ug_per_ml)
    alarm_ml = model.check_low_reservoir_alarm(
        DEFAULT_LOW_RESERVOIR_ALARM_ML if data.low_reservoir_alarm_ml is None
        else data.low_reservoir_alarm_ml
    )  # fmt: skip
    priming = plan_priming(model, trimmed_cm, concentration)
    request = _first_program_request(data, data.program or {})
    program, review = _review_first_program(
        model, None, request, concentration, patient, Phase.TITRATION, now
    )
    checked = _CheckedPump(model, serial, at, concentration, alarm_ml)
    if priming.priming_volume_ml >= data.filled_ml:
        reason = (
            f"{data.filled_ml:g} mL does not cover the priming bolus "
            f"{priming.priming_volume_ml:.4f} mL (catheter and pump tubing)"
        )
        raise InputError("filled_ml", reason)
    return _PreparedImplant(
        checked, trimmed_cm, program, review, priming.to_dict(), priming.priming_volume_ml
    )


def catheter_preview(
    model_name: str, catheter_trimmed_cm: float, concentration_ug_per_ml: float
) -> dict[str, Any]:
    """The implanted catheter's length and volume (S31) and the priming bolus (priming.py)."""
    trimmed_cm = check_catheter_trimmed_cm(catheter_trimmed_cm)
    model = pump_model(model_name)
    concentration = _check_concentration(concentration_ug_per_ml)
    return {
        "catheter_length_cm": catheter_length_cm(trimmed_cm),
        "catheter_volume_ml": round(implanted_catheter_volume_ml(trimmed_cm), 4),
        "priming": plan_priming(model, trimmed_cm, concentration).to_dict(),
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
    checked, program, at = prepared.checked, prepared.program, prepared.checked.at
    pump, catheter = add_pump_with_catheter(
        db, patient, checked.model.name, checked.serial, at, prepared.trimmed_cm
    )
    # the priming bolus leaves the reservoir: what is left after it (the pump's reading, when
    # there is a connection, replaces this)
    _set_entered_state(pump, at, checked, program, data.filled_ml - prepared.priming_volume_ml)
    details: dict[str, Any] = {
        **_pump_details(checked, data, program, prepared.review),
        "catheter_trimmed_cm": prepared.trimmed_cm,
        "catheter_length_cm": catheter.length_cm,
        "catheter_volume_ml": catheter.volume_ml,
        "priming": prepared.priming,
    }
    new_visit = NewVisit(patient, pump, user, VisitKind.IMPLANT, at, details, completed_at=now)
    visit = add_visit(db, new_visit)
    add_program_version(db, pump, program, user, visit, at)
    new_pump = _new_pump(checked, data, program, catheter.volume_ml)
    sent = _connect_new_pump(db, links, pump, new_pump, visit, prepared.priming_volume_ml)
    details["priming_sent"] = sent
    visit.details_json = audit.canonical_json(details)
    audit.record(
        db, user, "pump.implant", "pump", checked.serial, None,
        {**pump_snapshot(pump), **details, "patient_id": patient.id, "visit_id": visit.id},
    )  # fmt: skip
    db.commit()
    return ImplantResult(
        patient, pump, visit, prepared.review, catheter.length_cm, catheter.volume_ml,
        prepared.priming,
    )  # fmt: skip


def _new_pump(
    checked: _CheckedPump, data: PumpInput, program: Program, catheter_volume_ml: float
) -> NewPump:
    return NewPump(
        model=checked.model,
        serial=checked.serial,
        implanted_at=checked.at,
        concentration_ug_per_ml=checked.concentration_ug_per_ml,
        volume_ml=data.filled_ml,
        program=program,
        low_reservoir_alarm_ml=checked.alarm_ml,
        catheter_volume_ml=catheter_volume_ml,
    )


# Replacement ----------------------------------------------------------------------------------
def _check_replacement(
    db: Session, links: PumpLinks, old: Pump, data: PumpInput, now: datetime
) -> _CheckedPump:
    """The new pump's checks; concentration and alarm carry over from the old pump."""
    model, serial, at = _check_pump_input(db, links, data, old.implanted_at, now, "replaced_at")
    concentration = _check_concentration(
        old.concentration_ug_per_ml
        if data.concentration_ug_per_ml is None
        else data.concentration_ug_per_ml
    )
    alarm_ml = model.check_low_reservoir_alarm(
        old.low_reservoir_alarm_ml if data.low_reservoir_alarm_ml is None
        else data.low_reservoir_alarm_ml
    )  # fmt: skip
    return _CheckedPump(model, serial, at, concentration, alarm_ml)


def _replacement_program(
    db: Session,
    patient: Patient,
    old: Pump,
    checked: _CheckedPump,
    data: PumpInput,
    now: datetime,
) -> tuple[Program, ProgramReview]:
    """The new pump's program: as given, else the old pump's; reviewed against the old one."""
    current = current_program(db, old)
    old_data = json.loads(current.program_json) if current else None
    program_data = data.program or old_data
    if not program_data:
        raise InputError("program", "the old pump has no program; give one")
    old_program = program_from_dict(old_data) if old_data else None
    return _review_first_program(
        checked.model, old_program, _first_program_request(data, program_data),
        checked.concentration_ug_per_ml, patient, default_phase(old), now,
    )  # fmt: skip


def _replacement_priming(
    model: PumpModel, catheter_volume_ml: float, concentration_ug_per_ml: float
) -> dict[str, Any]:
    """Only the new pump's internal tubing is primed: the catheter is already full of drug."""
    return {
        "priming_volume_ml": round(model.internal_tubing_ml, 4),
        "reasons": [
            f"pump internal tubing {model.internal_tubing_ml:.4f} mL ({model.name})",
            f"the catheter stays ({catheter_volume_ml:.4f} mL, already full of drug): not "
            f"primed; a catheter priming bolus would put "
            f"{catheter_volume_ml * concentration_ug_per_ml:.0f} µg into the spinal fluid",
        ],
    }


def _patient_catheter(db: Session, patient: Patient) -> Catheter | None:
    return db.execute(
        select(Catheter)
        .where(Catheter.patient_id == patient.id)
        .order_by(Catheter.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _retire_and_add(db: Session, old: Pump, checked: _CheckedPump) -> Pump:
    """The old pump retired (kept, no longer active); the new pump's row."""
    old.active = False
    old.explanted_at = checked.at
    pump = Pump(
        patient_id=old.patient_id, model=checked.model.name, serial=checked.serial,
        implanted_at=checked.at, active=True,
    )  # fmt: skip
    db.add(pump)
    db.flush()
    return pump


def record_replacement(
    db: Session, links: PumpLinks, patient: Patient, user: User, data: PumpInput, now: datetime
) -> ImplantResult:
    """The patient's pump replaced by a new one (physicians; S3 S4 S21: at ERI, before EOS).

    The old pump is retired (kept, no longer active); the catheter stays and is connected to
    the new pump; the concentration, program and alarm threshold carry over unless given. Only
    the new pump's internal tubing is primed: the catheter is already full of drug."""
    old = active_pump(db, patient)
    checked = _check_replacement(db, links, old, data, now)
    program, review = _replacement_program(db, patient, old, checked, data, now)
    catheter = _patient_catheter(db, patient)
    before = {**pump_snapshot(old), "active": True, "model": old.model}
    pump = _retire_and_add(db, old, checked)
    if catheter is not None:
        catheter.pump_id = pump.id
    _set_entered_state(pump, checked.at, checked, program, data.filled_ml)
    catheter_volume_ml = catheter.volume_ml if catheter is not None else 0.0
    priming = _replacement_priming(
        checked.model, catheter_volume_ml, checked.concentration_ug_per_ml
    )
    details: dict[str, Any] = {
        "old_serial": old.serial,
        "old_model": old.model,
        **_pump_details(checked, data, program, review),
        "catheter_kept": catheter is not None,
        "catheter_volume_ml": catheter_volume_ml,
        "priming": priming,
    }
    new_visit = NewVisit(
        patient, pump, user, VisitKind.REPLACEMENT, checked.at, details, completed_at=now
    )
    visit = add_visit(db, new_visit)
    add_program_version(db, pump, program, user, visit, checked.at)
    # the catheter stays full of drug: no priming bolus through it (its tubing is primed
    # before it is connected)
    new_pump = replace(_new_pump(checked, data, program, catheter_volume_ml), catheter_primed=True)
    _connect_new_pump(db, links, pump, new_pump, visit, 0.0)
    audit.record(
        db, user, "pump.replace", "patient", patient.id, before,
        {**pump_snapshot(pump), **details, "visit_id": visit.id},
    )  # fmt: skip
    db.commit()
    length_cm = catheter.length_cm if catheter else 0.0
    return ImplantResult(patient, pump, visit, review, length_cm, catheter_volume_ml, priming)
