"""The family's side: caregiver links (invite, revoke), the family's view, family reports.

Object-level access lives here, once: :func:`linked_patient` answers NotFoundError for any
patient the caregiver is not (or no longer) linked to, the same answer as for a patient that
does not exist, so an id reveals nothing. Every route of the family's page and API starts from it.

A family report is the patient's harm *now* (``Harm.FAMILY_REPORT``, urgency.py): written on the
pump row with the report's time, so the dashboard ranks it with the other urgent patients
through its usual ``harm_at``; a new reading keeps it (``keeps_family_report``) until a
clinician acknowledges the last open report, which projects the pump's dates again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit, auth
from itb.clinic.errors import ConflictError, InputError, NotFoundError
from itb.clinic.family_words import WITHDRAWAL_CHECKLIST
from itb.clinic.models import CaregiverLink, FamilyReport, Patient, Pump, Role, User
from itb.clinic.services.history import refresh_due_dates
from itb.clinic.services.lookups import find_active_pump, get_patient
from itb.clinic.services.one_time_passwords import (
    PasswordState,
    new_one_time_password,
    one_time_until,
    password_state,
)
from itb.clinic.urgency import Harm
from itb.pump.alarms import AlarmKind

FIRST_NAME_MAX_CHARS = 64
PHONE_MAX_CHARS = 32
NOTE_MAX_CHARS = 500
_PHONE_RE = re.compile(r"^[0-9+() .-]{3,32}$")
_FIRST_NAME_RE = re.compile(r"^[^\W\d_][\w' -]{0,63}$")
DEMO_CLINIC_PHONE = "+44 20 7946 0000"  # a number reserved for drama (Ofcom), never a real line


class ReportKind:
    ALARM = "alarm"
    WITHDRAWAL_SIGN = "withdrawal_sign"


# What a family may report: an alarm they hear (by what it sounds like, or "not sure") or one
# of the seed's withdrawal signs.
ALARM_SOUNDS = {
    "two_tone": "a two-tone alarm, repeating",
    "single_tone": "a single tone, about once an hour",
    "not_sure": "an alarm, not sure which",
}
REPORT_DETAILS: dict[str, dict[str, str]] = {
    ReportKind.ALARM: ALARM_SOUNDS,
    ReportKind.WITHDRAWAL_SIGN: {
        sign.replace(" ", "_").replace("-", "_"): sign for sign in WITHDRAWAL_CHECKLIST
    },
}


# Links ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Invitation:
    link: CaregiverLink
    username: str
    one_time_password: str | None  # None: an existing caregiver linked to one more patient


@dataclass(frozen=True, slots=True)
class InviteInput:
    username: str
    first_name: str  # the child's first name as the family's page and calendar show it
    clinic_phone: str  # whom the family calls
    relation: str = "parent"


def _check_invite(new: InviteInput) -> None:
    if not auth.USERNAME_RE.fullmatch(new.username):
        raise InputError("username", auth.USERNAME_RULE)
    if not _FIRST_NAME_RE.fullmatch(new.first_name.strip()):
        raise InputError(
            "first_name", f"the child's first name, 1 to {FIRST_NAME_MAX_CHARS} letters"
        )
    if not _PHONE_RE.fullmatch(new.clinic_phone.strip()):
        raise InputError("clinic_phone", "3 to 32 digits, spaces, +, (, ), . or -")
    if new.relation not in ("parent", "guardian", "carer"):
        raise InputError("relation", "parent, guardian or carer")


def invite_caregiver(db: Session, actor: User, patient_id: int, new: InviteInput) -> Invitation:
    """Link a caregiver to a patient: a new account with a one-time password (shown once), or
    an existing caregiver's account linked to one more patient. Audited; commits."""
    _check_invite(new)
    patient = get_patient(db, patient_id)
    user = db.execute(select(User).where(User.username == new.username)).scalar_one_or_none()
    password = None
    if user is None:  # a one-time password shown once to the care team, who hands it over
        password = new_one_time_password()
        user = auth.add_user(db, new.username, Role.CAREGIVER.value, password, actor)
        user.one_time_password_until_utc = one_time_until(audit.utc_now())
    elif user.role != Role.CAREGIVER.value:
        raise InputError("username", "already a care-team account; choose another username")
    elif _active_link(db, user.id, patient.id) is not None:
        raise ConflictError(f"{new.username} is already linked to this patient")
    elif not user.active and caregiver_links(db, user):  # not unlinked: an administrator's act
        raise ConflictError(
            f"{new.username}'s account was disabled by an administrator: ask them to enable it"
        )
    user.active = True  # a caregiver unlinked from every child comes back with this link
    link = CaregiverLink(
        user_id=user.id,
        patient_id=patient.id,
        first_name=new.first_name.strip(),
        relation=new.relation,
        phone=new.clinic_phone.strip(),
        created_at_utc=audit.utc_now(),
        created_by_id=actor.id,
    )
    db.add(link)
    db.flush()
    audit.record(
        db, actor, "caregiver.invite", "patient", patient.id, None,
        {"link": link.id, "username": user.username, "new_account": password is not None},
    )  # fmt: skip
    db.commit()
    return Invitation(link, user.username, password)


