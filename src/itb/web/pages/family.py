"""The family's page (a caregiver's own patients only) and the care team's family tab.

Family: ``/family`` (their children), ``/family/{id}`` (countdown, alarms, withdrawal, battery,
visits, report form), ``/family/{id}/card`` (printable), ``/family/{id}/visits.ics``.
Care team: ``/patients/{id}/family`` (caregivers, invite, revoke, open reports, acknowledge).
Every family route asks :func:`itb.clinic.services.family.linked_patient` first: any other
patient's id is a 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from itb.clinic import audit, auth
from itb.clinic.family_calendar import family_ics
from itb.clinic.family_words import BATTERY_WHY, MRI_WARNING, NEVER_STOP, WITHDRAWAL_CHECKLIST
from itb.clinic.services import family as service
from itb.clinic.services.family_view import family_view
from itb.clinic.services.lookups import get_patient
from itb.clinic.services.one_time_passwords import ONE_TIME_PASSWORD_LIFETIME_DAYS as ONE_TIME_DAYS
from itb.errors import InputError
from itb.web.deps import Caller, Db, need, now, session_cookie_name
from itb.web.pages.common import DB_ID_MAX, FORM_TEXT_MAX_CHARS, PatientId, redirect, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=FORM_TEXT_MAX_CHARS)]
ItemId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
Text = Annotated[str, Field(max_length=FORM_TEXT_MAX_CHARS)]

FAMILY_NOTICES = {
    "reported": "Your message was sent to the care team. If your child is unwell now, do not "
    "wait for a call back: call the clinic, or go to the emergency department.",
}

# the fixed sentences every family page may show (family_words.py, with their sources)
_WORDS: dict[str, object] = {
    "battery_why": BATTERY_WHY,
    "never_stop": NEVER_STOP,
    "mri_warning": MRI_WARNING,
    "signs": WITHDRAWAL_CHECKLIST,
}


# The family's side ---------------------------------------------------------------------------
@router.get("/family/password", response_class=HTMLResponse)
def family_password_form(
    request: Request,
    db: Db,
    caller: Caller = need("family_view", page=True, one_time_password=True),
) -> HTMLResponse:
    state = service.invite_state(db, caller.user, audit.utc_now())
    return render(
        request, "family_password.html", caller, state=state, one_time_days=ONE_TIME_DAYS, error=""
    )


@router.post("/family/password", response_class=HTMLResponse)
def family_password(
    request: Request,
    db: Db,
    password: FormText = "",
    repeat: FormText = "",
    caller: Caller = need("family_view", page=True, form=True, one_time_password=True),
) -> Response:
    state = service.invite_state(db, caller.user, audit.utc_now())
    if state == service.InviteState.EXPIRED:
        return render(
            request,
            "family_password.html",
            caller,
            403,
            state=state,
            one_time_days=ONE_TIME_DAYS,
            error="",
        )
    try:
        service.set_own_password(db, caller.user, password, repeat)
    except InputError as exc:
        db.rollback()
        return render(
            request,
            "family_password.html",
            caller,
            422,
            state=state,
            one_time_days=ONE_TIME_DAYS,
            error=exc.reason,
        )
    return redirect("/family")


@router.get("/family", response_class=HTMLResponse)
def family_home(
    request: Request, db: Db, caller: Caller = need("family_view", page=True)
) -> Response:
    links = service.caregiver_links(db, caller.user)
    if len(links) == 1:
        return redirect(f"/family/{links[0].patient_id}")
    return render(request, "family_home.html", caller, links=links)


@router.get("/family/{patient_id}", response_class=HTMLResponse)
def family_page(
    patient_id: PatientId,
    request: Request,
    db: Db,
    notice: str = "",
    caller: Caller = need("family_view", page=True),
) -> Response:
    link = service.linked_patient(db, caller.user, patient_id)
    view = family_view(db, link, now(request))
    return render(
        request, "family.html", caller, view=view,
        alarm_sounds=service.ALARM_SOUNDS,
        signs=service.REPORT_DETAILS[service.ReportKind.WITHDRAWAL_SIGN],
        notice=FAMILY_NOTICES.get(notice, ""), words=_WORDS,
    )  # fmt: skip


@router.get("/family/{patient_id}/card", response_class=HTMLResponse)
def family_card(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("family_view", page=True)
) -> Response:
    link = service.linked_patient(db, caller.user, patient_id)
    view = family_view(db, link, now(request))
    return render(request, "family_card.html", caller, view=view, words=_WORDS)


@router.get("/family/{patient_id}/visits.ics")
def family_calendar(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("family_view", page=True)
) -> Response:
    link = service.linked_patient(db, caller.user, patient_id)
    body = family_ics(family_view(db, link, now(request)), audit.utc_now())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="itb-visits.ics"'},
    )


@router.post("/family/{patient_id}/report")
def family_report(
    patient_id: PatientId,
    request: Request,
    db: Db,
    kind: FormText = "",
    detail: FormText = "",
    note: FormText = "",
    caller: Caller = need("family_report", page=True, form=True),
) -> Response:
    service.linked_patient(db, caller.user, patient_id)
    report = service.ReportInput(kind, detail, note)
    service.add_report(db, caller.user, patient_id, report, now(request))
    return redirect(f"/family/{patient_id}?notice=reported")


@router.post("/family/logout")
def family_logout(
    request: Request,
    db: Db,
    caller: Caller = need("family_view", page=True, form=True, one_time_password=True),
) -> Response:
    auth.end_session(db, caller.web_session)
    response = redirect("/login")
    response.delete_cookie(session_cookie_name(request), path="/")
    return response


# The care team's side ------------------------------------------------------------------------
def _team_page(
    request: Request, db: Db, caller: Caller, patient_id: int, status: int = 200, **extra: object
) -> HTMLResponse:
    patient = get_patient(db, patient_id)
    current: datetime = now(request)
    return render(
        request, "family_team.html", caller, status, patient=patient,
        links=service.patient_caregivers(db, patient_id),
        reports=service.recent_reports(db, patient_id, current),
        report_words=service.report_words, **extra,
    )  # fmt: skip


@router.get("/patients/{patient_id}/family", response_class=HTMLResponse)
def team_family(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("view", page=True)
) -> HTMLResponse:
    return _team_page(request, db, caller, patient_id)


class InviteForm(BaseModel):
    """The care team's invite form, as typed (the service checks each field)."""

    model_config = ConfigDict(extra="ignore")  # the CSRF token is read by the dependency
    username: Text = ""
    first_name: Text = ""
    clinic_phone: Text = ""
    relation: Text = "parent"


