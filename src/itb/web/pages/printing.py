"""Printable records: a refill visit's record and the last interrogation's report, each as a
page the browser prints cleanly (``static/print.css``) and as a PDF download
(``itb.clinic.print_pdf``). Both forms lay out the same read model (``itb.clinic.printout``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from itb.clinic import services
from itb.web.clinic_time import clinic_minute, pump_minute
from itb.web.deps import Caller, Db, need, now
from itb.web.pages.common import DB_ID_MAX, PatientId, render

# The printouts and their PDF drawing are imported by the first printout asked for: the app
# starts without them (issue 13).
if TYPE_CHECKING:
    from itb.clinic.printout import Printout, TimeWords

router = APIRouter(include_in_schema=False)

VisitId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


def _page(request: Request, caller: Caller, printout: Printout, pdf_url: str) -> HTMLResponse:
    return render(request, "print_document.html", caller, doc=printout, pdf_url=pdf_url)


def _pdf(printout: Printout, filename: str) -> Response:
    from itb.clinic.print_pdf import printout_pdf

    return Response(
        printout_pdf(printout),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _times(request: Request) -> TimeWords:
    """Times as every page says them: to the minute, the zone named (the pump's on its own
    standard-time clock, H78)."""
    from itb.clinic.printout import TimeWords

    zone = request.app.state.settings.zone
    return TimeWords(
        clinic=lambda at: clinic_minute(at, zone), pump=lambda at: pump_minute(at, zone)
    )


def _refill(request: Request, db: Db, caller: Caller, patient_id: int, visit_id: int) -> Printout:
    from itb.clinic.printout import refill_printout

    patient = services.get_patient(db, patient_id)
    return refill_printout(db, patient, visit_id, (now(request), caller.user), _times(request))


def _report(request: Request, db: Db, caller: Caller, patient_id: int) -> Printout:
    from itb.clinic.printout import interrogation_printout

    patient = services.get_patient(db, patient_id)
    return interrogation_printout(db, patient, (now(request), caller.user), _times(request))


@router.get("/patients/{patient_id}/visits/{visit_id}/print")
def refill_record_page(
    patient_id: PatientId,
    visit_id: VisitId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    printout = _refill(request, db, caller, patient_id, visit_id)
    return _page(request, caller, printout, f"/patients/{patient_id}/visits/{visit_id}/record.pdf")


@router.get("/patients/{patient_id}/visits/{visit_id}/record.pdf")
def refill_record_pdf(
    patient_id: PatientId,
    visit_id: VisitId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> Response:
    printout = _refill(request, db, caller, patient_id, visit_id)
    return _pdf(printout, f"refill-record-{visit_id}.pdf")


@router.get("/patients/{patient_id}/report/print")
def interrogation_report_page(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    printout = _report(request, db, caller, patient_id)
    return _page(request, caller, printout, f"/patients/{patient_id}/report.pdf")


@router.get("/patients/{patient_id}/report.pdf")
def interrogation_report_pdf(
    patient_id: PatientId,
    request: Request,
    db: Db,
    caller: Caller = need("view", page=True),
) -> Response:
    printout = _report(request, db, caller, patient_id)
    return _pdf(printout, f"interrogation-report-{patient_id}.pdf")