def link_demo_caregiver(db: Session, patient: Patient, user: User, first_name: str) -> None:
    """The demo clinic's caregiver (clinic/demo.py) linked to one child, in the caller's
    transaction."""
    db.add(
        CaregiverLink(
            user_id=user.id, patient_id=patient.id, first_name=first_name, relation="parent",
            phone=DEMO_CLINIC_PHONE, created_at_utc=audit.utc_now(),
        )
    )  # fmt: skip
    db.flush()


def revoke_caregiver(db: Session, actor: User, patient_id: int, link_id: int) -> None:
    """End a link; a caregiver left with no patient is deactivated (their sessions die with
    it, ``auth.session_for_token``). Audited; commits."""
    link = db.get(CaregiverLink, link_id)
    if link is None or link.patient_id != patient_id or link.revoked_at_utc is not None:
        raise NotFoundError(f"no active caregiver link {link_id} for patient {patient_id}")
    link.revoked_at_utc = audit.utc_now()
    db.flush()
    remaining = db.execute(
        select(CaregiverLink.id).where(
            CaregiverLink.user_id == link.user_id, CaregiverLink.revoked_at_utc.is_(None)
        )
    ).first()
    if remaining is None:
        link.user.active = False
    audit.record(
        db, actor, "caregiver.revoke", "patient", patient_id, {"link": link.id},
        {"username": link.user.username, "account_active": link.user.active},
    )  # fmt: skip
    db.commit()


def _active_link(db: Session, user_id: int, patient_id: int) -> CaregiverLink | None:
    return db.execute(
        select(CaregiverLink).where(
            CaregiverLink.user_id == user_id,
            CaregiverLink.patient_id == patient_id,
            CaregiverLink.revoked_at_utc.is_(None),
        )
    ).scalar_one_or_none()


def linked_patient(db: Session, user: User, patient_id: int) -> CaregiverLink:
    """The caregiver's active link to this patient; NotFoundError otherwise (the same answer
    as for a patient that does not exist)."""
    link = _active_link(db, user.id, patient_id) if user.role == Role.CAREGIVER.value else None
    if link is None:
        raise NotFoundError(f"patient {patient_id} not found")
    return link


def caregiver_links(db: Session, user: User) -> list[CaregiverLink]:
    return list(
        db.execute(
            select(CaregiverLink)
            .where(CaregiverLink.user_id == user.id, CaregiverLink.revoked_at_utc.is_(None))
            .order_by(CaregiverLink.id)
        ).scalars()
    )


def patient_caregivers(db: Session, patient_id: int) -> list[CaregiverLink]:
    """The care team's list: every link of the patient, revoked ones included."""
    get_patient(db, patient_id)
    return list(
        db.execute(
            select(CaregiverLink)
            .where(CaregiverLink.patient_id == patient_id)
            .order_by(CaregiverLink.id)
        ).scalars()
    )


InviteState = PasswordState  # a caregiver's invitation is a one-time password like any other


def invite_state(db: Session, user: User, now_utc: datetime) -> str:
    """The caregiver's one-time password (an invitation or an administrator's reset):
    READY, PENDING or EXPIRED."""
    return password_state(user, now_utc)


def set_own_password(db: Session, user: User, password: str, repeat: str) -> None:
    """A caregiver replaces the one-time password with their own (it must still be valid: the
    caller checks ``invite_state``). Audited; commits."""
    if password != repeat:
        raise InputError("repeat", "the two passwords differ; type the same one twice")
    try:
        auth.check_password_strength(password)
    except ValueError:
        raise InputError("password", f"at least {auth.MIN_PASSWORD_CHARS} characters") from None
    user.password_hash = auth.hash_password(password)
    user.one_time_password_until_utc = None
    audit.record(db, user, "caregiver.password_set", "user", user.id)
    db.commit()


# Reports -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportInput:
    kind: str
    detail: str
    note: str = ""


