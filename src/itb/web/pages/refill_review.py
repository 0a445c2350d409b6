"""A patient's flagged refills awaiting review; a physician reviews one (audited), and its
mark leaves the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from itb.clinic import services
from itb.clinic.services.refill_review import review_flagged_refill, unreviewed_flagged
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import DB_ID_MAX, PatientId, redirect, render
from itb.web.pages.forms import PageForm, Text

router = APIRouter(include_in_schema=False)

RecordId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


class ReviewForm(PageForm):
    note: Text = ""


@router.get("/patients/{patient_id}/flagged-refills")
def flagged_refills(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    return render(
        request,
        "refill_review.html",
        caller,
        patient=patient,
        flagged=unreviewed_flagged(db, patient),
    )


@router.post("/patients/{patient_id}/flagged-refills/{record_id}/review")
def review(
    patient_id: PatientId,
    record_id: RecordId,
    request: Request,
    db: Db,
    form: Annotated[ReviewForm, Form()],
    caller: Caller = need("review_refill", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    review_flagged_refill(db, caller.user, patient, record_id, form.note, now(request))
    return redirect(f"/patients/{patient_id}?notice=refill_reviewed")
