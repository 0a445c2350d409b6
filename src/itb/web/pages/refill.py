"""The refill wizard: step 1 interrogates the pump, step 2 takes the withdrawn volume, the
new fill and the concentration, and asks to acknowledge a flagged withdrawn volume. Another
concentration than the pump's is a physician's concentration change: the page shows the dose
without a bridge and during it, and sends the bridge and the program once confirmed (H33)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.drugs import BACLOFEN
from itb.errors import InputError
from itb.programmer.refill import pocket_fill_tolerance_ml
from itb.pump.hardware import pump_model
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import RefillForm

router = APIRouter(include_in_schema=False)

ENTRY_STEP = 2  # the step with the volumes, after the interrogation


def _refill_page(
    request: Request,
    db: Session,
    caller: Caller,
    patient_id: int,
    step: int,
    form: RefillForm | None = None,
    error: InputError | None = None,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    model = pump_model(services.active_pump(db, patient).model)
    summary = services.patient_summary(db, patient, now(request))
    # a flagged withdrawn volume: its reasons, and the box to tick before the refill goes out
    reasons = error.reasons if isinstance(error, services.AcknowledgementRequired) else ()
    # a concentration change: the bridge plan, and the box the physician ticks to send it
    bridge = error.plan if isinstance(error, services.ConcentrationChangeRequired) else None
    return render(
        request,
        "refill.html",
        caller,
        422 if error else 200,
        p=summary,
        step=step,
        values=form.values() if form else {},
        error=error,
        discrepancy_reasons=reasons,
        bridge=bridge,
        reservoir_capacity_ml=model.reservoir_ml,
        pocket_fill_tolerance_ml=pocket_fill_tolerance_ml(model),
        concentrations=BACLOFEN.concentrations_ug_per_ml,
    )


@router.get("/patients/{patient_id}/refill")
def refill_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    step: Annotated[int, Query(ge=1, le=ENTRY_STEP)] = 1,
    caller: Caller = need("refill", page=True),
) -> HTMLResponse:
    return _refill_page(request, db, caller, patient_id, step)


@router.post("/patients/{patient_id}/refill/interrogate")
def refill_interrogate(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("refill", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return redirect(f"/patients/{patient_id}/refill?step={ENTRY_STEP}")


@router.post("/patients/{patient_id}/refill")
def refill_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[RefillForm, Form()],
    caller: Caller = need("refill", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    try:
        record = services.refill(
            db,
            request.app.state.settings.links,
            patient,
            caller.user,
            form.to_input(),
            now(request),
        )
    except InputError as exc:
        db.rollback()
        return _refill_page(request, db, caller, patient_id, ENTRY_STEP, form, exc)
    notice = "refilled_flagged" if record.discrepancy_flagged else "refilled"
    return redirect(f"/patients/{patient_id}?notice={notice}")
