"""A flagged refill (a withdrawn volume out of range, acknowledged by whoever refilled) stays
marked on the dashboard until a physician reviews it: the review is audited, once per refill."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError, NotFoundError
from itb.clinic.models import Patient, Pump, RefillRecord, User, Visit
from itb.clinic.services.lookups import REASON_MAX_CHARS, iso

_NOTE = "discrepancy_note"  # refill_rules.DISCREPANCY_ACK_KEYS


@dataclass(frozen=True, slots=True)
class FlaggedRefill:
    record: RefillRecord
    visit: Visit
    serial: str
    note: str  # the acknowledgement's note, as whoever refilled wrote it


def unreviewed_flagged(db: Session, patient: Patient) -> list[FlaggedRefill]:
    """The patient's flagged refills no physician has reviewed yet, latest first."""
    rows = db.execute(
        select(RefillRecord, Visit, Pump.serial)
        .join(Visit, Visit.id == RefillRecord.visit_id)
        .join(Pump, Pump.id == RefillRecord.pump_id)
        .where(
            Pump.patient_id == patient.id,
            RefillRecord.discrepancy_flagged,
            RefillRecord.reviewed_at.is_(None),
        )
        .order_by(RefillRecord.at.desc())
    ).all()
    return [
        FlaggedRefill(record, visit, serial, str(json.loads(visit.details_json).get(_NOTE) or ""))
        for record, visit, serial in rows
    ]


def review_flagged_refill(
    db: Session, user: User, patient: Patient, record_id: int, note: str, now: datetime
) -> RefillRecord:
    """A physician has reviewed this flagged refill (the caller checks the role): it leaves
    the dashboard; the audit log keeps who, when and the note."""
    record = db.get(RefillRecord, record_id) if 0 < record_id < 2**31 else None
    pump = db.get(Pump, record.pump_id) if record is not None else None
    if record is None or pump is None or pump.patient_id != patient.id:
        raise NotFoundError(f"refill {record_id} not found for this patient")
    if not record.discrepancy_flagged:
        raise ConflictError("this refill was not flagged: there is nothing to review")
    if record.reviewed_at is not None:
        when = f"{record.reviewed_at:%Y-%m-%d %H:%M}"
        raise ConflictError(f"this refill was already reviewed on {when}")
    before = {"reviewed_at": None, "reviewed_by_id": None}
    record.reviewed_at = now.replace(second=0, microsecond=0)
    record.reviewed_by_id = user.id
    after = {
        "reviewed_at": iso(record.reviewed_at),
        "reviewed_by_id": user.id,
        "note": note.strip()[:REASON_MAX_CHARS],
    }
    audit.record(db, user, "refill.review", "refill_record", record.id, before, after)
    db.commit()
    return record
