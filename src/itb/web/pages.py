"""The server-rendered pages: log-in, dashboard, patient, interrogate, program, refill wizard,
screening trial entry, reports. Forms post back with the session's CSRF token."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from itb.clinic import auth, services
from itb.clinic.effect import forecast_effect
from itb.clinic.errors import ConflictError, InputError
from itb.clinic.models import Patient, Pump, RefillRecord, Role, User
from itb.drugs import BACLOFEN
from itb.guardrails import DAILY_DOSE
from itb.programmer.patient import WITHDRAWAL_SIGNS
from itb.programmer.priming import CATHETER_LENGTH_CM, CATHETER_VOLUME_ML_PER_CM
from itb.programmer.programming import CHANGE_LIMITS, Phase, ProgramReview
from itb.programmer.refill import DEFAULT_SAFETY_MARGIN_DAYS, pocket_fill_tolerance_ml
from itb.programmer.report import build_report, render_report_html
from itb.programmer.screening import (
    ALLOWED_DOSES_UG,
    CLINIC_LAST_HOUR,
    MIN_INTERVAL_H,
    MIN_SCORES_AFTER_BOLUS,
    ResponseRule,
)
from itb.pump.hardware import DEFAULT_MODEL, MODELS, pump_model
from itb.therapy import program_from_dict
from itb.web.charts import dose_schedule_svg, effect_forecast_svg, screening_svg
from itb.web.deps import (
    LOGIN_CSRF_COOKIE,
    SECURITY_HEADERS,
    Caller,
    Db,
    need,
    now,
    session_cookie_name,
    set_cookie,
)

router = APIRouter(include_in_schema=False)

PAGE_ROWS = 100
DB_ID_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
FormText = Annotated[str, Form(max_length=4000)]
NOTICES = {
    "refilled": "Refill completed and recorded.",
    "refilled_flagged": "Refill recorded. The withdrawn volume was flagged: see the visit below "
    "(possible pocket fill, catheter or pump problem).",
    "programmed": "New program sent to the pump and recorded.",
    "interrogated": "Pump interrogated.",
    "screening": "Screening dose recorded: result and decision below.",
    "created": "Patient created. Record the implant when the pump is in.",
    "implanted": "Implant recorded: pump, catheter, first fill and program version 1.",
    "replaced": "Pump replacement recorded: the old pump is retired, the catheter kept.",
}


def render(
    request: Request, name: str, caller: Caller | None, status: int = 200, **context: Any
) -> HTMLResponse:
    templates = request.app.state.templates
    user = caller.user if caller else None
    context |= {
        "user": user,
        "csrf_token": caller.web_session.csrf_token if caller else "",
        "can": (lambda action: auth.authorize(user.role, action)) if user else (lambda a: False),
        "now": now(request),
    }
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", None, status, status_code=status, message=message)


def _number(form_value: str, field: str, unit: str) -> float:
    try:
        value = float(form_value)
    except ValueError:
        raise InputError(field, f"{field}: enter a number in {unit}") from None
    if not math.isfinite(value):
        raise InputError(field, f"{field}: enter a finite number in {unit}")
    return value


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# Log in / out ----------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, error: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token, error=error[:200])
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 600)
    return response


@router.post("/login")
def login(
    request: Request,
    db: Db,
    username: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _redirect("/login?error=Your+log-in+form+expired%3B+try+again")
    client = request.client.host if request.client else "unknown"
    try:
        user = auth.authenticate(db, username[:64], password, client)
    except auth.TooManyAttemptsError as exc:
        return render(request, "login.html", None, 429, login_csrf=expected, error=str(exc))
    except auth.AuthError as exc:
        return render(request, "login.html", None, 401, login_csrf=expected, error=str(exc))
    token, _ = auth.start_session(db, user)
    response = _redirect("/")
    set_cookie(
        request,
        response,
        session_cookie_name(request),
        token,
        int(auth.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request, db: Db, caller: Caller = need("view", page=True, form=True)
) -> Response:
    auth.end_session(db, caller.web_session)
    response = _redirect("/login")
    response.delete_cookie(session_cookie_name(request), path="/")
    return response


# Dashboard -------------------------------------------------------------------------------------
@router.get("/")
def dashboard(
    request: Request,
    db: Db,
    clinician_id: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    rows, total = services.dashboard(
        db, now(request), clinician_id, PAGE_ROWS, (page - 1) * PAGE_ROWS
    )
    clinicians = db.execute(
        select(User).where(User.role == Role.PHYSICIAN.value).order_by(User.username)
    ).scalars()
    return render(
        request,
        "dashboard.html",
        caller,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_ROWS)),
        clinicians=list(clinicians),
        clinician_id=clinician_id,
        refill_margin_days=DEFAULT_SAFETY_MARGIN_DAYS,
    )


# New patient, implant, replacement (physicians) -----------------------------------------------
def _physicians(db: Db) -> list[User]:
    return list(
        db.execute(
            select(User)
            .where(User.role == Role.PHYSICIAN.value, User.active)
            .order_by(User.username)
        ).scalars()
    )


def _patient_new_page(
    request: Request, db: Db, caller: Caller, values: dict[str, str], error: InputError | None
) -> HTMLResponse:
    return render(
        request,
        "patient_new.html",
        caller,
        422 if error else 200,
        values=values,
        error=error,
        origins=services.ORIGINS,
        clinicians=_physicians(db),
    )


@router.get("/patients/new")
def patient_new_form(
    request: Request, db: Db, caller: Caller = need("manage_patients", page=True)
) -> HTMLResponse:
    return _patient_new_page(request, db, caller, {}, None)


@router.post("/patients/new")
def patient_new_submit(
    request: Request,
    db: Db,
    name: FormText = "",
    mrn: FormText = "",
    birth_date: FormText = "",
    age_years: FormText = "",
    origin: FormText = "",
    clinician_id: FormText = "",
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    values = {"name": name, "mrn": mrn, "birth_date": birth_date, "age_years": age_years,
              "origin": origin, "clinician_id": clinician_id}  # fmt: skip
    try:
        birth = None
        if birth_date.strip():
            try:
                birth = date.fromisoformat(birth_date.strip())
            except ValueError:
                raise InputError("birth_date", "birth_date: enter a date (YYYY-MM-DD)") from None
        age = None
        if age_years.strip():
            if not age_years.strip().isdigit() or len(age_years.strip()) > 3:
                raise InputError("age_years", "age_years: whole years, 0 to 120")
            age = int(age_years.strip())
        if birth is None and age is None:
            raise InputError("birth_date", "birth_date: enter the date of birth or the age")
        clinician = int(clinician_id) if clinician_id.strip().isdigit() else None
        patient = services.create_patient(
            db,
            caller.user,
            services.PatientInput(name, mrn, origin, birth, age, clinician),
            now(request),
        )
    except InputError as exc:
        db.rollback()
        return _patient_new_page(request, db, caller, values, exc)
    return _redirect(f"/patients/{patient.id}?notice=created")


# Patient ---------------------------------------------------------------------------------------
@router.get("/patients/{patient_id}")
def patient_page(
    patient_id: PatientId,
    request: Request,
    db: Db,
    notice: str = "",
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    current = now(request)
    summary = services.patient_summary(db, patient, current)
    chart = effect_chart = forecast = None
    if summary["program"] and summary["pump"]:
        program = program_from_dict(summary["program"]["program"])
        chart = dose_schedule_svg(program)
        empty_at = summary["pump"]["empty_at"]
        if program.mean_daily_dose_ug() > 0.0:
            forecast = forecast_effect(
                program, current, datetime.fromisoformat(empty_at) if empty_at else None
            )
            effect_chart = effect_forecast_svg(forecast)
    return render(
        request,
        "patient.html",
        caller,
        p=summary,
        chart=chart,
        effect_chart=effect_chart,
        forecast=forecast,
        withdrawal_signs=WITHDRAWAL_SIGNS,
        notice=NOTICES.get(notice, ""),
    )


@router.get("/patients/{patient_id}/report")
def report_page(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> Response:
    """The programmer's interrogation report (itb.programmer.report) for the last reading."""
    patient = services.get_patient(db, patient_id)
    pump = services.active_pump(db, patient)
    reading = services.last_interrogation(db, pump)
    if reading is None:
        raise ConflictError(f"pump {pump.serial} has not been interrogated yet")
    report = build_report(
        json.loads(reading.status_json), services.recent_events(db, pump), now(request)
    )
    html = render_report_html(report)
    # the report carries its own <style> block: allow exactly that one (CSP hash), nothing else
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"
        for css in styles
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
                "style-src 'self'", f"style-src 'self' {hashes}"
            )
        },
    )