@router.post("/patients/{patient_id}/caregivers", response_class=HTMLResponse)
def team_invite(
    patient_id: PatientId,
    request: Request,
    db: Db,
    form: Annotated[InviteForm, Form()],
    caller: Caller = need("manage_caregivers", page=True, form=True),
) -> HTMLResponse:
    new = service.InviteInput(
        form.username.strip(), form.first_name, form.clinic_phone, form.relation
    )
    invitation = service.invite_caregiver(db, caller.user, patient_id, new)
    # the one-time password is shown on this answer only (no redirect: never in a URL or log)
    return _team_page(request, db, caller, patient_id, invitation=invitation)


@router.post("/patients/{patient_id}/caregivers/{link_id}/revoke")
def team_revoke(
    patient_id: PatientId,
    link_id: ItemId,
    db: Db,
    caller: Caller = need("manage_caregivers", page=True, form=True),
) -> Response:
    service.revoke_caregiver(db, caller.user, patient_id, link_id)
    return redirect(f"/patients/{patient_id}/family")


@router.post("/patients/{patient_id}/family-reports/{report_id}/acknowledge")
def team_acknowledge(
    patient_id: PatientId,
    report_id: ItemId,
    request: Request,
    db: Db,
    caller: Caller = need("acknowledge_report", page=True, form=True),
) -> Response:
    service.acknowledge_report(db, caller.user, patient_id, report_id, now(request))
    return redirect(f"/patients/{patient_id}/family")
