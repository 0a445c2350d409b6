"""A follow-up visit (physicians and nurses): notes, the MAS score, the side effects seen and
the next appointment; and the MAS scores of follow-ups as the patient's fit takes them.

The MAS score is kept with the program in force (its version and daily dose): a score on a
known continuous daily dose at steady state, :class:`itb.pharmacology.fit.SteadyScore`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import FollowUp, Patient, User, Visit, VisitKind
from itb.clinic.services.lookups import NewVisit, add_visit, current_program, find_active_pump, iso
from itb.clinic.services.screening import NOTES_MAX_CHARS
from itb.errors import InputError
from itb.pharmacology.screening import MAS_MAX, MAS_MIN

# The most common adverse reactions of intrathecal baclofen on its labels (Lioresal Intrathecal,
# Gablofen: spinal and cerebral origin), as a clinician ticks them (S52 S57; docs/clinic.md).
SIDE_EFFECTS: dict[str, str] = {
    "hypotonia": "Weakness, floppy muscles (hypotonia)",
    "somnolence": "Drowsiness (somnolence)",
    "dizziness": "Dizziness or light-headedness",
    "nausea_vomiting": "Nausea or vomiting",
    "headache": "Headache",
    "hypotension": "Low blood pressure (hypotension)",
    "seizures": "Seizures (convulsions)",
    "constipation": "Constipation",
    "urinary_retention": "Urinary retention",
    "agitation": "Agitation",
    "chills": "Chills",
}
# [R] the next appointment is booked within two years of the visit (a refill interval is at
# most six months; a replacement is planned months ahead)
APPOINTMENT_HORIZON = timedelta(days=730)
MAS_RULE = f"{MAS_MIN:g} to {MAS_MAX:g} (Modified Ashworth, 1+ coded 2)"


@dataclass(frozen=True, slots=True)
class FollowUpInput:
    notes: str = ""
    mas: float | None = None  # None: not scored at this visit
    side_effects: tuple[str, ...] = ()
    next_appointment_at: datetime | None = None  # clinic time, to the minute


@dataclass(frozen=True, slots=True)
class MasObservation:
    """A follow-up's MAS on the program in force: a steady-state score for the fit."""

    at: datetime
    mas: float
    daily_dose_ug: float | None  # None: no program in force (no pump)
    program_version_id: int | None
    visit_id: int


def check_mas(value: float | None, field: str = "mas") -> float | None:
    if value is not None and not (math.isfinite(value) and MAS_MIN <= value <= MAS_MAX):
        raise InputError(field, f"allowed {MAS_RULE}")
    return value


def _checked(data: FollowUpInput, now: datetime) -> tuple[str, datetime | None]:
    check_mas(data.mas)
    unknown = [s for s in data.side_effects if s not in SIDE_EFFECTS]
    if unknown:
        raise InputError("side_effects", "allowed: the side effects listed on the form")
    notes = data.notes.strip()
    if len(notes) > NOTES_MAX_CHARS:
        raise InputError("notes", f"allowed up to {NOTES_MAX_CHARS} characters")
    at = data.next_appointment_at
    if at is not None:
        at = at.replace(second=0, microsecond=0)
        latest = now + APPOINTMENT_HORIZON
        if not now < at <= latest:
            reason = f"allowed after now, up to {latest:%Y-%m-%d %H:%M}"
            raise InputError("next_appointment_at", reason)
    return notes, at


def record_follow_up(
    db: Session, user: User, patient: Patient, data: FollowUpInput, now: datetime
) -> FollowUp:
    """Record the visit and its findings (audited), the MAS with the program in force."""
    notes, appointment_at = _checked(data, now)
    pump = find_active_pump(db, patient)
    program = current_program(db, pump) if pump is not None else None
    ticked = tuple(s for s in SIDE_EFFECTS if s in data.side_effects)
    details = {  # the visit's record, read in words on the patient page (record_words)
        "scored_mas": data.mas,
        "side_effects": [SIDE_EFFECTS[s] for s in ticked],
        "next_appointment_at": iso(appointment_at),
        "daily_dose_ug": program.daily_dose_ug if program else None,
    }
    visit = add_visit(
        db,
        NewVisit(patient, pump, user, VisitKind.FOLLOW_UP, now, details, notes=notes),
    )
    follow_up = FollowUp(
        visit_id=visit.id,
        patient_id=patient.id,
        pump_id=pump.id if pump else None,
        program_id=program.id if program else None,
        daily_dose_ug=program.daily_dose_ug if program else None,
        mas=data.mas,
        side_effects=",".join(ticked),
        seen_at=now,
        next_appointment_at=appointment_at,
    )
    db.add(follow_up)
    db.flush()
    audit.record(db, user, "follow_up.record", "visit", visit.id, None, details | {"notes": notes})
    db.commit()
    return follow_up


@dataclass(frozen=True, slots=True)
class FollowUpView:
    """A follow-up as the page shows it."""

    seen_at: datetime
    by: str
    mas: float | None
    daily_dose_ug: float | None
    side_effects: list[str]  # in words
    next_appointment_at: datetime | None
    notes: str


def follow_ups(db: Session, patient: Patient, limit: int = 50) -> list[FollowUpView]:
    """The patient's follow-ups, latest first."""
    rows = db.execute(
        select(FollowUp, Visit)
        .join(Visit, Visit.id == FollowUp.visit_id)
        .where(FollowUp.patient_id == patient.id)
        .order_by(FollowUp.seen_at.desc(), FollowUp.id.desc())
        .limit(limit)
    ).all()
    return [
        FollowUpView(
            f.seen_at,
            v.user.username if v.user else "",
            f.mas,
            f.daily_dose_ug,
            side_effect_words(f.side_effects),
            f.next_appointment_at,
            v.notes,
        )
        for f, v in rows
    ]


def mas_observations(db: Session, patient: Patient) -> list[MasObservation]:
    """Every scored follow-up, oldest first, with the program in force when it was scored."""
    rows = db.execute(
        select(FollowUp)
        .where(FollowUp.patient_id == patient.id, FollowUp.mas.is_not(None))
        .order_by(FollowUp.seen_at, FollowUp.id)
    ).scalars()
    return [
        MasObservation(f.seen_at, float(f.mas or 0.0), f.daily_dose_ug, f.program_id, f.visit_id)
        for f in rows
    ]


def side_effect_words(keys: str) -> list[str]:
    return [SIDE_EFFECTS[k] for k in keys.split(",") if k in SIDE_EFFECTS]