@router.post("/patients/{patient_id}/interrogate")
def interrogate(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return _redirect(f"/patients/{patient_id}?notice=interrogated")


PUMP_FORM_KEYS = ("model", "serial", "at", "catheter_trimmed_cm", "concentration_ug_per_ml",
                  "filled_ml", "rate_ug_per_day", "steps", "low_reservoir_alarm_ml", "confirm",
                  "reason")  # fmt: skip


def _pump_input(values: dict[str, str], replacement: bool) -> services.PumpInput:
    """The implant or replacement form as a PumpInput (blank = carried over, replacement)."""
    date_field = "replaced_at" if replacement else "implanted_at"
    at = None
    if values["at"].strip():
        try:
            at = datetime.fromisoformat(values["at"].strip())
        except ValueError:
            raise InputError(date_field, f"{date_field}: enter a date and time") from None
        if at.tzinfo is not None:
            raise InputError(date_field, f"{date_field}: the clinic's local time, no time zone")

    def optional(key: str, unit: str) -> float | None:
        return _number(values[key], key, unit) if values[key].strip() else None

    program = None
    if values["rate_ug_per_day"].strip() or values["steps"].strip():
        program = _program_from_form(values["rate_ug_per_day"], values["steps"])
    elif not replacement:
        raise InputError("rate_ug_per_day", "rate_ug_per_day: enter the first program")
    concentration = optional("concentration_ug_per_ml", "µg/mL")
    if concentration is None and not replacement:
        raise InputError("concentration_ug_per_ml", "concentration_ug_per_ml: choose one")
    return services.PumpInput(
        model=values["model"],
        serial=values["serial"],
        filled_ml=_number(values["filled_ml"], "filled_ml", "mL"),
        concentration_ug_per_ml=concentration,
        program=program,
        low_reservoir_alarm_ml=optional("low_reservoir_alarm_ml", "mL"),
        at=at,
        confirm=values["confirm"] == "yes",
        reason=values["reason"].strip()[: services.REASON_MAX_CHARS],
    )


def _pump_page(
    request: Request,
    db: Db,
    caller: Caller,
    patient_id: int,
    kind: str,
    values: dict[str, str],
    error: InputError | None,
    preview: dict[str, Any] | None = None,
    review: ProgramReview | None = None,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    summary = services.patient_summary(db, patient, now(request))
    if kind == "implant" and summary["pump"]:
        raise ConflictError(f"patient {patient_id} already has a pump: record a replacement")
    if kind == "replacement" and not summary["pump"]:
        raise ConflictError(f"patient {patient_id} has no pump to replace: record an implant")
    return render(
        request,
        f"{kind}.html",
        caller,
        422 if error else 200,
        p=summary,
        values=values,
        error=error,
        preview=preview,
        review=review,
        models=MODELS,
        concentrations=BACLOFEN.concentrations_ug_per_ml,
        catheter_length_cm=CATHETER_LENGTH_CM,
        catheter_ml_per_cm=CATHETER_VOLUME_ML_PER_CM,
        dose_limit=DAILY_DOSE,
    )


@router.get("/patients/{patient_id}/implant")
def implant_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients", page=True),
) -> HTMLResponse:
    values = {"model": DEFAULT_MODEL, "low_reservoir_alarm_ml": "2"}
    return _pump_page(request, db, caller, patient_id, "implant", values, None)


@router.post("/patients/{patient_id}/implant")
def implant_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    model: FormText = "",
    serial: FormText = "",
    at: FormText = "",
    catheter_trimmed_cm: FormText = "",
    concentration_ug_per_ml: FormText = "",
    filled_ml: FormText = "",
    rate_ug_per_day: FormText = "",
    steps: FormText = "",
    low_reservoir_alarm_ml: FormText = "",
    confirm: FormText = "",
    reason: FormText = "",
    action: FormText = "review",
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    """``action=review`` shows the implanted catheter volume (S31), the priming bolus and the
    program's checks; ``action=save`` records the implant."""
    values = dict(zip(PUMP_FORM_KEYS, (model, serial, at, catheter_trimmed_cm,
                  concentration_ug_per_ml, filled_ml, rate_ug_per_day, steps,
                  low_reservoir_alarm_ml, confirm, reason), strict=True))  # fmt: skip
    patient = services.get_patient(db, patient_id)
    links = request.app.state.settings.links
    preview = review = None
    try:
        trimmed = _number(catheter_trimmed_cm, "catheter_trimmed_cm", "cm")
        concentration = _number(concentration_ug_per_ml, "concentration_ug_per_ml", "µg/mL")
        preview = services.catheter_preview(model, trimmed, concentration)
        data = _pump_input(values, replacement=False)
        if action != "save":
            review = services.preview_implant(db, links, patient, data, trimmed, now(request))
            return _pump_page(
                request, db, caller, patient_id, "implant", values, None, preview, review
            )
        services.record_implant(db, links, patient, caller.user, data, trimmed, now(request))
    except InputError as exc:
        db.rollback()
        return _pump_page(request, db, caller, patient_id, "implant", values, exc, preview)
    return _redirect(f"/patients/{patient_id}?notice=implanted")


@router.get("/patients/{patient_id}/replacement")
def replacement_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_patients", page=True),
) -> HTMLResponse:
    return _pump_page(request, db, caller, patient_id, "replacement", {}, None)


