"""A program change: old and new side by side with every check, then sent once nothing
refuses it and any warning is confirmed with a reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.errors import InputError
from itb.guardrails import DAILY_DOSE
from itb.programmer.programming import CHANGE_LIMITS, ProgramReview
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import ProgramForm

router = APIRouter(include_in_schema=False)


def _program_page(
    request: Request,
    db: Session,
    caller: Caller,
    patient_id: int,
    form: ProgramForm | None = None,
    review: ProgramReview | None = None,
    error: InputError | None = None,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    summary = services.patient_summary(db, patient, now(request))
    pump = services.active_pump(db, patient)
    return render(
        request,
        "program.html",
        caller,
        422 if error else 200,
        p=summary,
        values=form.values() if form else {},
        review=review,
        error=error,
        default_phase=services.default_phase(pump).value,
        origin=services.patient_origin(patient).value,
        limits={f"{o.value} {ph.value}": lim for (o, ph), lim in CHANGE_LIMITS.items()},
        dose_limit=DAILY_DOSE,
    )


@router.get("/patients/{patient_id}/program")
def program_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("program", page=True),
) -> HTMLResponse:
    return _program_page(request, db, caller, patient_id)


@router.post("/patients/{patient_id}/program")
def program_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ProgramForm, Form()],
    caller: Caller = need("program", page=True, form=True),
) -> Response:
    """``action=review`` shows old and new with every check; ``action=send`` sends the program
    once nothing refuses it and any warning is confirmed with a reason."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    review = None
    try:
        program_request = form.to_request()
        pump = services.active_pump(db, patient)
        review = services.review_program_change(db, patient, pump, program_request)
        if form.action != "send":
            return _program_page(request, db, caller, patient_id, form, review)
        services.change_program(db, links, patient, caller.user, program_request, now(request))
    except InputError as exc:
        db.rollback()
        return _program_page(request, db, caller, patient_id, form, review, exc)
    return redirect(f"/patients/{patient_id}?notice=programmed")
