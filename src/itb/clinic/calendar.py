"""Calendar export (RFC 5545) of upcoming refills and pump replacements, written by hand.

The dates are the ones stored at the pump's last reading: the refill plan's next refill, and the
pump's own ERI and EOS (its firmware's prediction); the calendar derives none of them.

Privacy: calendars sync to third parties (phones, mail providers), so an event names the
patient by MRN by default, or by initials; the full name only when asked for explicitly
(:class:`PatientLabel`, ``?patient_label=full_name`` on the API, ``--patient-label`` on the CLI).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from itb.clinic.audit import utc_now
from itb.clinic.models import FollowUp, Patient, Pump
from itb.clinic.urgency import refill_after_eos

HORIZON_DAYS = 365
PAST_DAYS = 30  # overdue items stay on the calendar for a month


class PatientLabel(enum.StrEnum):
    """How an event names its patient: MRN (the default), initials, or the full name."""

    MRN = "mrn"
    INITIALS = "initials"
    FULL_NAME = "full_name"


def patient_label(patient: Patient, label: PatientLabel) -> str:
    if label is PatientLabel.FULL_NAME:
        return patient.name
    if label is PatientLabel.INITIALS:
        initials = "".join(f"{w[0].upper()}." for w in patient.name.split() if w[:1].isalpha())
        return initials or patient.mrn  # a name without letters: the MRN, never a blank
    return patient.mrn


def escape_text(text: str) -> str:
    """TEXT value escaping (RFC 5545 §3.3.11)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line to 75 octets (RFC 5545 §3.1), never splitting a UTF-8 sequence."""
    out: list[str] = []
    current = ""
    limit = 75
    for char in line:
        if len((current + char).encode()) > limit:
            out.append(current)
            current = " " + char  # continuation lines start with one space
            limit = 75
        else:
            current += char
    out.append(current)
    return "\r\n".join(out)


def _event(uid: str, day: datetime, summary: str, description: str, stamp: str) -> list[str]:
    start = day.strftime("%Y%m%d")
    end = (day + timedelta(days=1)).strftime("%Y%m%d")
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{start}",
        f"DTEND;VALUE=DATE:{end}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def calendar_ics(
    db: Session,
    now: datetime,
    clinician_id: int | None = None,
    label: PatientLabel = PatientLabel.MRN,
) -> str:
    """The calendar of upcoming refills and replacements; events name the patient by
    ``label`` (the MRN unless asked otherwise)."""
    query = select(Patient, Pump).join(Pump, (Pump.patient_id == Patient.id) & Pump.active)
    if clinician_id is not None:
        query = query.where(Patient.clinician_id == clinician_id)
    earliest, latest = now - timedelta(days=PAST_DAYS), now + timedelta(days=HORIZON_DAYS)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//OpenITB//clinic//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:OpenITB refills and replacements",
    ]
    for patient, pump in db.execute(query.order_by(Pump.harm_at, Pump.id)):
        who = patient_label(patient, label)
        refill_at = pump.next_refill_at
        if refill_at and earliest <= refill_at <= latest:
            lines += _event(
                f"refill-{pump.serial}-{refill_at:%Y%m%d}@openitb",
                refill_at,
                _refill_summary(who, pump),
                _refill_description(pump),
                stamp,
            )
        if pump.eri_at and earliest <= pump.eri_at <= latest:
            lines += _event(
                f"replacement-{pump.serial}-{pump.eri_at:%Y%m%d}@openitb",
                pump.eri_at,
                f"ITB pump replacement (ERI): {who} ({pump.serial})",
                _replacement_description(pump),
                stamp,
            )
    lines += _appointments(db, label, clinician_id, (earliest, latest), stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


APPOINTMENT_MINUTES = 30  # [R] the length a follow-up appointment is shown with


def _appointments(
    db: Session,
    label: PatientLabel,
    clinician_id: int | None,
    window: tuple[datetime, datetime],
    stamp: str,
) -> list[str]:
    """The next appointment booked at each patient's latest follow-up (an earlier booking is
    replaced by the later visit's), at its time, floating local clinic time."""
    later = aliased(FollowUp)
    superseded = (
        select(later.id)
        .where(later.patient_id == FollowUp.patient_id, later.seen_at > FollowUp.seen_at)
        .exists()
    )
    query = (
        select(Patient, FollowUp)
        .join(Patient, Patient.id == FollowUp.patient_id)
        .where(FollowUp.next_appointment_at.between(*window), ~superseded)
        .order_by(FollowUp.next_appointment_at, FollowUp.id)
    )
    if clinician_id is not None:
        query = query.where(Patient.clinician_id == clinician_id)
    lines: list[str] = []
    for patient, follow_up in db.execute(query):
        at = follow_up.next_appointment_at
        assert at is not None  # in the window
        end = at + timedelta(minutes=APPOINTMENT_MINUTES)
        lines += [
            "BEGIN:VEVENT",
            f"UID:follow-up-{follow_up.id}@openitb",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{at:%Y%m%dT%H%M%S}",
            f"DTEND:{end:%Y%m%dT%H%M%S}",
            f"SUMMARY:{escape_text(f'ITB follow-up: {patient_label(patient, label)}')}",
            "DESCRIPTION:Booked at the follow-up visit of "
            + escape_text(f"{follow_up.seen_at:%Y-%m-%d %H:%M}."),
            "END:VEVENT",
        ]
    return lines


def _refill_summary(who: str, pump: Pump) -> str:
    if refill_after_eos(pump.next_refill_at, pump.eos_at):
        return f"CONFLICT ITB refill after end of service: {who} ({pump.serial})"
    return f"ITB refill: {who} ({pump.serial})"


def _refill_description(pump: Pump) -> str:
    sentences = []
    if pump.low_reservoir_at:
        sentences.append(f"Low-reservoir alarm {pump.low_reservoir_at:%Y-%m-%d}.")
    if refill_after_eos(pump.next_refill_at, pump.eos_at) and pump.eos_at:
        sentences.append(
            f"Conflict: the pump stops delivering on {pump.eos_at:%Y-%m-%d} (end of service), "
            "before this refill: replace the pump first."
        )
    return " ".join(sentences)


def _replacement_description(pump: Pump) -> str:
    """The pump's own end-of-service date: delivery stops then (S3 S21)."""
    eos = f" on {pump.eos_at:%Y-%m-%d}" if pump.eos_at else " at end of service"
    eri = f"{pump.eri_at:%Y-%m-%d}" if pump.eri_at else "unknown"
    # the patient is named in the summary only, as the calendar's label asks
    return f"ERI {eri}; delivery stops{eos} (end of service)."
