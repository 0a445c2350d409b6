"""Read models for the pages and the API: the dashboard, a patient, a pump, a refill.

Nothing here computes a rule: the dates are the ones stored at the last reading (the refill
plan's, and the pump's own ERI and EOS), turned into "days from now" for the screens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from itb.clinic.models import (
    Alarm,
    Interrogation,
    Patient,
    Pump,
    PumpEvent,
    RefillRecord,
    User,
    Visit,
)
from itb.clinic.services.lookups import current_program, find_active_pump, iso, visits
from itb.clinic.services.refill_rules import expected_volume_ml, withdrawn_volume_check
from itb.clinic.urgency import HARM_WORDS, Harm, days_until, refill_after_eos


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
    # the pump's own ERI and EOS dates, as it reported them at the last reading
    eri_at: datetime | None = None
    eos_at: datetime | None = None
    days_to_eos: float | None = None
    # the soonest harm without care (urgency.py), the dashboard's rank
    harm: Harm | None = None
    harm_at: datetime | None = None
    days_to_harm: float | None = None
    # the next refill is due at or after EOS: the pump stops first (replace it before)
    refill_after_eos: bool = False
    # a refill's withdrawn volume was flagged and no physician has reviewed it yet
    flagged_refill: bool = False

    @property
    def most_urgent_days(self) -> float | None:
        return self.days_to_harm

    @property
    def harm_words(self) -> str:
        return HARM_WORDS[self.harm] if self.harm else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "mrn": self.mrn,
            "clinician": self.clinician,
            "serial": self.serial,
            "model": self.model,
            "reservoir_ml": self.reservoir_ml,
            "days_to_low_reservoir": round_days(self.days_to_low_reservoir),
            "days_to_empty": round_days(self.days_to_empty),
            "days_to_stability_limit": round_days(self.days_to_stability_limit),
            "days_to_eri": round_days(self.days_to_eri),
            "days_to_eos": round_days(self.days_to_eos),
            "eri_at": iso(self.eri_at),
            "eos_at": iso(self.eos_at),
            "next_due_at": iso(self.next_due_at),
            "next_refill_at": iso(self.next_refill_at),
            "days_to_next_refill": round_days(self.days_to_next_refill),
            "harm": self.harm.value if self.harm else None,
            "harm_words": self.harm_words or None,
            "harm_at": iso(self.harm_at),
            "days_to_harm": round_days(self.days_to_harm),
            "refill_after_eos": self.refill_after_eos,
            "flagged_refill": self.flagged_refill,
        }


def round_days(days: float | None) -> float | None:
    return None if days is None else round(days, 1)


_DASHBOARD_COLUMNS = (
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
    Pump.eos_at,
    Pump.next_due_at,
    Pump.next_refill_at,
    Pump.harm_at,
    Pump.harm,
    # a flagged refill no physician has reviewed: probed per row shown on refill_records'
    # pump index, so the ranking still walks pumps.harm_at
    select(RefillRecord.id)
    .where(
        RefillRecord.pump_id == Pump.id,
        RefillRecord.discrepancy_flagged,
        RefillRecord.reviewed_at.is_(None),
    )
    .exists()
    .label("flagged_refill"),
)


@dataclass(frozen=True, slots=True)
class DashboardPage:
    """One page of the ranking; ``has_next``: more patients after it (no total is counted)."""

    rows: list[DashboardRow]
    has_next: bool


def dashboard_page(
    db: Session,
    now: datetime,
    clinician_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> DashboardPage:
    """The patients, most urgent first: by days until harm (urgency.py: the reservoir runs
    dry, the battery stops delivering, the drug expires, the pump is not delivering).

    Two queries, so that the first pages walk the index on ``pumps.harm_at`` instead of
    sorting every patient: pumps with a harm date first, then everyone else (no pump yet, or a
    pump never read). One row more than the page tells whether there is a next page; the dated
    rows are counted only for a page wholly past them (the last pages).
    """
    mine = (Patient.clinician_id == clinician_id) if clinician_id is not None else true()
    dated = dashboard_query(clinician_id)
    undated = (
        select(*_DASHBOARD_COLUMNS)
        .outerjoin(Pump, (Pump.patient_id == Patient.id) & Pump.active)
        .outerjoin(User, User.id == Patient.clinician_id)
        .where(Pump.harm_at.is_(None), mine)
        .order_by(Patient.id)
    )
    wanted = limit + 1
    found = list(db.execute(dated.limit(wanted).offset(offset)))
    if len(found) < wanted:
        if found or offset == 0:
            dated_count = offset + len(found)
        else:
            dated_count = db.execute(
                select(func.count()).select_from(dated.subquery())
            ).scalar_one()
        rest_offset = max(offset - dated_count, 0)
        found += db.execute(undated.limit(wanted - len(found)).offset(rest_offset)).all()
    return DashboardPage([_dashboard_row(r, now) for r in found[:limit]], len(found) > limit)


def dashboard(
    db: Session,
    now: datetime,
    clinician_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[DashboardRow], int]:
    """A page of the ranking (:func:`dashboard_page`) and the number of patients (the API's
    ``X-Total-Count``; the dashboard page pages without it)."""
    return dashboard_page(db, now, clinician_id, limit, offset).rows, patient_count(
        db, clinician_id
    )


def patient_count(db: Session, clinician_id: int | None = None) -> int:
    mine = (Patient.clinician_id == clinician_id) if clinician_id is not None else true()
    return int(db.execute(select(func.count()).select_from(Patient).where(mine)).scalar_one())


def has_patients(db: Session) -> bool:
    return db.execute(select(Patient.id).limit(1)).first() is not None


def dashboard_query(clinician_id: int | None = None) -> Select[*tuple[Any, ...]]:
    """The read pumps by their soonest harm: ordered on the indexed ``pumps.harm_at``."""
    mine = (Patient.clinician_id == clinician_id) if clinician_id is not None else true()
    return (
        select(*_DASHBOARD_COLUMNS)
        .select_from(Pump)
        .join(Patient, Patient.id == Pump.patient_id)
        .outerjoin(User, User.id == Patient.clinician_id)
        .where(Pump.active, Pump.harm_at.is_not(None), mine)
        .order_by(Pump.harm_at, Pump.id)
    )


def _dashboard_row(r: Any, now: datetime) -> DashboardRow:
    return DashboardRow(
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
        eri_at=r.eri_at,
        eos_at=r.eos_at,
        days_to_eos=days_until(r.eos_at, now),
        harm=Harm(r.harm) if r.harm else None,
        harm_at=r.harm_at,
        days_to_harm=days_until(r.harm_at, now),
        refill_after_eos=refill_after_eos(r.next_refill_at, r.eos_at),
        flagged_refill=bool(r.flagged_refill),
    )


# A patient, a pump ---------------------------------------------------------------------------
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


def pump_dict(pump: Pump, now: datetime) -> dict[str, Any]:
    return {
        "serial": pump.serial,
        "model": pump.model,
        "implanted_at": iso(pump.implanted_at),
        "state_at": iso(pump.state_at),
        "mode": pump.mode,
        "reservoir_ml": pump.reservoir_ml,
        "expected_reservoir_ml_now": expected_volume_ml(pump, now),
        "concentration_ug_per_ml": pump.concentration_ug_per_ml,
        "daily_dose_ug": pump.daily_dose_ug,
        "low_reservoir_alarm_ml": pump.low_reservoir_alarm_ml,
        "filled_at": iso(pump.filled_at),
        "low_reservoir_at": iso(pump.low_reservoir_at),
        "empty_at": iso(pump.empty_at),
        "stability_at": iso(pump.stability_at),
        "eri_at": iso(pump.eri_at),
        "eos_at": iso(pump.eos_at),
        "next_refill_at": iso(next_refill_at(pump)),
        "days_to_next_refill": round_days(days_until(pump.next_refill_at, now)),
        "days_to_low_reservoir": round_days(days_until(pump.low_reservoir_at, now)),
        "days_to_empty": round_days(days_until(pump.empty_at, now)),
        "days_to_stability_limit": round_days(days_until(pump.stability_at, now)),
        "days_to_eri": round_days(days_until(pump.eri_at, now)),
        "days_to_eos": round_days(days_until(pump.eos_at, now)),
        "harm": pump.harm,
        "harm_words": HARM_WORDS[Harm(pump.harm)] if pump.harm else None,
        "harm_at": iso(pump.harm_at),
        "days_to_harm": round_days(days_until(pump.harm_at, now)),
        "refill_after_eos": refill_after_eos(pump.next_refill_at, pump.eos_at),
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
    pump = find_active_pump(db, patient)
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
        "flagged_refills": _unreviewed_flagged_count(db, patient),
    }
    if pump is not None:
        out["pump"] = pump_dict(pump, now)
        out["program"] = _program_summary(db, pump)
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


def _unreviewed_flagged_count(db: Session, patient: Patient) -> int:
    """The patient's flagged refills no physician has reviewed yet (any of their pumps)."""
    return int(
        db.execute(
            select(func.count())
            .select_from(RefillRecord)
            .join(Pump, Pump.id == RefillRecord.pump_id)
            .where(
                Pump.patient_id == patient.id,
                RefillRecord.discrepancy_flagged,
                RefillRecord.reviewed_at.is_(None),
            )
        ).scalar_one()
    )


