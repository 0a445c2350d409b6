"""A patient's page (pump, dates due, program, predicted effect, alarms, visits), the
interrogation report of the last reading, and the interrogate button."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.effect import forecast_effect, patient_fit, screening_days, settled_by_dose
from itb.clinic.errors import ConflictError
from itb.clinic.models import Patient
from itb.pharmacology.fit import PatientFit
from itb.pharmacology.withdrawal import DEFAULT_HORIZON_H as WITHDRAWAL_HORIZON_H
from itb.pharmacology.withdrawal_course import DEFAULT_OUTLOOK_HORIZON_H
from itb.programmer.patient import WITHDRAWAL_SIGNS
from itb.programmer.report import build_report, render_report_html
from itb.therapy import program_from_dict
from itb.units import HOURS_PER_DAY
from itb.web.charts import dose_schedule_svg, effect_forecast_svg
from itb.web.deps import SECURITY_HEADERS, Caller, Db, need, now
from itb.web.pages.common import PatientId, notice_box, redirect, render

router = APIRouter(include_in_schema=False)


def patient_model(db: Session, patient: Patient) -> PatientFit:
    """The patient's own model from the screening trial's hourly MAS (typical if none)."""
    history = services.screening_history(db, patient)
    records = [(visit.started_at, json.loads(visit.details_json)) for visit, _ in history]
    return patient_fit(screening_days(records))


def _charts(summary: dict[str, Any], current: datetime, fit: PatientFit) -> dict[str, Any]:
    """The day's dose schedule and, for a pump that delivers, the predicted effect."""
    charts: dict[str, Any] = {
        "chart": None, "effect_chart": None, "forecast": None, "settled": None
    }  # fmt: skip
    if not (summary["program"] and summary["pump"]):
        return charts
    program = program_from_dict(summary["program"]["program"])
    charts["chart"] = dose_schedule_svg(program)
    if program.mean_daily_dose_ug() > 0.0:
        empty_at = summary["pump"]["empty_at"]
        forecast = forecast_effect(
            program, current, datetime.fromisoformat(empty_at) if empty_at else None, fit=fit
        )
        charts |= {
            "forecast": forecast,
            "effect_chart": effect_forecast_svg(forecast),
            "settled": settled_by_dose(fit, program.mean_daily_dose_ug()),
        }
    return charts


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
    return render(
        request,
        "patient.html",
        caller,
        p=summary,
        withdrawal_signs=WITHDRAWAL_SIGNS,
        withdrawal_horizon_days=WITHDRAWAL_HORIZON_H / HOURS_PER_DAY,
        outlook_horizon_days=DEFAULT_OUTLOOK_HORIZON_H / HOURS_PER_DAY,
        **notice_box(notice),
        **_charts(summary, current, patient_model(db, patient)),
    )


def _style_hashes(html: str) -> str:
    """CSP hashes of the page's own <style> blocks: allow exactly those, nothing else."""
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"
        for css in styles
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
        services.stored_status(reading), services.recent_events(db, pump), now(request)
    )
    html = render_report_html(report)
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "style-src 'self'", f"style-src 'self' {_style_hashes(html)}"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})


@router.post("/patients/{patient_id}/interrogate")
def interrogate(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("interrogate", page=True, form=True),
) -> Response:
    patient = services.get_patient(db, patient_id)
    services.interrogate(db, request.app.state.settings.links, patient, caller.user)
    return redirect(f"/patients/{patient_id}?notice=interrogated")
