"""A program change: old and new side by side with every check, then sent once nothing
refuses it and any warning is confirmed with a reason.

What you review is what you send (H32): the review puts its token in the form; Send carries it
back with the program fields. A program edited after its review gives another token: nothing is
sent, the page shows the review of the program as it now stands, with its own token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.dose_words import dose_sentence
from itb.errors import InputError
from itb.guardrails import DAILY_DOSE
from itb.programmer.programming import CHANGE_LIMITS
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
    reviewed: services.ReviewedProgram | None = None,
    error: InputError | None = None,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    summary = services.patient_summary(db, patient, now(request))
    pump = services.active_pump(db, patient)
    origin = services.patient_origin(patient)
    values = form.values() if form else {}
    if error is not None and error.field == "review_token":
        values.pop("confirm", None)  # a new review is confirmed anew, never carried over
    return render(
        request,
        "program.html",
        caller,
        422 if error else 200,
        p=summary,
        values=values,
        review=reviewed.review if reviewed else None,
        review_token=reviewed.token if reviewed else "",
        confirmation=dose_sentence(reviewed.review) if reviewed else "",
        error=error,
        default_phase=services.default_phase(pump).value,
        origin=origin.value if origin else None,
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
    reviewed = None
    try:
        program_request = form.to_request()
        pump = services.active_pump(db, patient)
        reviewed = services.review_program_change(db, patient, pump, program_request, now(request))
        if form.action != "send":
            return _program_page(request, db, caller, patient_id, form, reviewed)
        services.change_program(db, links, patient, caller.user, program_request, now(request))
    except InputError as exc:
        db.rollback()
        return _program_page(request, db, caller, patient_id, form, reviewed, exc)
    return redirect(f"/patients/{patient_id}?notice=programmed")
