"""The dashboard (patients by urgency, paged, by clinician) and the reports page."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.models import Patient, Pump, RefillRecord, Role, User
from itb.programmer.refill import DEFAULT_SAFETY_MARGIN_DAYS
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import DB_ID_MAX, SOON_DAYS, render

router = APIRouter(include_in_schema=False)

PAGE_ROWS = 100
FLAGGED_REFILLS_SHOWN = 50


def _clinicians(db: Session) -> list[User]:
    return list(
        db.execute(
            select(User).where(User.role == Role.PHYSICIAN.value).order_by(User.username)
        ).scalars()
    )


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
    return render(
        request,
        "dashboard.html",
        caller,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_ROWS)),
        clinicians=_clinicians(db),
        clinician_id=clinician_id,
        refill_margin_days=DEFAULT_SAFETY_MARGIN_DAYS,
    )


def _workload(db: Session, current: datetime) -> dict[str, int]:
    """How many patients, and how many pumps fall due within each horizon."""

    def due_within(column: Any, days: float) -> int:
        return int(
            db.execute(
                select(func.count())
                .select_from(Pump)
                .where(Pump.active, column < current + timedelta(days=days))
            ).scalar_one()
        )

    return {
        "patients": int(db.execute(select(func.count()).select_from(Patient)).scalar_one()),
        "overdue": due_within(Pump.next_due_at, 0),
        "low_reservoir_7d": due_within(Pump.low_reservoir_at, 7),
        "low_reservoir_30d": due_within(Pump.low_reservoir_at, 30),
        "stability_30d": due_within(Pump.stability_at, 30),
        "eri_180d": due_within(Pump.eri_at, SOON_DAYS["eri"]),
    }


@router.get("/reports")
def reports(request: Request, db: Db, caller: Caller = need("view", page=True)) -> HTMLResponse:
    flagged = db.execute(
        select(RefillRecord, Patient)
        .join(Pump, Pump.id == RefillRecord.pump_id)
        .join(Patient, Patient.id == Pump.patient_id)
        .where(RefillRecord.discrepancy_flagged)
        .order_by(RefillRecord.at.desc())
        .limit(FLAGGED_REFILLS_SHOWN)
    ).all()
    return render(
        request,
        "reports.html",
        caller,
        counts=_workload(db, now(request)),
        flagged=flagged,
        clinicians=_clinicians(db),
        json=json,
    )
