"""The rows every service starts from, and the two rows every service may add.

Lookups (a patient, the active pump, its current program) and the constructors of a visit and
of a program version: flushed in the caller's transaction, never committed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError, NotFoundError
from itb.clinic.models import Patient, ProgramVersion, Pump, User, Visit, VisitKind, VisitStatus
from itb.therapy import Program

# the longest free text a user gives with a change: a confirmation reason, a discrepancy note
REASON_MAX_CHARS = 500


def get_patient(db: Session, patient_id: int) -> Patient:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise NotFoundError(f"patient {patient_id} not found")
    return patient


def active_pump(db: Session, patient: Patient) -> Pump:
    pump = find_active_pump(db, patient)
    if pump is None:
        raise ConflictError(f"patient {patient.id} has no implanted pump")
    return pump


def find_active_pump(db: Session, patient: Patient) -> Pump | None:
    return db.execute(
        select(Pump).where(Pump.patient_id == patient.id, Pump.active)
    ).scalar_one_or_none()


def current_program(db: Session, pump: Pump) -> ProgramVersion | None:
    return db.execute(
        select(ProgramVersion)
        .where(ProgramVersion.pump_id == pump.id)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def visits(db: Session, patient: Patient) -> list[Visit]:
    return list(
        db.execute(
            select(Visit).where(Visit.patient_id == patient.id).order_by(Visit.started_at.desc())
        ).scalars()
    )


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


@dataclass(frozen=True, slots=True)
class NewVisit:
    """A visit to record: who saw which patient (and pump), when, what was done."""

    patient: Patient
    pump: Pump | None
    user: User | None
    kind: VisitKind
    started_at: datetime
    details: dict[str, Any]
    status: VisitStatus = VisitStatus.COMPLETED
    completed_at: datetime | None = None  # a completed visit ends when it started unless told
    notes: str = ""


def add_visit(db: Session, new: NewVisit) -> Visit:
    """A visit row (flushed, not committed)."""
    done = new.status is VisitStatus.COMPLETED
    visit = Visit(
        patient_id=new.patient.id,
        pump_id=new.pump.id if new.pump else None,
        user_id=new.user.id if new.user else None,
        kind=new.kind.value,
        status=new.status.value,
        started_at=new.started_at,
        completed_at=(new.completed_at or new.started_at) if done else new.completed_at,
        details_json=audit.canonical_json(new.details),
        notes=new.notes,
    )
    db.add(visit)
    db.flush()
    return visit


def add_program_version(
    db: Session, pump: Pump, program: Program, user: User | None, visit: Visit | None, at: datetime
) -> ProgramVersion:
    """The pump's next program version (flushed, not committed)."""
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


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
