"""The screening trial: hourly scores after each trial bolus, and the latest dose's model
comparison, classification and decision (itb.programmer.screening through the services)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.models import Patient
from itb.errors import InputError
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

router = APIRouter(include_in_schema=False)


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
    latest = chart = None
    if history:
        visit, _ = history[-1]
        latest = services.screening_assessment(visit, [d for _, d in history[:-1]])
        chart = screening_svg(latest) if latest else None
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
