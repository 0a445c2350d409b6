"""Edit a patient's details (physicians, as for a new record): the same form and the same
checks as a new patient (services/patients.py), audited with the values before and after."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.models import Patient, Role, User
from itb.clinic.services.patients import AGE_MAX_YEARS, update_patient
from itb.errors import InputError
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import PatientNewForm
from itb.web.validation import input_error_sentence

router = APIRouter(include_in_schema=False)


def _values(patient: Patient) -> dict[str, str]:
    return {
        "name": patient.name,
        "mrn": patient.mrn,
        "birth_date": patient.birth_date.strftime("%Y-%m-%d") if patient.birth_date else "",
        "origin": patient.origin,
        "clinician_id": str(patient.clinician_id or ""),
    }


def _physicians(db: Session, patient: Patient) -> list[User]:
    active = (User.role == Role.PHYSICIAN.value) & User.active
    return list(
        db.execute(
            select(User).where(active | (User.id == patient.clinician_id)).order_by(User.username)
        ).scalars()
    )


def _page(
    request: Request,
    db: Session,
    caller: Caller,
    patient: Patient,
    values: dict[str, str],
    error: InputError | None = None,
) -> HTMLResponse:
    return render(
        request,
        "patient_edit.html",
        caller,
        422 if error else 200,
        patient=patient,
        values=values,
        error=input_error_sentence(error.field, error.reason, str(error)) if error else "",
        error_field=error.field if error else "",
        origins=services.ORIGINS,
        age_max_years=AGE_MAX_YEARS,
        clinicians=_physicians(db, patient),
    )


@router.get("/patients/{patient_id}/edit")
def patient_edit_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients", page=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    return _page(request, db, caller, patient, _values(patient))


@router.post("/patients/{patient_id}/edit")
def patient_edit_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[PatientNewForm, Form()],
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    try:
        changed = update_patient(db, caller.user, patient, form.to_input(), now(request))
    except InputError as exc:
        db.rollback()
        patient = services.get_patient(db, patient_id)
        return _page(request, db, caller, patient, form.values(), exc)
    return redirect(f"/patients/{patient_id}?notice={'edited' if changed else 'unchanged'}")
