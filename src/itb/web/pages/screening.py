"""The screening trial: hourly scores after each trial bolus, and the latest dose's model
comparison, classification and decision (itb.programmer.screening through the services)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.effect import BAND_SEED, screening_days
from itb.clinic.models import Patient
from itb.errors import InputError
from itb.pharmacology.fit import PatientFit
from itb.pharmacology.prediction import StartingDose, positive_screening_dose, starting_dose
from itb.pharmacology.titration import LONG_EFFECT_H
from itb.programmer.screening import (
    ALLOWED_DOSES_UG,
    MIN_INTERVAL_H,
    MIN_SCORES_AFTER_BOLUS,
    ResponseRule,
)
from itb.web.charts import screening_svg
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, notice_box, redirect, render
from itb.web.pages.forms import SCORE_HOURS, ScreeningForm
from itb.web.pages.patient import patient_model

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class FittedModel:
    """The patient's own model after the trial (None: no hourly scores), and the first pump dose
    by it (None: no dose responded)."""

    fit: PatientFit | None
    start: StartingDose | None


def _patient_model(db: Session, patient: Patient) -> FittedModel:
    fit = patient_model(db, patient)
    if fit.typical:
        return FittedModel(None, None)
    records = [
        (v.started_at, json.loads(v.details_json))
        for v, _ in services.screening_history(db, patient)
    ]
    positive = positive_screening_dose(screening_days(records))
    start = (
        None if positive is None else starting_dose(fit, positive, np.random.default_rng(BAND_SEED))
    )
    return FittedModel(fit, start)


def _screening_page(
    request: Request,
    db: Session,
    caller: Caller,
    patient: Patient,
    form: ScreeningForm | None = None,
    error: InputError | None = None,
    notice: str = "",
) -> HTMLResponse:
    """The entry form, the trial so far and the latest dose's result."""
    summary = services.patient_summary(db, patient, now(request))
    history = services.screening_history(db, patient)
    latest = chart = fitted = None
    if history:
        visit, _ = history[-1]
        latest = services.screening_assessment(visit, [d for _, d in history[:-1]])
        fitted = _patient_model(db, patient)
        chart = (
            screening_svg(latest, fitted.fit.patient() if fitted.fit else None) if latest else None
        )
    return render(
        request,
        "screening.html",
        caller,
        422 if error else 200,
        p=summary,
        error=error,
        values=form.values() if form else {},
        hours=SCORE_HOURS,
        doses=ALLOWED_DOSES_UG,
        history=[(v, d, json.loads(v.details_json)) for v, d in history],
        latest=latest,
        chart=chart,
        default_rule=ResponseRule(),
        min_scores=MIN_SCORES_AFTER_BOLUS,
        interval_h=MIN_INTERVAL_H,
        long_effect_h=LONG_EFFECT_H,
        fitted=fitted,
        **notice_box(notice),
    )


@router.get("/patients/{patient_id}/screening")
def screening_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    notice: str = "",
    caller: Caller = need("record", page=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    return _screening_page(request, db, caller, patient, notice=notice)


@router.post("/patients/{patient_id}/screening")
def screening_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ScreeningForm, Form()],
    caller: Caller = need("record", page=True, form=True),
) -> Response:
    """Hourly fields ``mas_0`` (baseline) to ``mas_8``; blank hours are not scored."""
    patient = services.get_patient(db, patient_id)
    try:
        scores, bolus_at = form.scores(), form.bolus_at()
        dose = services.ScreeningDose(form.dose(), scores, bolus_at, form.clipped_notes())
        services.record_screening_dose(db, patient, caller.user, dose, now(request))
    except InputError as exc:
        db.rollback()
        return _screening_page(request, db, caller, patient, form, exc)
    return redirect(f"/patients/{patient_id}/screening?notice=screening")