def _program_summary(db: Session, pump: Pump) -> dict[str, Any] | None:
    current = current_program(db, pump)
    if current is None:
        return None
    return {
        "version": current.version,
        "program": json.loads(current.program_json),
        "daily_dose_ug": current.daily_dose_ug,
    }


def refill_summary(db: Session, record: RefillRecord, now: datetime) -> dict[str, Any]:
    pump = db.get(Pump, record.pump_id)
    visit = db.get(Visit, record.visit_id)
    assert pump is not None and visit is not None
    details = json.loads(visit.details_json)
    check = withdrawn_volume_check(pump, details)
    return {
        "visit_id": record.visit_id,
        "at": record.at.isoformat(),
        "expected_ml": record.expected_ml,
        "withdrawn_ml": record.withdrawn_ml,
        "filled_ml": record.filled_ml,
        "concentration_ug_per_ml": record.concentration_ug_per_ml,
        "discrepancy_ml": round(record.discrepancy_ml, 3),
        "discrepancy_flagged": record.discrepancy_flagged,
        "reviewed_at": iso(record.reviewed_at),
        "discrepancy_check": check.to_dict(),
        "concentration_change": details.get("concentration_change"),
        "concentration_change_given": details.get("concentration_change_given"),
        "pump": pump_dict(pump, now),
    }
