"""The dashboard (patients by urgency, paged, by clinician) and the reports page."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itb.clinic.data_version import dashboard_version
from itb.clinic.models import Patient, Pump, RefillRecord, Role, User
from itb.clinic.services.views import dashboard_page
from itb.programmer.refill import DEFAULT_SAFETY_MARGIN_DAYS
from itb.web.citations import cite_sources
from itb.web.clinic_time import clinic_minute
from itb.web.deps import Caller, Db, need, now
from itb.web.page_cache import PageCache
from itb.web.pages.common import DB_ID_MAX, SOON_DAYS, render
from itb.web.pages.dashboard_rows import row_view

router = APIRouter(include_in_schema=False)

PAGE_ROWS = 100
FLAGGED_REFILLS_SHOWN = 50
# The pages most looked at, served from the cache: the first few of each clinician's filter.
CACHED_PAGES = 3
# (clinicians + 1) x pages, of this data version and minute, with room for the previous ones
CACHE_ENTRIES = 256
# The ranking's place in the rendered page: an HTML comment, which no escaped value can forge.
RANKING_SLOT = Markup("<!-- the ranking -->")


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
    """The ranking; its first pages come from the cache while the data and the minute hold.

    A plain ``def``: FastAPI runs it in the thread pool, so its database work never blocks
    the event loop.
    """
    minute = now(request).replace(second=0, microsecond=0)
    # the version is read before the rows: rows are never older than the key they go under
    key = (dashboard_version(db), minute, clinician_id, page)
    cache = _cache(request)
    ranking = cache.get(key) if page <= CACHED_PAGES else None
    if ranking is None:
        ranking = _ranking(request, db, minute, clinician_id, page)
        if page <= CACHED_PAGES:
            cache.put(key, ranking)
    # The page around the ranking is rendered (and its sources cited) per user; the ranking,
    # cited once when it was built, goes into its slot as bytes. Citing the whole 140 kB page
    # each time cost 2 ms a request, more than all of /api/me.
    page_html = render(request, "dashboard.html", caller, ranking=RANKING_SLOT)
    return HTMLResponse(bytes(page_html.body).replace(RANKING_SLOT.encode(), ranking, 1))


def _ranking(
    request: Request, db: Session, minute: datetime, clinician_id: int | None, page: int
) -> bytes:
    """The filter, the table and the pager, sources cited, in UTF-8: the same for every user,
    so cacheable. Cited on its own, as in the page: it sits in the page's text, outside any
    tag, script, title or chart, and every value in it is escaped."""
    found = dashboard_page(db, minute, clinician_id, PAGE_ROWS, (page - 1) * PAGE_ROWS)
    first = (page - 1) * PAGE_ROWS + 1
    template = request.app.state.templates.get_template("_dashboard_ranking.html")
    # the autoescaping environment rendered it: the cached HTML is safe to place as is
    return cite_sources(
        template.render(
            rows=[row_view(r, SOON_DAYS) for r in found.rows],
            first=first,
            last=first + len(found.rows) - 1,
            page=page,
            has_next=found.has_next,
            clinicians=_clinicians(db),
            clinician_id=clinician_id,
            minute=minute,
            as_of=clinic_minute(minute, request.app.state.settings.zone),  # zone named
            soon_days=SOON_DAYS,
            refill_margin_days=DEFAULT_SAFETY_MARGIN_DAYS,
        )
    ).encode()


_CACHE_LOCK = threading.Lock()


def _cache(request: Request) -> PageCache:
    """This app's (this worker's) cache of rendered rankings, made on first use."""
    state = request.app.state
    with _CACHE_LOCK:
        cache: PageCache | None = getattr(state, "dashboard_cache", None)
        if cache is None:
            cache = state.dashboard_cache = PageCache(CACHE_ENTRIES)
        return cache


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
