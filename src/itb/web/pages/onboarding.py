"""Onboarding (physicians): a new patient, the implant (pump, catheter, first fill and
program version 1) and a pump replacement (the old pump retired, the catheter kept)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.errors import ConflictError
from itb.clinic.models import Role, User
from itb.clinic.services.patients import AGE_MAX_YEARS
from itb.drugs import BACLOFEN
from itb.errors import InputError
from itb.guardrails import DAILY_DOSE
from itb.programmer.programming import ProgramReview
from itb.pump.hardware import CATHETER_LENGTH_CM, CATHETER_VOLUME_ML_PER_CM, MODELS
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import ImplantForm, PatientNewForm, ReplacementForm, number

router = APIRouter(include_in_schema=False)


# New patient -----------------------------------------------------------------------------------
def _physicians(db: Session) -> list[User]:
    return list(
        db.execute(
            select(User)
            .where(User.role == Role.PHYSICIAN.value, User.active)
            .order_by(User.username)
        ).scalars()
    )


def _patient_new_page(
    request: Request, db: Session, caller: Caller, values: dict[str, str], error: InputError | None
) -> HTMLResponse:
    return render(
        request,
        "patient_new.html",
        caller,
        422 if error else 200,
        values=values,
        error=error,
        origins=services.ORIGINS,
        age_max_years=AGE_MAX_YEARS,
        clinicians=_physicians(db),
    )


@router.get("/patients/new")
def patient_new_form(
    request: Request, db: Db, caller: Caller = need("manage_patients", page=True)
) -> HTMLResponse:
    return _patient_new_page(request, db, caller, {}, None)


@router.post("/patients/new")
def patient_new_submit(
    request: Request,
    db: Db,
    form: Annotated[PatientNewForm, Form()],
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    try:
        patient = services.create_patient(db, caller.user, form.to_input(), now(request))
    except InputError as exc:
        db.rollback()
        return _patient_new_page(request, db, caller, form.values(), exc)
    return redirect(f"/patients/{patient.id}?notice=created")


# Implant and replacement -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PumpPageState:
    """What the implant or replacement page shows besides the patient."""

    kind: str  # "implant" or "replacement": the template, and which the patient must allow
    values: dict[str, str]  # the form as typed
    error: InputError | None = None
    preview: dict[str, Any] | None = None  # implant: catheter volume and priming bolus (S31)
    review: ProgramReview | None = None  # implant: the first program's checks


def _pump_page(
    request: Request, db: Session, caller: Caller, patient_id: int, state: PumpPageState
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    summary = services.patient_summary(db, patient, now(request))
    if state.kind == "implant" and summary["pump"]:
        raise ConflictError(f"patient {patient_id} already has a pump: record a replacement")
    if state.kind == "replacement" and not summary["pump"]:
        raise ConflictError(f"patient {patient_id} has no pump to replace: record an implant")
    return render(
        request,
        f"{state.kind}.html",
        caller,
        422 if state.error else 200,
        p=summary,
        values=state.values,
        error=state.error,
        preview=state.preview,
        review=state.review,
        models=MODELS,
        concentrations=BACLOFEN.concentrations_ug_per_ml,
        catheter_length_cm=CATHETER_LENGTH_CM,
        catheter_ml_per_cm=CATHETER_VOLUME_ML_PER_CM,
        dose_limit=DAILY_DOSE,
    )


@router.get("/patients/{patient_id}/implant")
def implant_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients", page=True),
) -> HTMLResponse:
    return _pump_page(request, db, caller, patient_id, PumpPageState("implant", {}))


@router.post("/patients/{patient_id}/implant")
def implant_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ImplantForm, Form()],
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    """``action=review`` shows the implanted catheter volume (S31), the priming bolus and the
    program's checks; ``action=save`` records the implant."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    state = PumpPageState("implant", form.values())
    try:
        trimmed = number(form.catheter_trimmed_cm, "catheter_trimmed_cm", "cm")
        concentration = number(form.concentration_ug_per_ml, "concentration_ug_per_ml", "µg/mL")
        preview = services.catheter_preview(form.model, trimmed, concentration)
        state = replace(state, preview=preview)
        data = form.to_input()
        if form.action != "save":
            review = services.preview_implant(db, links, patient, data, trimmed, now(request))
            return _pump_page(request, db, caller, patient_id, replace(state, review=review))
        services.record_implant(db, links, patient, caller.user, data, trimmed, now(request))
    except InputError as exc:
        db.rollback()
        return _pump_page(request, db, caller, patient_id, replace(state, error=exc))
    return redirect(f"/patients/{patient_id}?notice=implanted")


@router.get("/patients/{patient_id}/replacement")
def replacement_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients", page=True),
) -> HTMLResponse:
    return _pump_page(request, db, caller, patient_id, PumpPageState("replacement", {}))


@router.post("/patients/{patient_id}/replacement")
def replacement_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ReplacementForm, Form()],
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    """Blank concentration, program or alarm threshold: carried over from the old pump."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    try:
        services.record_replacement(db, links, patient, caller.user, form.to_input(), now(request))
    except InputError as exc:
        db.rollback()
        state = PumpPageState("replacement", form.values(), error=exc)
        return _pump_page(request, db, caller, patient_id, state)
    return redirect(f"/patients/{patient_id}?notice=replaced")
