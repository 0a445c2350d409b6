"""The server-rendered pages: log-in, dashboard, patient, onboarding, program, refill wizard,
screening trial, reports. Forms post back with the session's CSRF token.

One module per area, each with its own router. :data:`ROUTERS` lists them in the order the
app includes them, and the order matters: ``/patients/new`` (onboarding) must come before
``/patients/{patient_id}`` (patient), which would take "new" for an id and answer 422.
"""

from __future__ import annotations

from fastapi import APIRouter

from itb.web.pages import dashboard, login, onboarding, patient, programming, refill, screening
from itb.web.pages.common import error_page

__all__ = ["ROUTERS", "error_page"]

ROUTERS: tuple[APIRouter, ...] = tuple(
    area.router for area in (login, dashboard, onboarding, patient, programming, refill, screening)
)
