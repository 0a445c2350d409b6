"""The screening trial: test boluses with hourly MAS scores, before an implant.

Each dose is stored with the programmer's comparison, classification and decision
(:mod:`itb.programmer.screening`), and the rule it was recorded under, so that a stored dose can
be recomputed exactly as it was judged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Patient, User, Visit, VisitKind
from itb.clinic.services.lookups import NewVisit, add_visit
from itb.errors import InputError
from itb.programmer.screening import (
    Assessment,
    EarlierDose,
    ResponseRule,
    ScreeningTrial,
    assess,
    dose_from_hourly_scores,
)

NOTES_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ScreeningDose:
    """One trial bolus as recorded: its dose, the hourly MAS (hour 0 = baseline), when it was
    given (None: the last score was just taken), notes, and the response rule."""

    dose_ug: float
    scores_by_hour: Mapping[int, float]
    given_at: datetime | None = None
    notes: str = ""
    rule: ResponseRule = field(default_factory=ResponseRule)


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


def _bolus_at(data: ScreeningDose, now: datetime) -> datetime:
    """When the bolus was given: as entered, else the last score's hour before now."""
    if not data.scores_by_hour:
        raise InputError("scores", "hour 0 (baseline) and at least 4 later hours needed")
    try:
        last_hour = max(h for h in data.scores_by_hour if isinstance(h, int))
    except ValueError:
        last_hour = 0
    bolus_at = data.given_at if data.given_at is not None else now - timedelta(hours=last_hour)
    if bolus_at + timedelta(hours=last_hour) > now:
        reason = (
            f"the {last_hour} h score would be in the future; allowed up to "
            f"{now - timedelta(hours=last_hour):%Y-%m-%d %H:%M}"
        )
        raise InputError("given_at", reason, f"given_at={bolus_at.isoformat()}: {reason}")
    return bolus_at


def record_screening_dose(
    db: Session, patient: Patient, user: User, data: ScreeningDose, now: datetime
) -> tuple[Visit, Assessment]:
    """Store one trial bolus with its hourly MAS and the programmer's comparison,
    classification and decision (itb.programmer.screening)."""
    bolus_at = _bolus_at(data, now)
    # a bad dose or score raises the programmer's ScreeningInputError (an InputError) naming it
    dose = dose_from_hourly_scores(data.dose_ug, data.scores_by_hour, bolus_at)
    earlier = tuple(d for _, d in screening_history(db, patient))
    assessment = assess(ScreeningTrial(dose, earlier), data.rule)
    result = assessment.to_dict()
    details = {
        "dose_ug": dose.dose_ug,
        "given_at": bolus_at.isoformat(),
        "scores": {str(h): float(m) for h, m in sorted(data.scores_by_hour.items())},
        "min_fall_mas": data.rule.min_fall_mas,
        "positive": assessment.classification.positive,
        "max_fall_mas": result["classification"]["max_fall_mas"],
        "decision": assessment.decision.action.value,
        "next_dose_ug": assessment.decision.next_dose_ug,
        "not_before": result["decision"]["not_before"],
        "first_daily_dose_ug": assessment.decision.first_daily_dose_ug,
        "reason": assessment.decision.reason,
    }
    visit = add_visit(
        db,
        NewVisit(
            patient, None, user, VisitKind.SCREENING_TRIAL, bolus_at, details,
            completed_at=now, notes=data.notes[:NOTES_MAX_CHARS],
        ),
    )  # fmt: skip
    audit.record(db, user, "visit.screening_trial", "visit", visit.id, None, details)
    db.commit()
    return visit, assessment
