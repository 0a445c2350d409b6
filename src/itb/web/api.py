"""The JSON API under /api. A session cookie from POST /api/login; 401 without it."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from itb.clinic import auth, calendar, services
from itb.clinic.audit import verify_chain
from itb.clinic.dose_words import dose_sentence
from itb.clinic.errors import InputError
from itb.clinic.models import Role, User
from itb.clinic.services.screening import NOTES_MAX_CHARS
from itb.drugs import BACLOFEN
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.programmer.screening import ALLOWED_DOSES_UG, CLINIC_LAST_HOUR, MIN_SCORES_AFTER_BOLUS
from itb.pump.hardware import (
    CATHETER_LENGTH_CM,
    CATHETER_MAX_TRIM_CM,
    CATHETER_VOLUME_ML_PER_CM,
    MODELS,
)
from itb.web.api_types import DbId, Flag, Number, WholeNumber
from itb.web.deps import Caller, Db, client_address, need, now, session_cookie_name, set_cookie

router = APIRouter(prefix="/api", tags=["api"])

DB_ID_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="patient id")]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(
        min_length=1, max_length=auth.USERNAME_MAX_CHARS, pattern=auth.USERNAME_PATTERN
    )
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    username: str
    role: Role
    csrf_token: str


class PatientRow(BaseModel):
    id: int
    name: str
    mrn: str
    clinician: str | None
    serial: str | None
    model: str | None
    reservoir_ml: float | None
    days_to_low_reservoir: float | None
    days_to_empty: float | None
    days_to_stability_limit: float | None
    days_to_eri: float | None
    days_to_eos: float | None
    next_due_at: str | None
    next_refill_at: str | None
    days_to_next_refill: float | None
    harm: str | None = Field(
        None,
        description="what hurts the patient first without care: reservoir_empty, battery_eos, "
        "drug_expired, not_delivering or family_report (the rows are ranked by days_to_harm)",
    )
    harm_words: str | None = None
    harm_at: str | None = None
    days_to_harm: float | None = None
    refill_after_eos: bool = Field(
        False, description="the next refill is due at or after EOS: replace the pump first"
    )
    flagged_refill: bool = Field(
        False, description="a refill's withdrawn volume was flagged and awaits a physician's review"
    )


class RefillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    withdrawn_ml: Number = Field(description="residual drug withdrawn, mL")
    filled_ml: Number = Field(description="new reservoir volume, mL")
    concentration_ug_per_ml: Number
    acknowledge_discrepancy: Flag = Field(
        False,
        description="required (true) when the withdrawn volume is flagged: possible pump, "
        "catheter or pocket-fill problem (S28, the pump's accuracy band)",
    )
    discrepancy_note: str = Field(
        "", max_length=services.REASON_MAX_CHARS, description="free text, kept in the visit"
    )
    confirm_concentration_change: Flag = Field(
        False,
        description="a concentration other than the pump's is a concentration change "
        "(physicians only): required (true) once the bridge plan was shown; the refill then "
        "sends the bridge bolus and the program at the new concentration",
    )


MasScore = Number
_TRIAL_DOSES = ", ".join(f"{d:g}" for d in ALLOWED_DOSES_UG[:-1]) + f" or {ALLOWED_DOSES_UG[-1]:g}"


class ScreeningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dose_ug: Number = Field(description=f"trial bolus: {_TRIAL_DOSES} µg")
    scores: dict[int, MasScore] = Field(
        description="Modified Ashworth (0 to 5, 1+ coded 2) by whole hour after the bolus: "
        f"0 = baseline (required) and at least {MIN_SCORES_AFTER_BOLUS} of hours 1 to "
        f"{CLINIC_LAST_HOUR}",
        examples=[{"0": 3, "1": 3, "2": 2, "3": 2, "4": 1, "5": 1, "6": 2, "7": 2, "8": 3}],
    )
    given_at: datetime | None = Field(
        None, description="when the bolus was given (default: the last score was just taken)"
    )
    notes: str = Field("", max_length=NOTES_MAX_CHARS)


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    mrn: str = Field(min_length=1, max_length=32, description="medical record number, unique")
    birth_date: date | None = Field(None, description="date of birth (or age_years)")
    age_years: WholeNumber | None = Field(None, description="age in years when the date is unknown")
    origin: str = Field(
        description="origin of spasticity: spinal, cerebral or unknown (the strictest change "
        "limits of every origin then apply)"
    )
    clinician_id: DbId | None = Field(
        None, description="the responsible physician's user id (default: you)"
    )


class ImplantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description=f"pump model: {', '.join(MODELS)}")
    serial: str = Field(min_length=1, max_length=32, description="the pump's serial, unique")
    implanted_at: datetime | None = Field(None, description="default: now")
    catheter_trimmed_cm: Number = Field(
        description=f"cm cut off the {CATHETER_LENGTH_CM:g} cm catheter, 0 to "
        f"{CATHETER_MAX_TRIM_CM:g} (S31): implanted volume = ({CATHETER_LENGTH_CM:g} − "
        f"catheter_trimmed_cm) × {CATHETER_VOLUME_ML_PER_CM:g} mL",
    )
    concentration_ug_per_ml: Number = Field(
        description=", ".join(f"{c:g}" for c in BACLOFEN.concentrations_ug_per_ml),
    )
    filled_ml: Number = Field(description="first fill, at most the reservoir")
    program: dict[str, Any] = Field(
        description="the scenario's [program] keys: rate_ug_per_day, steps or week",
        examples=[{"rate_ug_per_day": 600.0}],
    )
    low_reservoir_alarm_ml: Number = DEFAULT_LOW_RESERVOIR_ALARM_ML
    confirm: Flag = False
    reason: str = Field("", max_length=services.REASON_MAX_CHARS)


class ReplacementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="the new pump's model")
    serial: str = Field(min_length=1, max_length=32, description="the new pump's serial")
    replaced_at: datetime | None = Field(None, description="default: now")
    filled_ml: Number = Field(description="the new pump's fill, mL")
    concentration_ug_per_ml: Number | None = Field(None, description="default: the old pump's")
    program: dict[str, Any] | None = Field(None, description="default: the old pump's program")
    low_reservoir_alarm_ml: Number | None = None
    confirm: Flag = False
    reason: str = Field("", max_length=services.REASON_MAX_CHARS)


def _local(when: datetime | None, field: str) -> datetime | None:
    """The clinic's clock is naive local time."""
    if when is not None and when.tzinfo is not None:
        try:
            return when.astimezone().replace(tzinfo=None)
        except OverflowError:
            raise InputError(
                field, f"{field}: a date and time the clinic's clock can hold"
            ) from None
    return when


