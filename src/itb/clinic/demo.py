"""The demo clinic: a few patients, each with a running simulated pump in a different state.

One near empty, one past ERI, one mid-titration, one held back by the drug's stability limit,
one on a flexible schedule, and one in screening. Their history (refills, program changes) is
simulated by the firmware and stored as the clinic would have recorded it; on top of it, one
follow-up visit and one refill flagged for a physician's review, so that a reviewer sees both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit, auth, services
from itb.clinic.models import Patient, Pump, RefillRecord, Role, User, Visit, VisitKind
from itb.clinic.pumps import PumpReading, SimulatedPumps
from itb.clinic.services.follow_up import FollowUpInput, record_follow_up
from itb.clinic.services.refill_rules import withdrawn_volume_check
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


# The demo's accounts, one per role (helpers add theirs here): username, role.
DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("dr_demo", Role.PHYSICIAN),
    ("dr_other", Role.PHYSICIAN),
    ("nurse_demo", Role.NURSE),
    ("viewer_demo", Role.VIEWER),
    ("admin_demo", Role.ADMINISTRATOR),  # accounts and the audit log
)

# A generated demo password is 16 random URL-safe characters (96 bits): no guessing attack
# needs key stretching to fail against it, so it is hashed with argon2id at its cheapest
# instead of the 0.2 s per account of auth's profile (which the first log-in upgrades it to:
# auth rehashes a hash whose parameters are not the current ones). A password the caller
# chose goes through auth.add_user at full cost.
_THROWAWAY_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def seed_demo(
    db: Session, pumps: SimulatedPumps, now: datetime, password: str | None = None
) -> list[DemoAccount]:
    """Create the demo clinic and its running pumps; return the accounts to print."""
    accounts = []
    users: dict[str, User] = {}
    for username, role in DEMO_USERS:
        if password is None:
            secret = secrets.token_urlsafe(12)
            users[username] = _add_throwaway_user(db, username, role, secret)
        else:
            secret = password
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
    accounts.append(_seed_caregiver(db, password))
    db.commit()
    _seed_follow_up(db, users[DEMO_FOLLOW_UP.clinician], now)
    return accounts


@dataclass(frozen=True, slots=True)
class _DemoFollowUp:
    mrn: str
    clinician: str
    days_ago: int
    weeks_to_next: int
    findings: FollowUpInput


# The demo's follow-up visit (issue 14): the patient past ERI seen last week, replacement booked.
DEMO_FOLLOW_UP = _DemoFollowUp(
    "DEMO-002", "dr_demo", 6, 3,
    FollowUpInput(
        notes="Battery past its replacement indicator: pump replacement discussed with the "
        "family and booked. Spasticity stable on the current dose; mild constipation, diet "
        "advice given.",
        mas=2.0,  # MAS 1+ (coded 2, follow_up.MAS_RULE)
        side_effects=("constipation",),
    ),
)  # fmt: skip


def _seed_follow_up(db: Session, clinician: User, now: datetime) -> None:
    """The follow-up as the follow-up page records it (audited; commits)."""
    plan = DEMO_FOLLOW_UP
    patient = db.execute(select(Patient).where(Patient.mrn == plan.mrn)).scalar_one()
    seen_at = (now - timedelta(days=plan.days_ago)).replace(
        hour=10, minute=30, second=0, microsecond=0
    )
    next_at = (seen_at + timedelta(weeks=plan.weeks_to_next)).replace(hour=9, minute=0)
    findings = FollowUpInput(
        plan.findings.notes, plan.findings.mas, plan.findings.side_effects, next_at
    )
    record_follow_up(db, clinician, patient, findings, seen_at)


# The demo family (issue 16): a parent of the child in titration, on the family's page.
DEMO_CAREGIVER = ("parent_demo", "DEMO-003", "Casey")


def _seed_caregiver(db: Session, password: str | None) -> DemoAccount:
    from itb.clinic.services.family import link_demo_caregiver

    username, mrn, first_name = DEMO_CAREGIVER
    child = db.execute(select(Patient).where(Patient.mrn == mrn)).scalar_one()
    if password is None:
        secret = secrets.token_urlsafe(12)
        user = _add_throwaway_user(db, username, Role.CAREGIVER, secret)
    else:
        secret = password
        user = auth.add_user(db, username, Role.CAREGIVER.value, secret)
    link_demo_caregiver(db, child, user, first_name)
    return DemoAccount(username, Role.CAREGIVER.value, secret)


def _add_throwaway_user(db: Session, username: str, role: Role, secret: str) -> User:
    """auth.add_user's row and audit entry, for a generated secret (cheap hash, see above)."""
    user = User(
        username=username,
        password_hash=_THROWAWAY_HASHER.hash(secret),
        role=role.value,
        display_name=username,
        created_at_utc=audit.utc_now(),
    )
    db.add(user)
    db.flush()
    audit.record(
        db, None, "user.add", "user", user.id, None, {"username": username, "role": role.value}
    )
    return user


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
    _record_screening(db, patient, clinician, implanted_at, plan.mrn)
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