def report_words(kind: str, detail: str) -> str:
    """A report in the care team's words: "Family hears a two-tone alarm, repeating"."""
    words = REPORT_DETAILS.get(kind, {}).get(detail, detail)
    if kind == ReportKind.ALARM:
        return f"Family hears {words}"
    return f"Family reports a withdrawal sign: {words}"


def _check_report(new: ReportInput) -> None:
    details = REPORT_DETAILS.get(new.kind)
    if details is None:
        raise InputError("kind", "an alarm or a withdrawal sign")
    if new.detail not in details:
        raise InputError("detail", "one of: " + ", ".join(details.values()))
    if len(new.note) > NOTE_MAX_CHARS:
        raise InputError("note", f"at most {NOTE_MAX_CHARS} characters")


def add_report(
    db: Session, user: User, patient_id: int, new: ReportInput, now: datetime
) -> FamilyReport:
    """A caregiver's report: stored, audited, and the pump's harm is now (the dashboard ranks
    it first among the other urgent patients by its time). Commits."""
    link = linked_patient(db, user, patient_id)
    _check_report(new)
    pump = find_active_pump(db, link.patient)
    if pump is None:  # no pump row to rank it by: refuse in words rather than file it unseen
        raise ConflictError(
            "no implanted pump is recorded for your child, so this message cannot reach the "
            "care team's urgent list: please call the clinic"
        )
    report = FamilyReport(
        patient_id=patient_id,
        pump_id=pump.id,
        user_id=user.id,
        kind=new.kind,
        detail=new.detail,
        note=new.note.strip(),
        reported_at=now,
    )
    db.add(report)
    if pump.harm != Harm.FAMILY_REPORT.value:
        pump.harm, pump.harm_at = Harm.FAMILY_REPORT.value, now
    db.flush()
    audit.record(
        db, user, "family.report", "patient", patient_id, None,
        {"report": report.id, "kind": new.kind, "detail": new.detail},
    )  # fmt: skip
    db.commit()
    return report


def open_reports(db: Session, patient_id: int) -> list[FamilyReport]:
    return list(
        db.execute(
            select(FamilyReport)
            .where(FamilyReport.patient_id == patient_id, FamilyReport.acknowledged_at.is_(None))
            .order_by(FamilyReport.reported_at)
        ).scalars()
    )


def recent_reports(
    db: Session, patient_id: int, now: datetime, days: int = 30
) -> list[FamilyReport]:
    return list(
        db.execute(
            select(FamilyReport)
            .where(
                FamilyReport.patient_id == patient_id,
                FamilyReport.reported_at >= now - timedelta(days=days),
            )
            .order_by(FamilyReport.reported_at.desc())
        ).scalars()
    )


def acknowledge_report(
    db: Session, actor: User, patient_id: int, report_id: int, now: datetime
) -> FamilyReport:
    """A clinician has seen the report and acted; the last open one of a pump gives the pump
    its projected harm back. Audited; commits."""
    report = db.get(FamilyReport, report_id)
    if report is None or report.patient_id != patient_id:
        raise NotFoundError(f"report {report_id} not found for patient {patient_id}")
    if report.acknowledged_at is not None:
        raise ConflictError("this report was already acknowledged")
    report.acknowledged_at, report.acknowledged_by_id = now, actor.id
    db.flush()
    if report.pump_id is not None:
        _restore_harm(db, report.pump_id)
    audit.record(
        db, actor, "family.report.acknowledge", "patient", patient_id, None,
        {"report": report.id},
    )  # fmt: skip
    db.commit()
    return report


def _restore_harm(db: Session, pump_id: int) -> None:
    still_open = db.execute(
        select(FamilyReport.reported_at)
        .where(FamilyReport.pump_id == pump_id, FamilyReport.acknowledged_at.is_(None))
        .order_by(FamilyReport.reported_at)
        .limit(1)
    ).scalar_one_or_none()
    pump = db.get(Pump, pump_id)
    if pump is None:
        return
    if still_open is not None:
        pump.harm, pump.harm_at = Harm.FAMILY_REPORT.value, still_open
        return
    pump.harm = pump.harm_at = None
    refresh_due_dates(pump)


def linked_patients(db: Session, user: User) -> list[Patient]:
    return [link.patient for link in caregiver_links(db, user)]


def alarm_kinds_raised(alarm_kinds: list[str]) -> list[AlarmKind]:
    """The stored alarm kinds the family's page can explain (unknown ones are skipped)."""
    known = {k.value: k for k in AlarmKind}
    return [known[k] for k in alarm_kinds if k in known]
