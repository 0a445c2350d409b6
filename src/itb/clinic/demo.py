"""The demo clinic: a few patients, each with a running simulated pump in a different state.

One near empty, one past ERI, one mid-titration, one held back by the drug's stability limit,
one on a flexible schedule, and one in screening. Their history (refills, program changes) is
simulated by the firmware and stored as the clinic would have recorded it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from itb.clinic import audit, auth, services
from itb.clinic.models import Patient, Pump, RefillRecord, Role, User, Visit, VisitKind
from itb.clinic.pumps import PumpReading, SimulatedPumps
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.therapy import FlexStep, Program, continuous, flex, program_from_dict

# S31: a 110 cm catheter; the demo patients keep 95 cm implanted (0.247 mL)
DEMO_CATHETER_TRIMMED_CM = 15.0


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    role: str
    password: str


@dataclass(frozen=True, slots=True)
class _Plan:
    mrn: str
    name: str
    origin: str
    clinician: str
    model: str
    concentration_ug_per_ml: float
    fill_ml: float
    program: Program
    implanted_days_ago: float
    refill_every_days: float
    last_refill_days_ago: float
    titration_ug_per_day: tuple[float, ...] = ()  # one step a day at the end of the history


def _plans() -> list[_Plan]:
    return [
        _Plan("DEMO-001", "Alex Near-Empty", "spinal", "dr_demo", "peristaltic-20", 500.0,
              20.0, continuous(450.0), 2 * 365, 19.0, 19.0),
        _Plan("DEMO-002", "Blake Battery-ERI", "cerebral", "dr_demo", "peristaltic-40", 1000.0,
              40.0, continuous(700.0), 6.4 * 365, 50.0, 12.0),
        _Plan("DEMO-003", "Casey Titration", "spinal", "dr_demo", "peristaltic-20", 500.0,
              20.0, continuous(100.0), 8, 60.0, 8.0, (120.0, 144.0, 170.0, 200.0)),
        _Plan("DEMO-004", "Dana Stability", "cerebral", "dr_other", "peristaltic-40", 2000.0,
              40.0, continuous(300.0), 3 * 365, 170.0, 160.0),
        _Plan("DEMO-005", "Eli Flex", "spinal", "dr_other", "valve-gated-20", 500.0, 20.0,
              flex([FlexStep(0, 15.0), FlexStep(7 * 60, 25.0), FlexStep(21 * 60, 18.0)]),
              400, 15.0, 12.0),
    ]  # fmt: skip


def seed_demo(
    db: Session, pumps: SimulatedPumps, now: datetime, password: str | None = None
) -> list[DemoAccount]:
    """Create the demo clinic and its running pumps; return the accounts to print."""
    accounts = []
    users: dict[str, User] = {}
    for username, role in (
        ("dr_demo", Role.PHYSICIAN),
        ("dr_other", Role.PHYSICIAN),
        ("nurse_demo", Role.NURSE),
        ("viewer_demo", Role.VIEWER),
    ):
        secret = password or secrets.token_urlsafe(12)
        users[username] = auth.add_user(db, username, role.value, secret)
        accounts.append(DemoAccount(username, role.value, secret))
    for plan in _plans():
        _seed_patient(db, pumps, plan, users[plan.clinician], now)
    screening = Patient(
        mrn="DEMO-006",
        name="Frankie Screening",
        origin="cerebral",
        clinician_id=users["dr_demo"].id,
        created_at=now - timedelta(days=3),
    )
    db.add(screening)
    db.commit()
    return accounts


def _seed_patient(
    db: Session, pumps: SimulatedPumps, plan: _Plan, clinician: User, now: datetime
) -> None:
    implanted_at = now - timedelta(days=plan.implanted_days_ago)
    fw = Firmware.implant(
        pump_model(plan.model),
        implanted_at,
        serial=f"SIM-{plan.mrn[-3:]}",
        concentration_ug_per_ml=plan.concentration_ug_per_ml,
        volume_ml=plan.fill_ml,
        program=plan.program,
    )
    last_refill_at = now - timedelta(days=plan.last_refill_days_ago)
    at = implanted_at + timedelta(days=plan.refill_every_days)
    while at < last_refill_at - timedelta(days=1):
        fw.refill(at, plan.fill_ml, plan.concentration_ug_per_ml)
        at += timedelta(days=plan.refill_every_days)
    if last_refill_at > implanted_at + timedelta(hours=1):
        fw.refill(last_refill_at, plan.fill_ml, plan.concentration_ug_per_ml)
    for i, rate in enumerate(plan.titration_ug_per_day):
        step_at = now - timedelta(days=len(plan.titration_ug_per_day) - i)
        if step_at > fw.now:
            fw.set_program(step_at, continuous(rate))
    fw.advance(now)
    pumps.add(fw)

    patient = Patient(
        mrn=plan.mrn,
        name=plan.name,
        origin=plan.origin,
        clinician_id=clinician.id,
        created_at=implanted_at - timedelta(days=30),
    )
    db.add(patient)
    db.flush()
    pump, _ = services.add_pump_with_catheter(
        db,
        patient,
        plan.model,
        fw.serial,
        implanted_at,
        DEMO_CATHETER_TRIMMED_CM,
        paired_key_hex=secrets.token_hex(32),
    )
    _record_history(db, patient, pump, fw, clinician)
    audit.record(db, None, "demo.seed", "patient", patient.id, None, {"serial": fw.serial})


def _record_history(
    db: Session, patient: Patient, pump: Pump, fw: Firmware, clinician: User
) -> None:
    """The visits the clinic would have recorded, rebuilt from the pump's own log."""
    entries = fw.log.entries()
    for entry in entries:
        data = dict(entry.data)
        kind = _VISIT_KINDS.get(entry.kind)
        if kind is None:
            continue
        visit = services.add_visit(
            db, services.NewVisit(patient, pump, clinician, kind, entry.at, data)
        )
        if entry.kind == "refill":
            db.add(_refill_record(pump, visit, entry.at, data))
        else:
            program = program_from_dict(
                _table(data["program" if entry.kind == "implant" else "new"])
            )
            services.add_program_version(db, pump, program, clinician, visit, entry.at)
    reading = PumpReading(fw.status(), [e.to_dict() for e in entries])
    services.ingest_reading(db, pump, reading)


# the pump's log entries the clinic would have recorded as visits
_VISIT_KINDS = {
    "implant": VisitKind.IMPLANT,
    "program": VisitKind.PROGRAMMING,
    "refill": VisitKind.REFILL,
}


def _refill_record(pump: Pump, visit: Visit, at: datetime, data: dict[str, Any]) -> RefillRecord:
    old: dict[str, float] = data["old"]
    return RefillRecord(
        visit_id=visit.id,
        pump_id=pump.id,
        at=at,
        expected_ml=old["reservoir_ml"],
        withdrawn_ml=old["reservoir_ml"],
        filled_ml=data["volume_ml"],
        concentration_ug_per_ml=data["concentration_ug_per_ml"],
        discrepancy_ml=0.0,
    )


def _table(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return value
