"""A new patient record and its edit (physicians), and the checks of the text and dates users
type in.

The checks name the field and the allowed range, and run before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Patient, Role, User, search_keys
from itb.clinic.services.lookups import iso
from itb.errors import InputError

# origin of spasticity (S46: the titration limits differ); "unknown": the program review then
# applies the strictest limits of every origin and says so (H30)
ORIGINS = ("spinal", "cerebral", "unknown")
NAME_MAX_CHARS = 128
MRN_MAX_CHARS = 32
AGE_MAX_YEARS = 120
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def check_text(
    field: str, value: Any, max_chars: int, pattern: re.Pattern[str] | None = None
) -> str:
    """Printable text of 1 to ``max_chars`` characters (trimmed), matching ``pattern``."""
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
        raise InputError(field, f"allowed {allowed}")
    return text


def check_record_date(
    field: str, value: datetime | None, now: datetime, earliest: datetime
) -> datetime:
    """A date of record (default now): not in the future, not before ``earliest``."""
    when = now if value is None else value
    if when > now or when < earliest:
        reason = f"allowed {earliest:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} (not in the future)"
        raise InputError(field, reason, f"{field}={when.isoformat()}: {reason}")
    return when


def years_before(now: datetime, years: int) -> datetime:
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
        "birth_date": iso(patient.birth_date),
        "origin": patient.origin,
        "clinician_id": patient.clinician_id,
    }


def _birth(data: PatientInput, now: datetime) -> datetime | None:
    """The date of birth, or (from the age only) today's date that many years ago."""
    oldest = years_before(now, AGE_MAX_YEARS)
    if data.birth_date is not None:
        birth = datetime.combine(data.birth_date, datetime.min.time())
        if birth > now or birth < oldest:
            reason = f"allowed {oldest:%Y-%m-%d} to {now:%Y-%m-%d}"
            message = f"birth_date={data.birth_date.isoformat()}: {reason}"
            raise InputError("birth_date", reason, message)
        return birth
    if data.age_years is not None:
        if not 0 <= data.age_years <= AGE_MAX_YEARS:
            reason = f"allowed 0 to {AGE_MAX_YEARS} years"
            raise InputError("age_years", reason, f"age_years={data.age_years}: {reason}")
        # the age only: the birthday is taken as today, the year is right
        return datetime.combine(years_before(now, data.age_years).date(), datetime.min.time())
    # a dose, a titration and the withdrawal advice depend on age: one of the two is required
    reason = f"enter the date of birth or the age in years (0 to {AGE_MAX_YEARS})"
    raise InputError("birth_date", reason)


def _clinician(db: Session, user: User, data: PatientInput) -> User:
    clinician_id = user.id if data.clinician_id is None else data.clinician_id
    clinician = db.get(User, clinician_id) if 0 < clinician_id < 2**31 else None
    if clinician is None or clinician.role != Role.PHYSICIAN.value or not clinician.active:
        reason = "allowed the id of an active physician"
        raise InputError("clinician_id", reason, f"clinician_id={clinician_id}: {reason}")
    return clinician


def _checked(
    db: Session, user: User, data: PatientInput, now: datetime, patient_id: int | None = None
) -> tuple[str, str, datetime | None, User]:
    """The record's checks, one home for a new record and an edit (``patient_id``: the record
    edited, whose own MRN is no clash): name, MRN (unique), origin, birth, clinician."""
    name = check_text("name", data.name, NAME_MAX_CHARS)
    mrn = check_text("mrn", data.mrn, MRN_MAX_CHARS, IDENTIFIER)
    if data.origin not in ORIGINS:
        reason = f"allowed {' or '.join(ORIGINS)}"
        raise InputError("origin", reason, f"origin={data.origin!r}: {reason}")
    birth = _birth(data, now)
    clinician = _clinician(db, user, data)
    clash = select(Patient.id).where(Patient.mrn == mrn, Patient.id != (patient_id or 0))
    if db.execute(clash).first() is not None:
        reason = "already used by another patient; allowed: an MRN not used before"
        raise InputError("mrn", reason, f"mrn={mrn!r}: {reason}")
    return name, mrn, birth, clinician


def create_patient(db: Session, user: User, data: PatientInput, now: datetime) -> Patient:
    """A new patient record (physicians): MRN unique, date of birth (or age), origin, clinician."""
    name, mrn, birth, clinician = _checked(db, user, data, now)
    patient = Patient(
        mrn=mrn, name=name, birth_date=birth, origin=data.origin, clinician_id=clinician.id,
        created_at=now,
    )  # fmt: skip
    db.add(patient)
    db.flush()
    audit.record(db, user, "patient.create", "patient", patient.id, None, patient_snapshot(patient))
    db.commit()
    return patient


def update_patient(
    db: Session, user: User, patient: Patient, data: PatientInput, now: datetime
) -> bool:
    """Edit a patient's details (physicians, as for a new record) with the same checks; the
    audit log keeps the values before and after. False (nothing written): nothing changed."""
    name, mrn, birth, clinician = _checked(db, user, data, now, patient.id)
    before = patient_snapshot(patient)
    patient.name, patient.mrn, patient.birth_date = name, mrn, birth
    patient.origin, patient.clinician_id = data.origin, clinician.id
    patient.search_name, patient.search_surname = search_keys(name)
    after = patient_snapshot(patient)
    if after == before:
        db.rollback()
        return False
    audit.record(db, user, "patient.edit", "patient", patient.id, before, after)
    db.commit()
    return True
