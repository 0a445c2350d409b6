"""A follow-up visit (physicians and nurses): notes, MAS, side effects, next appointment; the
page lists the patient's earlier follow-ups in words."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.models import Patient
from itb.clinic.services.follow_up import (
    MAS_RULE,
    SIDE_EFFECTS,
    FollowUpInput,
    follow_ups,
    record_follow_up,
)
from itb.errors import InputError
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import PageForm, Text, local_datetime, number
from itb.web.validation import input_error_sentence

router = APIRouter(include_in_schema=False)

# the follow-up's own fields, as the form labels them
FIELD_WORDS = {
    "mas": "MAS score",
    "side_effects": "Side effects",
    "next_appointment_at": "Next appointment",
    "notes": "Notes",
}


class FollowUpForm(PageForm):
    notes: Text = ""
    mas: Text = ""
    side_effects: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=32)
    next_appointment_at: Text = ""

    def to_input(self) -> FollowUpInput:
        mas = number(self.mas, "mas", "MAS points") if self.mas.strip() else None
        return FollowUpInput(
            notes=self.notes,
            mas=mas,
            side_effects=tuple(self.side_effects),
            next_appointment_at=local_datetime(self.next_appointment_at, "next_appointment_at"),
        )


def error_words(error: InputError) -> str:
    if error.field in FIELD_WORDS:
        return f"{FIELD_WORDS[error.field]}: {error.reason}"
    return input_error_sentence(error.field, error.reason, str(error))


def _page(
    request: Request,
    db: Session,
    caller: Caller,
    patient: Patient,
    form: FollowUpForm | None = None,
    error: InputError | None = None,
) -> HTMLResponse:
    return render(
        request,
        "follow_up.html",
        caller,
        422 if error else 200,
        patient=patient,
        values=form.values() if form else {},
        ticked=set(form.side_effects) if form else set(),
        side_effects=SIDE_EFFECTS,
        mas_rule=MAS_RULE,
        earlier=follow_ups(db, patient),
        error=error_words(error) if error else "",
        error_field=error.field if error else "",
    )


@router.get("/patients/{patient_id}/follow-up")
def follow_up_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    """Everyone on the care team sees the follow-ups; physicians and nurses record them."""
    return _page(request, db, caller, services.get_patient(db, patient_id))


@router.post("/patients/{patient_id}/follow-up")
def follow_up_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[FollowUpForm, Form()],
    caller: Caller = need("record", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    try:
        record_follow_up(db, caller.user, patient, form.to_input(), now(request))
    except InputError as exc:
        db.rollback()
        return _page(request, db, caller, services.get_patient(db, patient_id), form, exc)
    return redirect(f"/patients/{patient_id}?notice=followed_up")
