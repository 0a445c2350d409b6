"""The server-rendered pages: log-in, dashboard, patient, onboarding, program, refill wizard,
screening trial, reports. Forms post back with the session's CSRF token.

One module per area, each with its own router. :data:`ROUTERS` lists them in the order the
app includes them, and the order matters: ``/patients/new`` (onboarding) must come before
``/patients/{patient_id}`` (patient), which would take "new" for an id and answer 422.
"""

from __future__ import annotations

from fastapi import APIRouter

from itb.web.pages import (  # W3
    account,  # W2: own password
    admin,  # W2: accounts, audit log
    dashboard,
    follow_up,
    login,
    onboarding,
    patient,
    patient_edit,
    printing,  # W5: printable refill record and report
    programming,
    pump_actions,  # W4: bolus, stop/resume, clear alarm
    pump_clock,  # W6: read and correct the pump's clock
    refill,
    refill_review,
    screening,
    search,
    sources,  # W1: the sources behind each "why?" link
)
from itb.web.pages.common import error_page

__all__ = ["ROUTERS", "error_page"]

ROUTERS: tuple[APIRouter, ...] = tuple(
    area.router for area in (login, dashboard, onboarding, patient, programming, refill, screening)
)
ROUTERS += (printing.router,)
ROUTERS += (pump_actions.router,)
ROUTERS += (search.router, patient_edit.router, follow_up.router, refill_review.router)  # W3
ROUTERS += (admin.router, account.router)  # W2
ROUTERS += (sources.router,)  # W1
ROUTERS += (pump_clock.router,)  # W6