# The demo's flagged refill (issue 14): at Eli's last refill the nurse withdrew more than the
# pump counted left, beyond a 20 mL pump's pocket-fill tolerance (S28), and acknowledged it; it
# stays marked on the dashboard until a physician reviews it (services/refill_review.py).
DEMO_FLAGGED_REFILL_MRN = "DEMO-005"
DEMO_FLAGGED_EXTRA_WITHDRAWN_ML = 1.8
DEMO_FLAGGED_NOTE = (
    "Withdrew more than the pump counted: no withdrawal signs, pump site normal. "
    "Asked the family to watch for withdrawal; physician to decide on a catheter study."
)


def _flagged_withdrawal(data: dict[str, Any]) -> dict[str, Any]:
    """The refill's data as the refill page keeps an acknowledged discrepancy."""
    expected_ml = float(data["old"]["reservoir_ml"])
    withdrawn_ml = round(expected_ml + DEMO_FLAGGED_EXTRA_WITHDRAWN_ML, 1)
    return data | {
        "withdrawn_ml": withdrawn_ml,
        "discrepancy_acknowledged": True,
        "discrepancy_note": DEMO_FLAGGED_NOTE,
    }


def _record_history(
    db: Session, patient: Patient, pump: Pump, fw: Firmware, clinician: User
) -> None:
    """The visits the clinic would have recorded, rebuilt from the pump's own log."""
    entries = fw.log.entries()
    refills = [i for i, entry in enumerate(entries) if entry.kind == "refill"]
    flagged = refills[-1] if refills and patient.mrn == DEMO_FLAGGED_REFILL_MRN else None
    for i, entry in enumerate(entries):
        data = dict(entry.data)
        kind = _VISIT_KINDS.get(entry.kind)
        if kind is None:
            continue
        if i == flagged:
            data = _flagged_withdrawal(data)
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
    expected_ml = float(data["old"]["reservoir_ml"])
    withdrawn_ml = float(data.get("withdrawn_ml", expected_ml))
    # the refill page's check decides the flag (S28 and the pump's accuracy band)
    check = (
        withdrawn_volume_check(pump, {"expected_ml": expected_ml, "withdrawn_ml": withdrawn_ml})
        if withdrawn_ml != expected_ml
        else None
    )
    return RefillRecord(
        visit_id=visit.id,
        pump_id=pump.id,
        at=at,
        expected_ml=expected_ml,
        withdrawn_ml=withdrawn_ml,
        filled_ml=data["volume_ml"],
        concentration_ug_per_ml=data["concentration_ug_per_ml"],
        discrepancy_ml=check.discrepancy_ml if check else 0.0,
        discrepancy_flagged=check.flagged if check else False,
    )


def _table(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return value


# The screening trial before each implant (S45 S46), as the clinic recorded it: hourly MAS of a
# patient drawn from the population (seeded by the MRN) with measurement noise, so that each
# patient page shows the patient's own forecast (itb.pharmacology.fit).
DEMO_SCREENING_DAYS_BEFORE_IMPLANT = 21


def _record_screening(
    db: Session, patient: Patient, clinician: User, implanted_at: datetime, mrn: str
) -> None:
    import numpy as np

    from itb.pharmacology.fit import patients_at
    from itb.pharmacology.population import N_NORMALS
    from itb.pharmacology.prediction import positive_screening_dose
    from itb.pharmacology.synthetic import screening_days

    rng = np.random.default_rng([int(mrn.removeprefix("DEMO-")), 15])
    days = []
    for _ in range(100):  # an implanted patient responded to a screening dose: draw one who does
        z = rng.standard_normal(N_NORMALS)
        days = screening_days(patients_at(z[None, :]), rng)
        if positive_screening_dose(days) is not None:
            break
    first = (implanted_at - timedelta(days=DEMO_SCREENING_DAYS_BEFORE_IMPLANT)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    for i, day in enumerate(days):
        given_at = first + timedelta(days=i)
        dose = services.ScreeningDose(day.dose_ug, day.scores_by_hour, given_at)
        services.record_screening_dose(db, patient, clinician, dose, given_at + timedelta(hours=9))
