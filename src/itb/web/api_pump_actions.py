"""/api/patients/{id}/bolus, /stop, /resume, /alarms/clear, /alarms/test: the pump page's
commands as JSON.

The rules are the service's (clinic/services/pump_actions.py). A bolus is reviewed first
(``/bolus/review`` answers a ``review_token``) and given with that token; a warning needs
``confirm: true`` and a ``reason``; a stop and an alarm test need a ``reason``. Refusals are 422
naming the field, in words."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from itb.clinic import services
from itb.clinic.services import pump_actions as actions
from itb.programmer.record_words import tones_words
from itb.web.api_types import Flag, Number
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import PatientId

router = APIRouter(prefix="/api", tags=["pump commands"])
REASON = Field("", max_length=services.REASON_MAX_CHARS, description="why, in words")


class BolusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dose_ug: Number = Field(description="the clinician bolus, µg")
    duration_min: Number | None = Field(None, description="minutes; default 1")
    confirm: Flag = False
    reason: str = REASON
    review_token: str | None = Field(None, description="the token /bolus/review answered")


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = REASON


class AlarmTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = REASON


class AlarmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alarm: str = Field(max_length=32, description="an alarm a clinician clears: motor_stall...")


@router.post("/patients/{patient_id}/bolus/review")
def bolus_review(
    patient_id: PatientId, body: BolusIn, request: Request, db: Db, caller: Caller = need("program")
) -> dict[str, Any]:
    """Every check of the bolus (nothing sent) and the ``review_token`` the give must carry."""
    patient = services.get_patient(db, patient_id)
    pump = services.active_pump(db, patient)
    bolus = actions.BolusRequest.parse(body.model_dump())
    return actions.review_clinician_bolus(db, patient, pump, bolus, now(request)).to_dict()


@router.post("/patients/{patient_id}/bolus")
def bolus(
    patient_id: PatientId, body: BolusIn, request: Request, db: Db, caller: Caller = need("program")
) -> dict[str, Any]:
    """Give the reviewed bolus (physicians); answers what was given, in words."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    bolus = actions.BolusRequest.parse(body.model_dump())
    return actions.give_bolus(db, links, patient, caller.user, bolus, now(request)).to_dict()


@router.post("/patients/{patient_id}/stop")
def stop(
    patient_id: PatientId, body: StopIn, request: Request, db: Db, caller: Caller = need("program")
) -> dict[str, Any]:
    """Stop delivery (physicians), with a reason; answers when withdrawal is expected."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    outlook = actions.stop_pump(db, links, patient, caller.user, body.reason, now(request))
    return {
        "stopped": True,
        "daily_dose_ug": outlook.daily_dose_ug,
        "withdrawal_onset_h": outlook.withdrawal_onset_h,
        "words": outlook.words(),
    }


@router.post("/patients/{patient_id}/resume")
def resume(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("program")
) -> dict[str, Any]:
    """Resume delivery (physicians); answers the program and dose that restarted."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    outlook = actions.resume_pump(db, links, patient, caller.user, now(request))
    return {
        "resumed": True,
        "program_version": outlook.version,
        "daily_dose_ug": outlook.daily_dose_ug,
        "words": outlook.words(),
    }


@router.post("/patients/{patient_id}/alarms/clear")
def clear_alarm(
    patient_id: PatientId,
    body: AlarmIn,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate"),
) -> dict[str, Any]:
    """Clear an alarm the pump reports and a clinician may clear (nurses, physicians)."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    kind = actions.clear_alarm(db, links, patient, caller.user, body.alarm, now(request))
    return {"cleared": kind.value}


@router.post("/patients/{patient_id}/alarms/test")
def alarm_test(
    patient_id: PatientId,
    body: AlarmTestIn,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate"),
) -> dict[str, Any]:
    """Sound each alarm tone once, with a reason (nurses, physicians); answers the tones."""
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    tones = actions.alarm_test(db, links, patient, caller.user, body.reason, now(request))
    return {"tones": tones, "words": f"Sounded: {tones_words(tones)}."}