def _implant_answer(result: services.ImplantResult, at: datetime) -> dict[str, Any]:
    return {
        "patient_id": result.patient.id,
        "visit_id": result.visit.id,
        "serial": result.pump.serial,
        "catheter_length_cm": result.catheter_length_cm,
        "catheter_volume_ml": result.catheter_volume_ml,
        "priming": result.priming,
        "review": result.review.to_dict(),
        "pump": services.pump_dict(result.pump, at),
    }


PROGRAM_EXAMPLE: dict[str, Any] = {"rate_ug_per_day": 300.0}
PROGRAM_CONFIRMED_EXAMPLE: dict[str, Any] = {
    "rate_ug_per_day": 600.0,
    "confirm": True,
    "reason": "spasticity uncontrolled at 400 µg/day; reviewed with the patient",
    "review_token": "0" * 64,
}


@router.post("/login", response_model=Me)
def login(body: LoginIn, request: Request, response: Response, db: Db) -> Me:
    user = auth.authenticate(db, body.username, body.password, client_address(request))
    token, web_session = auth.start_session(db, user)
    max_age_s = int(auth.SESSION_LIFETIME.total_seconds())
    set_cookie(request, response, session_cookie_name(request), token, max_age_s)
    return Me(username=user.username, role=Role(user.role), csrf_token=web_session.csrf_token)


@router.post("/logout", status_code=204)
def logout(
    request: Request, db: Db, caller: Caller = need("view", one_time_password=True)
) -> Response:
    auth.end_session(db, caller.web_session)
    response = Response(status_code=204)
    response.delete_cookie(session_cookie_name(request), path="/")
    return response


@router.get("/me", response_model=Me)
def me(caller: Caller = need("view")) -> Me:
    user: User = caller.user
    return Me(
        username=user.username, role=Role(user.role), csrf_token=caller.web_session.csrf_token
    )


