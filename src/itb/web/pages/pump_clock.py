"""The pump's clock page: read it against the patient's standard time, and correct it (a nurse
or physician; audited, logged by the pump). Every rule is the service's
(clinic/services/pump_clock.py); this module shows its answers in words (issue 11, H77)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.services.pump_clock import ClinicClock, correct_pump_clock, read_pump_clock
from itb.errors import InputError
from itb.programmer.pump_clock import MAX_CLOCK_DRIFT_S
from itb.pump.clock import MAX_CLOCK_CORRECTION_S
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, render

router = APIRouter(include_in_schema=False)


def _clock(request: Request) -> ClinicClock:
    return ClinicClock(now(request), request.app.state.settings.zone)


def _page(
    request: Request, db: Session, caller: Caller, patient_id: int, **context: Any
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    error: InputError | None = context.pop("error", None)
    return render(
        request,
        "pump_clock.html",
        caller,
        422 if error else 200,
        patient=patient,
        pump=services.active_pump(db, patient),
        drift_min=f"{MAX_CLOCK_DRIFT_S / 60:g}",
        correction_min=f"{MAX_CLOCK_CORRECTION_S / 60:g}",
        clock_error=error.reason if error else "",
        **context,
    )


@router.get("/patients/{patient_id}/pump/clock")
def clock_page(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("interrogate", page=True)
) -> HTMLResponse:
    return _page(request, db, caller, patient_id)


@router.post("/patients/{patient_id}/pump/clock/read")
def read_clock(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate", page=True, form=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    check = read_pump_clock(db, links, patient, caller.user, _clock(request))
    return _page(request, db, caller, patient_id, check=check)


@router.post("/patients/{patient_id}/pump/clock/set")
def set_clock(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("set_clock", page=True, form=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    try:
        before, after = correct_pump_clock(db, links, patient, caller.user, _clock(request))
    except InputError as exc:
        db.rollback()
        return _page(request, db, caller, patient_id, error=exc)
    return _page(request, db, caller, patient_id, check=after, corrected=before)
