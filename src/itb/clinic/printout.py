"""What a printed refill record and interrogation report say, as plain sections of words.

One read model for both forms of a printout: the print page (``templates/print_document.html``,
``static/print.css``) and the PDF download (``itb.clinic.print_pdf``) lay out the same
:class:`Printout`, so the paper and the file never disagree. Every value is already words with
its unit; times are to the minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic.errors import ConflictError, NotFoundError
from itb.clinic.models import (
    Alarm,
    AuditEntry,
    Interrogation,
    Patient,
    ProgramVersion,
    Pump,
    RefillRecord,
    User,
    Visit,
    VisitKind,
)
from itb.clinic.services.history import stored_status
from itb.clinic.services.lookups import active_pump
from itb.clinic.services.views import alarms, last_interrogation
from itb.programmer.program_table import program_table
from itb.programmer.report import DISCLAIMER
from itb.pump.status import PumpStatus
from itb.therapy import Program, program_from_dict


@dataclass(frozen=True, slots=True)
class Section:
    """A heading with facts (label, value) and/or a table (column headings, rows)."""

    heading: str
    facts: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    empty: str = ""  # said when the section has neither facts nor rows


@dataclass(frozen=True, slots=True)
class Printout:
    title: str
    patient: str  # the name and MRN the page is about
    sections: tuple[Section, ...]
    footer: str  # printed when and by whom, and the disclaimer

    def text(self) -> str:
        """Every word of the printout, in order (what a PDF's text layer must carry)."""
        parts = [self.title, self.patient]
        for s in self.sections:
            parts += [s.heading, *(f"{k} {v}" for k, v in s.facts), *s.columns]
            parts += [" ".join(row) for row in s.rows]
        return "\n".join([*parts, self.footer])


def minute(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class TimeWords:
    """How the printout says a time: the clinic's clock (visits, the print time) and a pump's
    (its reading, its alarms: standard time, H78), each to the minute; the web app names the
    zone (``itb.web.clinic_time``)."""

    clinic: Callable[[datetime | None], str] = minute
    pump: Callable[[datetime | None], str] = minute


def _number(value: float | None, unit: str, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else f"{fmt.format(value)} {unit}"


def _who(user: User | None, fallback: str = "not recorded") -> str:
    if user is None:
        return fallback
    return f"{user.display_name or user.username} ({user.role})"


def _words(code: str) -> str:
    """An alarm kind, mode or status code as words (``empty_reservoir``: empty reservoir)."""
    return code.replace("_", " ").replace("eri", "ERI").replace("eos", "EOS")


# The program as a schedule table (the one renderer: itb.programmer.program_table) ----------
SCHEDULE_COLUMNS = ("Days", "From", "To", "Rate (µg/h)", "Dose (µg)", "Share")


def schedule_sections(program: Program, heading: str) -> list[Section]:
    """The program as a table of steps with units, and its periodic boluses."""
    table = program_table(program)
    facts = [("Program", table.summary)]
    rows: list[tuple[str, ...]] = [
        (
            day.days,
            step.start,
            step.end,
            f"{step.rate_ug_per_h:.4g}",
            f"{step.dose_ug:.1f}",
            f"{step.share_percent:.0f} %",
        )
        for day in table.days
        for step in day.steps
    ]
    if table.rate_ug_per_h is not None:  # continuous: the whole day at one rate
        daily = table.rate_ug_per_day or 0.0
        rows = [
            ("Every day", "00:00", "24:00", f"{table.rate_ug_per_h:.4g}", f"{daily:g}", "100 %")
        ]
    out = [Section(heading, tuple(facts), SCHEDULE_COLUMNS, tuple(rows))]
    if table.boluses:
        boluses = tuple((b.start, f"{b.dose_ug:g}", f"{b.duration_min:g}") for b in table.boluses)
        out.append(Section("Periodic boluses", (), ("Start", "Dose (µg)", "Over (min)"), boluses))
    return out


def _alarm_section(rows: Sequence[tuple[str, ...]]) -> Section:
    return Section(
        "Alarms", (), ("Alarm", "Priority", "Since", "State"), tuple(rows), empty="No alarms."
    )


def _stored_alarms(db: Session, pump: Pump, times: TimeWords) -> Section:
    rows = [
        (_words(a.kind), _words(a.priority), times.pump(a.raised_at), _state(a))
        for a in alarms(db, pump)
    ]
    return _alarm_section(rows)


def _state(alarm: Alarm) -> str:
    return "active" if alarm.active else "cleared"


def _pump_section(pump: Pump, concentration_ug_per_ml: float | None, times: TimeWords) -> Section:
    drug = (
        "baclofen"
        if concentration_ug_per_ml is None
        else (f"{pump.drug} {concentration_ug_per_ml:g} µg/mL")
    )
    return Section(
        "Pump",
        (
            ("Model", pump.model),
            ("Serial", pump.serial),
            ("Implanted", times.clinic(pump.implanted_at)),
            ("Drug and concentration", drug),
        ),
    )


def _patient_line(patient: Patient) -> str:
    return f"{patient.name} · MRN {patient.mrn}"


def _footer(printed_at: datetime, printed_by: User, times: TimeWords) -> str:
    return f"Printed {times.clinic(printed_at)} by {_who(printed_by)}. {DISCLAIMER}"


# The refill record ---------------------------------------------------------------------------
def refill_printout(
    db: Session,
    patient: Patient,
    visit_id: int,
    printed: tuple[datetime, User],
    times: TimeWords = TimeWords(),
) -> Printout:
    """A completed refill visit of ``patient`` as a printable record."""
    visit = db.get(Visit, visit_id)
    if visit is None or visit.patient_id != patient.id or visit.kind != VisitKind.REFILL:
        raise NotFoundError(f"no refill visit {visit_id} for this patient")
    record = db.execute(
        select(RefillRecord).where(RefillRecord.visit_id == visit.id)
    ).scalar_one_or_none()
    pump = db.get(Pump, visit.pump_id) if visit.pump_id is not None else None
    if record is None or pump is None:
        raise ConflictError("this refill was not applied by the pump: there is no record to print")
    details = json.loads(visit.details_json)
    flagged = "flagged" if record.discrepancy_flagged else "within the expected range"
    refill = Section(
        "Refill",
        (
            ("Done by", _who(visit.user)),
            ("Started", times.clinic(visit.started_at)),
            ("Completed", times.clinic(visit.completed_at)),
            ("Expected in the reservoir", _number(record.expected_ml, "mL")),
            ("Withdrawn", _number(record.withdrawn_ml, "mL")),
            ("Difference", f"{_number(record.discrepancy_ml, 'mL')} ({flagged})"),
            ("Filled", _number(record.filled_ml, "mL")),
            ("Concentration", f"{record.concentration_ug_per_ml:g} µg/mL"),
            *(
                (("Note", str(details["discrepancy_note"])),)
                if details.get("discrepancy_note")
                else ()
            ),
        ),
    )
    sections = [_pump_section(pump, record.concentration_ug_per_ml, times), refill]
    version = _program_at(db, pump, visit.started_at)
    if version is not None:
        program = program_from_dict(json.loads(version.program_json))
        sections += schedule_sections(program, f"Program in force (version {version.version})")
    sections.append(_stored_alarms(db, pump, times))
    return Printout(
        f"Refill record: pump {pump.serial}",
        _patient_line(patient),
        tuple(sections),
        _footer(*printed, times),
    )


def _program_at(db: Session, pump: Pump, at: datetime) -> ProgramVersion | None:
    """The program version in force at ``at`` (the latest one created by then)."""
    return db.execute(
        select(ProgramVersion)
        .where(ProgramVersion.pump_id == pump.id, ProgramVersion.created_at <= at)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


# The interrogation report ------------------------------------------------------------------
def interrogation_printout(
    db: Session,
    patient: Patient,
    printed: tuple[datetime, User],
    times: TimeWords = TimeWords(),
) -> Printout:
    """The last interrogation of the patient's pump, as a printable report."""
    pump = active_pump(db, patient)
    reading = last_interrogation(db, pump)
    if reading is None:
        raise ConflictError(f"pump {pump.serial} has not been interrogated yet")
    status = stored_status(reading)
    sections = [
        _pump_section(pump, status.concentration_ug_per_ml, times),
        Section(
            "Interrogation",
            (
                ("Done by", _interrogated_by(db, pump, reading, times)),
                ("Pump clock at the reading", times.pump(status.now)),
                ("Mode", _words(status.mode.value)),
                ("Reservoir", _number(status.reservoir_ml, "mL")),
                ("Low-reservoir alarm at", _number(status.low_reservoir_alarm_ml, "mL", "{:g}")),
                ("Battery left", _number(status.battery.remaining_mah, "mAh", "{:.1f}")),
                ("Delivered since implant", _number(status.delivered_ug, "µg", "{:.1f}")),
            ),
        ),
    ]
    if status.program is not None:
        sections += schedule_sections(status.program, "Program read from the pump")
    sections.append(_status_alarms(status, times))
    return Printout(
        f"Interrogation report: pump {pump.serial}",
        _patient_line(patient),
        tuple(sections),
        _footer(*printed, times),
    )


def _status_alarms(status: PumpStatus, times: TimeWords) -> Section:
    rows = [
        (
            _words(a.kind.value),
            _words(a.priority.value),
            times.pump(a.at),
            "active" if a.active else "cleared",
        )
        for a in sorted(status.alarms, key=lambda a: not a.active)
    ]
    return _alarm_section(rows)


def _interrogated_by(db: Session, pump: Pump, reading: Interrogation, times: TimeWords) -> str:
    """Who read the pump: the audit log's interrogation entry for it (the demo's first
    reading has none)."""
    entry = db.execute(
        select(AuditEntry)
        .where(AuditEntry.action == "pump.interrogate", AuditEntry.entity_id == pump.serial)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if entry is None:
        return f"not recorded (stored {times.pump(reading.at)})"
    user = db.get(User, entry.user_id) if entry.user_id is not None else None
    return _who(user, entry.username)


__all__ = [
    "Printout",
    "Section",
    "TimeWords",
    "interrogation_printout",
    "minute",
    "refill_printout",
    "schedule_sections",
]