@router.post("/patients/{patient_id}/replacement")
def replacement_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    model: FormText = "",
    serial: FormText = "",
    at: FormText = "",
    concentration_ug_per_ml: FormText = "",
    filled_ml: FormText = "",
    rate_ug_per_day: FormText = "",
    steps: FormText = "",
    low_reservoir_alarm_ml: FormText = "",
    confirm: FormText = "",
    reason: FormText = "",
    caller: Caller = need("manage_patients", page=True, form=True),
) -> Response:
    """Blank concentration, program or alarm threshold: carried over from the old pump."""
    values = dict(zip(PUMP_FORM_KEYS, (model, serial, at, "", concentration_ug_per_ml,
                  filled_ml, rate_ug_per_day, steps, low_reservoir_alarm_ml, confirm, reason),
                  strict=True))  # fmt: skip
    patient = services.get_patient(db, patient_id)
    try:
        services.record_replacement(
            db,
            request.app.state.settings.links,
            patient,
            caller.user,
            _pump_input(values, replacement=True),
            now(request),
        )
    except InputError as exc:
        db.rollback()
        return _pump_page(request, db, caller, patient_id, "replacement", values, exc)
    return _redirect(f"/patients/{patient_id}?notice=replaced")


# Program ---------------------------------------------------------------------------------------
@router.get("/patients/{patient_id}/program")
def program_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("program", page=True),
) -> HTMLResponse:
    return _program_page(request, db, caller, patient_id, {}, None, None)