@router.get("/patients", response_model=list[PatientRow])
def patients(
    request: Request,
    db: Db,
    clinician_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0, le=DB_ID_MAX)] = 0,
    caller: Caller = need("view"),
) -> Response:
    """The dashboard's rows, most urgent first."""
    rows, total = services.dashboard(db, now(request), clinician_id, limit, offset)
    # straight to JSON: the rows are already plain, and 10,000 of them cost a lot to re-validate
    return JSONResponse([r.to_dict() for r in rows], headers={"X-Total-Count": str(total)})


@router.post("/patients", status_code=201)
def create_patient(
    body: PatientIn, request: Request, db: Db, caller: Caller = need("manage_patients")
) -> dict[str, Any]:
    """A new patient (physicians). 422 naming the field: a used MRN, an unknown origin, a date
    of birth in the future, an age outside 0 to 120 years, a clinician who is not a physician."""
    data = services.PatientInput(
        body.name, body.mrn, body.origin, body.birth_date, body.age_years, body.clinician_id
    )
    patient = services.create_patient(db, caller.user, data, now(request))
    return {"id": patient.id, **services.patient_snapshot(patient)}


@router.post("/patients/{patient_id}/implant", status_code=201)
def implant(
    patient_id: PatientId,
    body: ImplantIn,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients"),
) -> dict[str, Any]:
    """Record an implant (physicians): pump, catheter, first fill and program (program
    version 1, checked as a program change). Answers the implanted catheter volume (S31) and
    the priming bolus (itb.programmer.priming). 409 when the patient already has a pump."""
    patient = services.get_patient(db, patient_id)
    data = _pump_input(body, _local(body.implanted_at, "implanted_at"))
    links = request.app.state.settings.links
    at = now(request)
    result = services.record_implant(
        db, links, patient, caller.user, data, body.catheter_trimmed_cm, at
    )
    return _implant_answer(result, at)


def _pump_input(body: ImplantIn | ReplacementIn, at: datetime | None) -> services.PumpInput:
    return services.PumpInput(
        model=body.model,
        serial=body.serial,
        filled_ml=body.filled_ml,
        concentration_ug_per_ml=body.concentration_ug_per_ml,
        program=body.program,
        low_reservoir_alarm_ml=body.low_reservoir_alarm_ml,
        at=at,
        confirm=body.confirm,
        reason=body.reason,
    )


@router.post("/patients/{patient_id}/replacement", status_code=201)
def replacement(
    patient_id: PatientId,
    body: ReplacementIn,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients"),
) -> dict[str, Any]:
    """Record a pump replacement (physicians; S3 S4 S21): the old pump is retired, the catheter
    stays; concentration, program and alarm threshold carry over unless given."""
    patient = services.get_patient(db, patient_id)
    data = _pump_input(body, _local(body.replaced_at, "replaced_at"))
    links = request.app.state.settings.links
    at = now(request)
    result = services.record_replacement(db, links, patient, caller.user, data, at)
    return _implant_answer(result, at)


@router.get("/patients/{patient_id}")
def patient(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("view")
) -> dict[str, Any]:
    return services.patient_summary(db, services.get_patient(db, patient_id), now(request))


@router.post("/patients/{patient_id}/interrogate")
def interrogate(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("interrogate")
) -> dict[str, Any]:
    patient = services.get_patient(db, patient_id)
    reading = services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return {"at": reading.at.isoformat(), "status": json.loads(reading.status_json)}


@router.post("/patients/{patient_id}/program/review")
def program_review(
    patient_id: PatientId,
    request: Request,
    db: Db,
    body: Annotated[dict[str, Any], Body(examples=[PROGRAM_EXAMPLE])],
    caller: Caller = need("program"),
) -> dict[str, Any]:
    """Old and new side by side with every check's verdict and reason; nothing is sent.

    The answer carries ``review_token`` (the pump's serial, its current program and the
    normalized new program): the send must carry it back with the same program."""
    patient = services.get_patient(db, patient_id)
    pump = services.active_pump(db, patient)
    program_request = services.parse_program_request(body)
    reviewed = services.review_program_change(db, patient, pump, program_request, now(request))
    return {**reviewed.to_dict(), "confirmation": dose_sentence(reviewed.review)}


