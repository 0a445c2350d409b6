"""The pump page: a clinician bolus (review, then give), stop with a reason, resume, clear an
alarm, and the alarm tones with their test (a reason, a confirmation). Every rule is the
service's (clinic/services/pump_actions.py) and the programmer's; this module reads the forms
and shows the answers in words.

A bolus follows the program page's rule (H32): the review puts its token in the form; Give
carries it back with the dose and duration; a bolus edited after its review is not sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.family_words import all_alarm_words
from itb.clinic.models import Patient
from itb.clinic.services import pump_actions as actions
from itb.errors import InputError
from itb.guardrails import BOLUS_DOSE, BOLUS_DURATION
from itb.programmer.record_words import tones_words
from itb.pump.alarms import alarm_test_tones
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId, redirect, render
from itb.web.pages.forms import PageForm, Text, number

router = APIRouter(include_in_schema=False)

# ``?done=...`` after a command: what the page says happened.
DONE = {
    "bolus": "Bolus sent to the pump and recorded.",
    "stopped": "Delivery stopped and recorded. Withdrawal begins: watch for its signs.",
    "resumed": "Delivery resumed and recorded.",
    "cleared": "Alarm cleared and recorded.",
    "tested": (
        f"Alarm test sent and recorded: the pump sounded the {tones_words(alarm_test_tones())}. "
        "Ask the patient and family whether they heard each one."
    ),
    "read": "Pump read: mode and alarms as the pump reports them now.",
}
# The form's words for a field an error names (never a Python field name on the page).
FIELD_LABELS = {
    "dose_ug": "Dose",
    "duration_min": "Duration",
    "confirm": "Confirmation",
    "reason": "Reason",
    "review_token": "Review",
    "alarm": "Alarm",
    "kind": "Alarm",  # the pump's own refusal of an alarm it will not clear
    "rolling_24h_dose_ug": "The pump's 24 h maximum",
}


class BolusForm(PageForm):
    dose_ug: Text = ""
    duration_min: Text = ""
    confirm: Text = ""
    reason: Text = ""
    action: Text = "review"  # review: every check; send: to the pump
    review_token: Text = ""

    def values(self) -> dict[str, str]:
        return {k: v for k, v in super().values().items() if k != "review_token"}

    def to_request(self) -> actions.BolusRequest:
        minutes = self.duration_min.strip()
        return actions.BolusRequest(
            number(self.dose_ug, "dose_ug", "µg"),
            number(minutes, "duration_min", "min") if minutes else None,
            self.confirm == "yes",
            self.reason.strip(),
            services.check_review_token(self.review_token),
        )


class ReasonForm(PageForm):
    reason: Text = ""


class AlarmForm(PageForm):
    alarm: Text = ""


def _page(
    request: Request,
    db: Session,
    caller: Caller,
    patient_id: int,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    summary = services.patient_summary(db, patient, now(request))
    pump = services.active_pump(db, patient)
    error: InputError | None = context.pop("error", None)
    return render(
        request,
        "pump_actions.html",
        caller,
        422 if error else status,
        p=summary,
        stopped=actions.is_stopped(pump),
        stop=actions.stop_outlook(db, patient, pump),
        resume=actions.resume_outlook(db, pump),
        clearable=[(k.value, actions.alarm_name(k)) for k in actions.clearable_alarms(db, pump)],
        tones=[(a, actions.alarm_name(a.kind)) for a in all_alarm_words()],
        test_tones=tones_words(alarm_test_tones()),
        reason_max_chars=services.REASON_MAX_CHARS,
        error=error,
        error_label=FIELD_LABELS.get(error.field, "The pump") if error else "",
        error_reason=error.reason if error else "",  # not error_words: page_words has that name
        bolus_limit=BOLUS_DOSE,
        duration_limit=BOLUS_DURATION,
        done=DONE.get(str(request.query_params.get("done", "")), ""),
        **context,
    )


@router.get("/patients/{patient_id}/pump")
def pump_page(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("interrogate", page=True)
) -> HTMLResponse:
    return _page(request, db, caller, patient_id, values={})


@router.post("/patients/{patient_id}/pump/read")
def read_pump(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate", page=True, form=True),
) -> Response:
    """Interrogate, so that the mode and the alarms on the page are the pump's own now."""
    patient = services.get_patient(db, patient_id)
    services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return redirect(f"/patients/{patient_id}/pump?done=read")


@router.post("/patients/{patient_id}/pump/bolus")
def bolus_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[BolusForm, Form()],
    caller: Caller = need("program", page=True, form=True),
) -> Response:
    """``action=review`` shows every check; ``action=send`` gives the reviewed bolus."""
    patient = services.get_patient(db, patient_id)
    reviewed = None
    try:
        bolus = form.to_request()
        pump = services.active_pump(db, patient)
        reviewed = actions.review_clinician_bolus(db, patient, pump, bolus, now(request))
        if form.action == "send":
            links = request.app.state.settings.links
            actions.give_bolus(db, links, patient, caller.user, bolus, now(request))
            return redirect(f"/patients/{patient_id}/pump?done=bolus")
    except InputError as exc:
        db.rollback()
        return _page(
            request, db, caller, patient_id, values=form.values(), reviewed=reviewed, error=exc
        )
    return _page(request, db, caller, patient_id, values=form.values(), reviewed=reviewed)


@router.post("/patients/{patient_id}/pump/stop")
def stop_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ReasonForm, Form()],
    caller: Caller = need("program", page=True, form=True),
) -> Response:
    def act(patient: Patient, links: Any, at: datetime) -> object:
        return actions.stop_pump(db, links, patient, caller.user, form.reason, at)

    return _send(request, db, caller, patient_id, act, "stopped", stop_reason=form.reason)


@router.post("/patients/{patient_id}/pump/resume")
def resume_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("program", page=True, form=True),
) -> Response:
    def act(patient: Patient, links: Any, at: datetime) -> object:
        return actions.resume_pump(db, links, patient, caller.user, at)

    return _send(request, db, caller, patient_id, act, "resumed")


@router.post("/patients/{patient_id}/pump/clear-alarm")
def clear_alarm_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[AlarmForm, Form()],
    caller: Caller = need("interrogate", page=True, form=True),
) -> Response:
    def act(patient: Patient, links: Any, at: datetime) -> object:
        return actions.clear_alarm(db, links, patient, caller.user, form.alarm, at)

    return _send(request, db, caller, patient_id, act, "cleared")


@router.post("/patients/{patient_id}/pump/alarm-test")
def alarm_test_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[ReasonForm, Form()],
    caller: Caller = need("interrogate", page=True, form=True),
) -> Response:
    """The pump sounds each alarm tone once; the reason is required and audited."""

    def act(patient: Patient, links: Any, at: datetime) -> object:
        return actions.alarm_test(db, links, patient, caller.user, form.reason, at)

    return _send(request, db, caller, patient_id, act, "tested", test_reason=form.reason)


def _send(
    request: Request,
    db: Session,
    caller: Caller,
    patient_id: int,
    act: Callable[[Patient, Any, datetime], object],
    done: str,
    **kept: Any,
) -> Response:
    """One pump command from the page: sent, then back to the page saying it is ``done``; a
    refusal shows the page again with the refusal in words and the typed reason ``kept``."""
    patient = services.get_patient(db, patient_id)
    try:
        act(patient, request.app.state.settings.links, now(request))
    except InputError as exc:
        db.rollback()
        return _page(request, db, caller, patient_id, values={}, error=exc, **kept)
    return redirect(f"/patients/{patient_id}/pump?done={done}")