def _program_page(
    request: Request,
    db: Db,
    caller: Caller,
    patient_id: int,
    values: dict[str, str],
    review: ProgramReview | None,
    error: InputError | None,
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
        values=values,
        review=review,
        error=error,
        default_phase=services.default_phase(pump).value,
        origin=services.patient_origin(patient).value,
        limits={f"{o.value} {ph.value}": lim for (o, ph), lim in CHANGE_LIMITS.items()},
        dose_limit=DAILY_DOSE,
    )


def _program_from_form(rate: str, steps: str) -> dict[str, Any]:
    if steps.strip():
        parsed = []
        for i, line in enumerate(steps.strip().splitlines()):
            parts = line.split()
            if len(parts) != 2:
                raise InputError(
                    f"steps[{i}]", f"steps line {i + 1}: expected 'HH:MM rate_ug_per_h'"
                )
            parsed.append(
                {"start": parts[0], "rate_ug_per_h": _number(parts[1], f"steps[{i}]", "µg/h")}
            )
        return {"steps": parsed}
    return {"rate_ug_per_day": _number(rate, "rate_ug_per_day", "µg/day")}


@router.post("/patients/{patient_id}/program")
def program_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    rate_ug_per_day: FormText = "",
    steps: FormText = "",
    phase: FormText = "",
    confirm: FormText = "",
    reason: FormText = "",
    action: FormText = "review",
    caller: Caller = need("program", page=True, form=True),
) -> Response:
    """``action=review`` shows old and new with every check; ``action=send`` sends the program
    once nothing refuses it and any warning is confirmed with a reason."""
    patient = services.get_patient(db, patient_id)
    values = {"rate_ug_per_day": rate_ug_per_day, "steps": steps, "phase": phase,
              "confirm": confirm, "reason": reason}  # fmt: skip
    review = None
    try:
        program_request = services.ProgramRequest(
            _program_from_form(rate_ug_per_day, steps),
            confirm == "yes",
            reason.strip()[: services.REASON_MAX_CHARS],
            _phase(phase),
        )
        pump = services.active_pump(db, patient)
        review = services.review_program_change(db, patient, pump, program_request)
        if action != "send":
            return _program_page(request, db, caller, patient_id, values, review, None)
        services.change_program(
            db,
            request.app.state.settings.links,
            patient,
            caller.user,
            program_request,
            now(request),
        )
    except InputError as exc:
        db.rollback()
        return _program_page(request, db, caller, patient_id, values, review, exc)
    return _redirect(f"/patients/{patient_id}?notice=programmed")