@router.post("/patients/{patient_id}/program")
def program(
    patient_id: PatientId,
    request: Request,
    db: Db,
    body: Annotated[dict[str, Any], Body(examples=[PROGRAM_EXAMPLE, PROGRAM_CONFIRMED_EXAMPLE])],
    caller: Caller = need("program"),
) -> dict[str, Any]:
    """A new program, with the scenario's [program] keys (rate_ug_per_day, steps or week).

    The programmer's checks run first (docs/refill.md, "Programming checks"): a refusal is 422
    naming the field; a change that needs confirmation is 422 on ``confirm`` until the body
    carries ``confirm: true`` and a ``reason``. Optional ``phase``: titration or maintenance.
    Required ``review_token``: the one answered by ``/program/review`` for this very program;
    a program edited since (or a pump whose program changed since) is 422 on ``review_token``,
    nothing sent: review again. The answer's ``confirmation`` says the dose in words and units.
    """
    patient = services.get_patient(db, patient_id)
    version, review = services.change_program(
        db, request.app.state.settings.links, patient, caller.user, body, now(request)
    )
    return {
        "version": version.version,
        "program": json.loads(version.program_json),
        "daily_dose_ug": version.daily_dose_ug,
        "review": review.to_dict(),
        "confirmation": dose_sentence(review),
    }


@router.post("/patients/{patient_id}/refill")
def refill(
    patient_id: PatientId,
    body: RefillIn,
    request: Request,
    db: Db,
    caller: Caller = need("refill"),
) -> dict[str, Any]:
    """Interrogate, check the withdrawn volume, refill. A flagged withdrawn volume is 422 on
    ``acknowledge_discrepancy`` (with the reasons) until the body carries it; nothing is sent.

    A concentration other than the pump's is a concentration change: a nurse's is 422 on
    ``concentration_ug_per_ml``; a physician's is 422 on ``confirm_concentration_change``
    (the dose without a bridge and during it) until confirmed, then the refill, the bridge
    bolus and the program at the new concentration go out together."""
    patient = services.get_patient(db, patient_id)
    values = services.RefillInput(
        body.withdrawn_ml,
        body.filled_ml,
        body.concentration_ug_per_ml,
        acknowledge_discrepancy=body.acknowledge_discrepancy,
        discrepancy_note=body.discrepancy_note,
        confirm_concentration_change=body.confirm_concentration_change,
    )
    record = services.refill(
        db,
        request.app.state.settings.links,
        patient,
        caller.user,
        values,
        now(request),
    )
    return services.refill_summary(db, record, now(request))


@router.post("/patients/{patient_id}/screening")
def screening(
    patient_id: PatientId,
    body: ScreeningIn,
    request: Request,
    db: Db,
    caller: Caller = need("record"),
) -> dict[str, Any]:
    """One trial bolus with its hourly scores: stored with the visit, answered with the model
    comparison, the classification and the decision (itb.programmer.screening)."""
    patient = services.get_patient(db, patient_id)
    given_at = body.given_at
    if given_at is not None and given_at.tzinfo is not None:
        given_at = given_at.astimezone().replace(tzinfo=None)  # the clinic's clock: naive local
    dose = services.ScreeningDose(body.dose_ug, body.scores, given_at, body.notes)
    visit, assessment = services.record_screening_dose(db, patient, caller.user, dose, now(request))
    return {**services.visit_dict(visit), "assessment": assessment.to_dict()}


@router.get("/patients/{patient_id}/visits")
def visits(patient_id: PatientId, db: Db, caller: Caller = need("view")) -> list[dict[str, Any]]:
    patient = services.get_patient(db, patient_id)
    return [services.visit_dict(v) for v in services.visits(db, patient)]


@router.get("/calendar.ics", response_class=PlainTextResponse)
def calendar_ics(
    request: Request,
    db: Db,
    clinician_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    patient_label: Annotated[
        calendar.PatientLabel,
        Query(
            description="how events name the patient: mrn (default) or initials; full_name "
            "only when asked, as calendars sync to third parties"
        ),
    ] = calendar.PatientLabel.MRN,
    caller: Caller = need("view"),
) -> Response:
    """Upcoming refills and replacements (RFC 5545), for one clinician or everyone; patients
    named by MRN unless ``patient_label`` asks otherwise."""
    text = calendar.calendar_ics(db, now(request), clinician_id, patient_label)
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="openitb.ics"'},
    )


@router.get("/audit/verify")
def audit_verify(db: Db, caller: Caller = need("view_audit")) -> dict[str, Any]:
    report = verify_chain(db)
    return {
        "entries": report.entries,
        "intact": report.intact,
        "first_broken_id": report.first_broken_id,
    }
