"""The family's page as one read model: countdown, alarms, withdrawal, battery, visits, card.

Nothing here computes a rule: the dates are the pump row's (projected at its last reading by
urgency.py), the words are family_words.py's, the withdrawal time is the pharmacology's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic.effect import patient_fit, screening_days
from itb.clinic.family_words import (
    EARLY_PHASE_DAYS,
    EARLY_PHASE_VISIT_EVERY_DAYS,
    AlarmWords,
    Level,
    alarm_words,
    all_alarm_words,
    countdown_level,
    days_in_words,
)
from itb.clinic.models import Alarm, CaregiverLink, FamilyReport, Patient, Pump, Visit, VisitKind
from itb.clinic.services.family import open_reports
from itb.clinic.services.lookups import find_active_pump
from itb.clinic.services.screening import screening_history
from itb.clinic.urgency import days_until
from itb.pharmacology.fit import PatientFit
from itb.pharmacology.withdrawal_course import withdrawal_outlook
from itb.pump.alarms import AlarmKind
from itb.pump.hardware import UnknownModelError, pump_model
from itb.units import HOURS_PER_DAY


def withdrawal_onset_h(fit: PatientFit, daily_dose_ug: float) -> float | None:
    """Hours after delivery stops until the first withdrawal signs are expected at this daily
    dose, on the patient's own model: the pharmacology's withdrawal course
    (:func:`itb.pharmacology.withdrawal_course.withdrawal_outlook`), the same figure the patient
    page gives; None when there is no dose or no signs within its horizon."""
    if not daily_dose_ug > 0.0:
        return None
    outlook = withdrawal_outlook(fit.patient(), daily_dose_ug / HOURS_PER_DAY)
    hours = float(outlook.signs_from_h[0])
    return hours if math.isfinite(hours) else None


def patient_model(db: Session, patient: Patient) -> PatientFit:
    """The patient's own model from the screening trial's hourly MAS (typical if none), as the
    patient page builds it."""
    history = screening_history(db, patient)
    records = [(visit.started_at, json.loads(visit.details_json)) for visit, _ in history]
    return patient_fit(screening_days(records))


@dataclass(frozen=True, slots=True)
class Countdown:
    low_reservoir_at: datetime | None
    days: float | None
    words: str
    level: Level
    refill_by: datetime | None
    refill_words: str


@dataclass(frozen=True, slots=True)
class UpcomingVisit:
    on: datetime
    what: str
    uid: str


@dataclass(frozen=True, slots=True)
class Card:
    model: str
    serial: str
    drug: str
    concentration_ug_per_ml: float | None
    daily_dose_ug: float | None
    implanted_on: datetime


@dataclass(frozen=True, slots=True)
class FamilyView:
    patient_id: int
    first_name: str
    clinic_phone: str
    clinician: str
    card: Card | None
    countdown: Countdown | None
    alarms_now: list[AlarmWords]
    alarm_guide: list[AlarmWords]
    withdrawal_onset_h: float | None
    replacement_at: datetime | None
    replacement_words: str
    stops_at: datetime | None
    visits: list[UpcomingVisit]
    early_phase: bool
    rhythm_words: str
    reports: list[FamilyReport]
    state_at: datetime | None


def _countdown(pump: Pump, now: datetime) -> Countdown | None:
    if pump.low_reservoir_at is None:
        return None
    days = days_until(pump.low_reservoir_at, now)
    refill_days = days_until(pump.next_refill_at, now)
    return Countdown(
        pump.low_reservoir_at,
        days,
        days_in_words(days) if days is not None else "",
        countdown_level(days),
        pump.next_refill_at,
        days_in_words(refill_days) if refill_days is not None else "",
    )


def _card(pump: Pump) -> Card:
    try:
        model = pump_model(pump.model).name
    except UnknownModelError:
        model = pump.model
    return Card(
        model, pump.serial, pump.drug, pump.concentration_ug_per_ml, pump.daily_dose_ug,
        pump.implanted_at,
    )  # fmt: skip


def _alarms_now(db: Session, pump: Pump) -> list[AlarmWords]:
    kinds = db.execute(
        select(Alarm.kind).where(Alarm.pump_id == pump.id, Alarm.active).distinct()
    ).scalars()
    known = {k.value: k for k in AlarmKind}
    return [alarm_words(known[k]) for k in sorted(kinds) if k in known]


def _early_phase(db: Session, patient_id: int, pump: Pump | None, now: datetime) -> datetime | None:
    """The last dose change or implant within EARLY_PHASE_DAYS, else None: the early phase."""
    since = now - timedelta(days=EARLY_PHASE_DAYS)
    last = db.execute(
        select(Visit.started_at)
        .where(
            Visit.patient_id == patient_id,
            Visit.kind.in_([VisitKind.PROGRAMMING.value, VisitKind.IMPLANT.value]),
            Visit.started_at >= since,
            Visit.started_at <= now,
        )
        .order_by(Visit.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None and pump is not None and pump.implanted_at >= since:
        return pump.implanted_at
    return last


def _visits(
    pump: Pump | None, first_name: str, early_since: datetime | None
) -> list[UpcomingVisit]:
    visits: list[UpcomingVisit] = []
    if early_since is not None:
        check_by = early_since + timedelta(days=EARLY_PHASE_VISIT_EVERY_DAYS[1])
        visits.append(
            UpcomingVisit(check_by, f"{first_name}: dose check at the ITB clinic", "check")
        )
    if pump is not None and pump.next_refill_at is not None:
        visits.append(
            UpcomingVisit(
                pump.next_refill_at, f"{first_name}: pump refill at the ITB clinic", "refill"
            )
        )
    if pump is not None and pump.eri_at is not None:
        visits.append(
            UpcomingVisit(pump.eri_at, f"{first_name}: plan the pump replacement", "replacement")
        )
    return sorted(visits, key=lambda v: v.on)


def _rhythm_words(early_since: datetime | None) -> str:
    low, high = EARLY_PHASE_VISIT_EVERY_DAYS
    if early_since is not None:
        return (
            f"The dose is still being adjusted: the clinic sees your child every {low // 7} to "
            f"{high // 7} weeks. Visits become less frequent as things settle."
        )
    return "The dose is settled: the clinic sees your child at each refill, or sooner if needed."


def family_view(db: Session, link: CaregiverLink, now: datetime) -> FamilyView:
    patient = link.patient
    pump = find_active_pump(db, patient)
    early_since = _early_phase(db, patient.id, pump, now)
    eri_days = days_until(pump.eri_at, now) if pump else None
    clinician = patient.clinician.display_name if patient.clinician else "your ITB clinic"
    dose = pump.daily_dose_ug if pump and pump.daily_dose_ug else 0.0
    return FamilyView(
        patient_id=patient.id,
        first_name=link.first_name,
        clinic_phone=link.phone,
        clinician=clinician,
        card=_card(pump) if pump else None,
        countdown=_countdown(pump, now) if pump else None,
        alarms_now=_alarms_now(db, pump) if pump else [],
        alarm_guide=all_alarm_words(),
        withdrawal_onset_h=withdrawal_onset_h(patient_model(db, patient), dose) if dose else None,
        replacement_at=pump.eri_at if pump else None,
        replacement_words=days_in_words(eri_days) if eri_days is not None else "",
        stops_at=pump.eos_at if pump else None,
        visits=_visits(pump, link.first_name, early_since),
        early_phase=early_since is not None,
        rhythm_words=_rhythm_words(early_since),
        reports=open_reports(db, patient.id),
        state_at=pump.state_at if pump else None,
    )