def _phase(text: str) -> Phase | None:
    if not text:
        return None
    try:
        return Phase(text)
    except ValueError:
        raise InputError("phase", "phase: allowed titration or maintenance") from None


# Refill wizard ---------------------------------------------------------------------------------
@router.get("/patients/{patient_id}/refill")
def refill_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    step: Annotated[int, Query(ge=1, le=2)] = 1,
    caller: Caller = need("refill", page=True),
) -> HTMLResponse:
    return _refill_page(request, db, caller, patient_id, step, {}, None)


def _refill_page(
    request: Request,
    db: Db,
    caller: Caller,
    patient_id: int,
    step: int,
    values: dict[str, str],
    error: InputError | None,
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    pump = services.active_pump(db, patient)
    summary = services.patient_summary(db, patient, now(request))
    # a flagged withdrawn volume: its reasons, and the box to tick before the refill goes out
    reasons = error.reasons if isinstance(error, services.AcknowledgementRequired) else ()
    return render(
        request,
        "refill.html",
        caller,
        422 if error else 200,
        p=summary,
        step=step,
        values=values,
        error=error,
        discrepancy_reasons=reasons,
        reservoir_capacity_ml=pump_model(pump.model).reservoir_ml,
        pocket_fill_tolerance_ml=pocket_fill_tolerance_ml(pump_model(pump.model)),
        concentrations=BACLOFEN.concentrations_ug_per_ml,
    )


@router.post("/patients/{patient_id}/refill/interrogate")
def refill_interrogate(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("refill", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return _redirect(f"/patients/{patient_id}/refill?step=2")


@router.post("/patients/{patient_id}/refill")
def refill_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    withdrawn_ml: FormText = "",
    filled_ml: FormText = "",
    concentration_ug_per_ml: FormText = "",
    acknowledge_discrepancy: FormText = "",
    discrepancy_note: FormText = "",
    caller: Caller = need("refill", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    raw = {
        "withdrawn_ml": withdrawn_ml,
        "filled_ml": filled_ml,
        "concentration_ug_per_ml": concentration_ug_per_ml,
        "discrepancy_note": discrepancy_note,
    }
    try:
        values = services.RefillInput(
            _number(withdrawn_ml, "withdrawn_ml", "mL"),
            _number(filled_ml, "filled_ml", "mL"),
            _number(concentration_ug_per_ml, "concentration_ug_per_ml", "µg/mL"),
        )
        record = services.refill(
            db,
            request.app.state.settings.links,
            patient,
            caller.user,
            values,
            now(request),
            acknowledge_discrepancy=acknowledge_discrepancy == "yes",
            discrepancy_note=discrepancy_note[: services.REASON_MAX_CHARS],
        )
    except InputError as exc:
        db.rollback()
        return _refill_page(request, db, caller, patient_id, 2, raw, exc)
    notice = "refilled_flagged" if record.discrepancy_flagged else "refilled"
    return _redirect(f"/patients/{patient_id}?notice={notice}")


# Screening trial -------------------------------------------------------------------------------
SCORE_HOURS = tuple(range(CLINIC_LAST_HOUR + 1))  # 0 = baseline, then hourly for 8 h


def _screening_page(
    request: Request,
    db: Db,
    caller: Caller,
    patient: Patient,
    values: dict[str, str],
    error: InputError | None,
    notice: str = "",
) -> HTMLResponse:
    """The entry form, the trial so far and the latest dose's comparison, result and decision
    (all from itb.programmer.screening through the clinic's services)."""
    summary = services.patient_summary(db, patient, now(request))
    history = services.screening_history(db, patient)
    latest = chart = None
    if history:
        visit, _ = history[-1]
        latest = services.screening_assessment(visit, [d for _, d in history[:-1]])
        chart = screening_svg(latest) if latest else None
    return render(
        request,
        "screening.html",
        caller,
        422 if error else 200,
        p=summary,
        error=error,
        values=values,
        hours=SCORE_HOURS,
        doses=ALLOWED_DOSES_UG,
        history=[(v, d, json.loads(v.details_json)) for v, d in history],
        latest=latest,
        chart=chart,
        default_rule=ResponseRule(),
        min_scores=MIN_SCORES_AFTER_BOLUS,
        interval_h=MIN_INTERVAL_H,
        notice=NOTICES.get(notice, ""),
    )


@router.get("/patients/{patient_id}/screening")
def screening_form(
    patient_id: PatientId,
    request: Request,
    db: Db,
    notice: str = "",
    caller: Caller = need("record", page=True),
) -> HTMLResponse:
    patient = services.get_patient(db, patient_id)
    return _screening_page(request, db, caller, patient, {}, None, notice)


@router.post("/patients/{patient_id}/screening")
def screening_submit(
    patient_id: PatientId,
    request: Request,
    db: Db,
    dose_ug: FormText = "",
    mas_0: FormText = "",
    mas_1: FormText = "",
    mas_2: FormText = "",
    mas_3: FormText = "",
    mas_4: FormText = "",
    mas_5: FormText = "",
    mas_6: FormText = "",
    mas_7: FormText = "",
    mas_8: FormText = "",
    given_at: FormText = "",
    notes: FormText = "",
    caller: Caller = need("record", page=True, form=True),
) -> Response:
    """Hourly fields ``mas_0`` (baseline) to ``mas_8``; blank hours are not scored."""
    hourly = (mas_0, mas_1, mas_2, mas_3, mas_4, mas_5, mas_6, mas_7, mas_8)
    values = {f"mas_{h}": v for h, v in zip(SCORE_HOURS, hourly, strict=True)}
    values |= {"dose_ug": dose_ug, "given_at": given_at, "notes": notes}
    patient = services.get_patient(db, patient_id)
    try:
        scores = {
            hour: _number(values[f"mas_{hour}"], f"scores[{hour}]", "MAS points (0 to 5)")
            for hour in SCORE_HOURS
            if values.get(f"mas_{hour}", "").strip()
        }
        bolus_at = None
        if given_at.strip():
            try:
                bolus_at = datetime.fromisoformat(given_at.strip())
            except ValueError:
                raise InputError("given_at", "given_at: enter a date and time") from None
            if bolus_at.tzinfo is not None:
                raise InputError("given_at", "given_at: the clinic's local time, no time zone")
        services.record_screening_dose(
            db,
            patient,
            caller.user,
            _number(dose_ug, "dose_ug", "µg"),
            scores,
            now(request),
            bolus_at,
            notes[:2000],
        )
    except InputError as exc:
        db.rollback()
        return _screening_page(request, db, caller, patient, values, exc)
    return _redirect(f"/patients/{patient_id}/screening?notice=screening")


# Reports ---------------------------------------------------------------------------------------
@router.get("/reports")
def reports(request: Request, db: Db, caller: Caller = need("view", page=True)) -> HTMLResponse:
    current = now(request)

    def due_within(column: Any, days: float) -> int:
        return int(
            db.execute(
                select(func.count())
                .select_from(Pump)
                .where(Pump.active, column < current + timedelta(days=days))
            ).scalar_one()
        )

    flagged = db.execute(
        select(RefillRecord, Patient)
        .join(Pump, Pump.id == RefillRecord.pump_id)
        .join(Patient, Patient.id == Pump.patient_id)
        .where(RefillRecord.discrepancy_flagged)
        .order_by(RefillRecord.at.desc())
        .limit(50)
    ).all()
    clinicians = db.execute(
        select(User).where(User.role == Role.PHYSICIAN.value).order_by(User.username)
    ).scalars()
    counts = {
        "patients": db.execute(select(func.count()).select_from(Patient)).scalar_one(),
        "overdue": due_within(Pump.next_due_at, 0),
        "low_reservoir_7d": due_within(Pump.low_reservoir_at, 7),
        "low_reservoir_30d": due_within(Pump.low_reservoir_at, 30),
        "stability_30d": due_within(Pump.stability_at, 30),
        "eri_180d": due_within(Pump.eri_at, 180),
    }
    return render(
        request,
        "reports.html",
        caller,
        counts=counts,
        flagged=flagged,
        clinicians=list(clinicians),
        json=json,
    )
