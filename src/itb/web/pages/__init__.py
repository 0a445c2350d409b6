"""The server-rendered pages: log-in, dashboard, patient, onboarding, program, refill wizard,
screening trial, reports. Forms post back with the session's CSRF token.

One module per area, each with its own router. :data:`ROUTERS` lists them in the order the
app includes them, and the order matters: ``/patients/new`` (onboarding) must come before
``/patients/{patient_id}`` (patient), which would take "new" for an id and answer 422.
"""

from __future__ import annotations

from fastapi import APIRouter

from itb.web.pages import (
    account,
    admin,
    dashboard,
    follow_up,
    login,
    onboarding,
    patient,
    patient_edit,
    printing,
    programming,
    pump_actions,
    pump_clock,
    refill,
    refill_review,
    screening,
    search,
    sources,
)
from itb.web.pages.common import error_page

__all__ = ["ROUTERS", "error_page"]

ROUTERS: tuple[APIRouter, ...] = tuple(
    area.router
    for area in (
        login,
        dashboard,
        onboarding,  # before patient: /patients/new is not an id
        patient,
        programming,
        refill,
        screening,
        printing,  # printable refill record and report, and their PDFs
        pump_actions,  # bolus, stop/resume, clear alarm
        search,
        patient_edit,
        follow_up,
        refill_review,
        admin,  # accounts, audit log
        account,  # one's own password
        sources,  # the sources behind each "why?" link
        pump_clock,  # read and correct the pump's clock
    )
)
