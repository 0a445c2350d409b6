"""The family's JSON API (a caregiver's own patients only) and the care team's caregiver calls.

``/api/family/...``: a caregiver's children, a child's family view, a report to the care team;
any other patient's id is a 404 (services/family.py: ``linked_patient``). ``/api/patients/{id}/
caregivers`` and ``.../family-reports``: the care team invites, revokes, acknowledges (audited).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from itb.clinic import auth
from itb.clinic.models import CaregiverLink, FamilyReport
from itb.clinic.services import family as service
from itb.clinic.services.family_view import FamilyView, family_view
from itb.clinic.services.lookups import iso
from itb.web.deps import Caller, Db, need, now

router = APIRouter(prefix="/api", tags=["family"])

DB_ID_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="patient id")]
ItemId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["alarm", "withdrawal_sign"]
    detail: str = Field(max_length=64, description="the tone heard or the sign seen")
    note: str = Field("", max_length=service.NOTE_MAX_CHARS)


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=auth.USERNAME_MAX_CHARS)
    first_name: str = Field(min_length=1, max_length=service.FIRST_NAME_MAX_CHARS)
    clinic_phone: str = Field(min_length=3, max_length=service.PHONE_MAX_CHARS)
    relation: Literal["parent", "guardian", "carer"] = "parent"


def _report(r: FamilyReport) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "detail": r.detail,
        "words": service.report_words(r.kind, r.detail),
        "note": r.note,
        "reported_at": iso(r.reported_at),
        "acknowledged_at": iso(r.acknowledged_at),
    }


def _view(v: FamilyView) -> dict[str, Any]:
    countdown = v.countdown
    return {
        "patient_id": v.patient_id,
        "first_name": v.first_name,
        "clinic_phone": v.clinic_phone,
        "low_reservoir_alarm_at": iso(countdown.low_reservoir_at) if countdown else None,
        "low_reservoir_alarm_in_words": countdown.words if countdown else None,
        "level": countdown.level.value if countdown else None,
        "refill_by": iso(countdown.refill_by) if countdown else None,
        "alarms_now": [a.kind.value for a in v.alarms_now],
        "withdrawal_onset_h": v.withdrawal_onset_h,
        "replacement_at": iso(v.replacement_at),
        "visits": [{"on": iso(x.on), "what": x.what} for x in v.visits],
        "open_reports": [_report(r) for r in v.reports],
    }


def _link(link: CaregiverLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "username": link.user.username,
        "first_name": link.first_name,
        "relation": link.relation,
        "clinic_phone": link.phone,
        "revoked": link.revoked_at_utc is not None,
    }


# The family's side ---------------------------------------------------------------------------
@router.get("/family/patients")
def family_patients(db: Db, caller: Caller = need("family_view")) -> list[dict[str, Any]]:
    """The caregiver's linked children (first names only)."""
    return [
        {"id": link.patient_id, "first_name": link.first_name}
        for link in service.caregiver_links(db, caller.user)
    ]


@router.get("/family/patients/{patient_id}")
def family_patient(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("family_view")
) -> dict[str, Any]:
    """The family's view of one linked child; 404 for any other id."""
    link = service.linked_patient(db, caller.user, patient_id)
    return _view(family_view(db, link, now(request)))


@router.post("/family/patients/{patient_id}/reports", status_code=201)
def family_report(
    patient_id: PatientId,
    body: ReportIn,
    request: Request,
    db: Db,
    caller: Caller = need("family_report"),
) -> dict[str, Any]:
    """Report an alarm heard or a withdrawal sign: urgent on the care team's dashboard."""
    new = service.ReportInput(body.kind, body.detail, body.note)
    return _report(service.add_report(db, caller.user, patient_id, new, now(request)))


# The care team's side ------------------------------------------------------------------------
@router.get("/patients/{patient_id}/caregivers")
def caregivers(
    patient_id: PatientId, db: Db, caller: Caller = need("view")
) -> list[dict[str, Any]]:
    return [_link(link) for link in service.patient_caregivers(db, patient_id)]


@router.post("/patients/{patient_id}/caregivers", status_code=201)
def invite(
    patient_id: PatientId, body: InviteIn, db: Db, caller: Caller = need("manage_caregivers")
) -> dict[str, Any]:
    """A caregiver account linked to the patient; the one-time password is in this answer only."""
    new = service.InviteInput(body.username, body.first_name, body.clinic_phone, body.relation)
    invitation = service.invite_caregiver(db, caller.user, patient_id, new)
    return {**_link(invitation.link), "one_time_password": invitation.one_time_password}


@router.post("/patients/{patient_id}/caregivers/{link_id}/revoke", status_code=204)
def revoke(
    patient_id: PatientId, link_id: ItemId, db: Db, caller: Caller = need("manage_caregivers")
) -> None:
    service.revoke_caregiver(db, caller.user, patient_id, link_id)


@router.get("/patients/{patient_id}/family-reports")
def family_reports(
    patient_id: PatientId, request: Request, db: Db, caller: Caller = need("view")
) -> list[dict[str, Any]]:
    service.patient_caregivers(db, patient_id)  # 404 for an unknown patient
    return [_report(r) for r in service.recent_reports(db, patient_id, now(request))]


@router.post("/patients/{patient_id}/family-reports/{report_id}/acknowledge")
def acknowledge(
    patient_id: PatientId,
    report_id: ItemId,
    request: Request,
    db: Db,
    caller: Caller = need("acknowledge_report"),
) -> dict[str, Any]:
    report = service.acknowledge_report(db, caller.user, patient_id, report_id, now(request))
    return _report(report)
