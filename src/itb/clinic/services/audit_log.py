"""The audit log as the administrator and the physician read it: filtered, newest first, each
entry in words (what, on what, before and after as labelled values, never the raw record);
and the chain's verification (clinic/audit.py) said in words.

Times are the log's own, UTC, to the minute; the date filters are UTC too (the page says so).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import InputError
from itb.clinic.models import AuditEntry, Patient, Pump, RefillRecord, User, Visit

PAGE_ENTRIES = 200  # the newest this many match; narrow the filters to see older ones
FILTER_MAX_CHARS = 64

# What an entry's action means, in words; an action not listed is shown with its dots as
# spaces ("family.report.acknowledge": "family report acknowledge").
ACTION_WORDS = {
    "login": "Logged in",
    "login.failed": "Failed log-in",
    "logout": "Logged out",
    "user.add": "Account created",
    "user.disable": "Account disabled",
    "user.enable": "Account enabled",
    "user.password_reset": "Password reset (one-time password issued)",
    "user.password_change": "Own password changed",
    "user.role_change": "Role changed",
    "audit.verify": "Audit log chain verified",
    "caregiver.invite": "Caregiver invited",
    "caregiver.revoke": "Caregiver access revoked",
    "caregiver.password_set": "Caregiver set their password",
    "family.report": "Family report sent",
    "family.report.acknowledge": "Family report acknowledged",
}


def action_words(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace(".", " ").replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """The filters as typed: who (username), what (an action, or its first word such as
    "user"), patient (MRN), and a UTC date range to the minute."""

    who: str = ""
    what: str = ""
    patient: str = ""
    from_utc: str = ""
    to_utc: str = ""


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    at_utc: datetime
    who: str
    what: str
    on: str
    before: list[tuple[str, str]]
    after: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[EntryRow]
    more: bool  # older matching entries exist beyond PAGE_ENTRIES
    actions: list[str] = field(default_factory=list)  # every action in the log, for the filter


def _minute(name: str, typed: str) -> datetime | None:
    typed = typed.strip()
    if not typed:
        return None
    try:
        value = datetime.fromisoformat(typed)
    except ValueError:
        raise InputError(name, "a date and time in UTC, to the minute (2026-12-31 14:05)") from None
    return value.replace(tzinfo=None, second=0, microsecond=0)


# a time as the log stores it (ISO, seconds and microseconds); shown to the minute
_STORED_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$"
)


def _value_words(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and (time := _STORED_TIME.match(value)):
        return f"{time.group(1)} {time.group(2)}"
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {_value_words(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value_words(v) for v in value)
    return str(value)


# a stored field's unit suffix, as a reader writes the unit (longest first)
_UNIT_SUFFIXES = (
    ("_ug_per_day", "µg/day"),
    ("_ug_per_ml", "µg/mL"),
    ("_ug_per_h", "µg/h"),
    ("_utc", "UTC"),
    ("_ml", "mL"),
    ("_ug", "µg"),
    ("_mas", "MAS"),
    ("_cm", "cm"),
    ("_h", "h"),
    ("_s", "s"),
)


def _label(key: str) -> str:
    """A stored field name in words, its unit in brackets: ``filled_ml`` -> ``Filled (mL)``."""
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{_label(key[: -len(suffix)])} ({unit})"
    return key.replace("_", " ").capitalize()


def _pairs(raw: str) -> list[tuple[str, str]]:
    """A stored before/after as (label, value) pairs in words."""
    try:
        value = json.loads(raw)
    except ValueError:
        return [("Value", raw)]
    if value is None:
        return []
    if isinstance(value, dict):
        return [(_label(str(k)), _value_words(v)) for k, v in value.items()]
    return [("Value", _value_words(value))]


def _about_patient(db: Session, mrn: str) -> Any:
    """The entries about one patient: the patient, their pumps (by serial), their visits and
    refill records (the services audit each under its own entity)."""
    pid = db.execute(
        select(Patient.id).where(func.lower(Patient.mrn) == mrn.strip().lower())
    ).scalar_one_or_none()
    if pid is None:
        raise InputError("patient", "the MRN of a patient of this clinic (DEMO-001, say)")
    visits = select(cast(Visit.id, String)).where(Visit.patient_id == pid)
    refills = (
        select(cast(RefillRecord.id, String))
        .join(Visit, RefillRecord.visit_id == Visit.id)
        .where(Visit.patient_id == pid)
    )
    serials = select(Pump.serial).where(Pump.patient_id == pid)
    return or_(
        and_(AuditEntry.entity == "patient", AuditEntry.entity_id == str(pid)),
        and_(AuditEntry.entity == "pump", AuditEntry.entity_id.in_(serials)),
        and_(AuditEntry.entity == "visit", AuditEntry.entity_id.in_(visits)),
        and_(AuditEntry.entity == "refill_record", AuditEntry.entity_id.in_(refills)),
    )


def _query(db: Session, wanted: AuditFilter) -> Any:
    for name, typed in (("who", wanted.who), ("what", wanted.what), ("patient", wanted.patient)):
        if len(typed) > FILTER_MAX_CHARS:
            raise InputError(name, f"at most {FILTER_MAX_CHARS} characters")
    start, end = _minute("from", wanted.from_utc), _minute("to", wanted.to_utc)
    if start is not None and end is not None and end < start:
        raise InputError("to", "the end of the range must not be before its start")
    query = select(AuditEntry)
    if wanted.who.strip():
        query = query.where(AuditEntry.username == wanted.who.strip())
    if what := wanted.what.strip():
        query = query.where((AuditEntry.action == what) | AuditEntry.action.startswith(f"{what}."))
    if wanted.patient.strip():
        query = query.where(_about_patient(db, wanted.patient))
    if start is not None:
        query = query.where(AuditEntry.at_utc >= start)
    if end is not None:  # to the minute: the whole of the end's minute is in the range
        query = query.where(AuditEntry.at_utc < end + timedelta(minutes=1))
    return query


def _names(db: Session, entries: list[AuditEntry]) -> dict[tuple[str, str], str]:
    """What each entry was about, by name: a patient's MRN, an account's username."""
    patient_ids = {
        int(e.entity_id) for e in entries if e.entity == "patient" and e.entity_id.isdigit()
    }
    user_ids = {int(e.entity_id) for e in entries if e.entity == "user" and e.entity_id.isdigit()}
    names: dict[tuple[str, str], str] = {}
    if patient_ids:
        for pid, mrn in db.execute(
            select(Patient.id, Patient.mrn).where(Patient.id.in_(patient_ids))
        ):
            names["patient", str(pid)] = f"Patient {mrn}"
    visit_ids = {int(e.entity_id) for e in entries if e.entity == "visit" and e.entity_id.isdigit()}
    if visit_ids:
        of_visit = select(Visit.id, Patient.mrn).join(Patient, Visit.patient_id == Patient.id)
        for vid, mrn in db.execute(of_visit.where(Visit.id.in_(visit_ids))):
            names["visit", str(vid)] = f"Visit {vid} of patient {mrn}"
    serials = {e.entity_id for e in entries if e.entity == "pump"}
    if serials:
        of_pump = select(Pump.serial, Patient.mrn).join(Patient, Pump.patient_id == Patient.id)
        for serial, mrn in db.execute(of_pump.where(Pump.serial.in_(serials))):
            names["pump", serial] = f"Pump {serial} of patient {mrn}"
    if user_ids:
        for uid, username in db.execute(
            select(User.id, User.username).where(User.id.in_(user_ids))
        ):
            names["user", str(uid)] = f"Account {username}"
    return names


def audit_page(db: Session, wanted: AuditFilter) -> AuditPage:
    """The newest entries that match, in words."""
    query = _query(db, wanted).order_by(AuditEntry.id.desc()).limit(PAGE_ENTRIES + 1)
    entries = list(db.execute(query).scalars())
    more = len(entries) > PAGE_ENTRIES
    entries = entries[:PAGE_ENTRIES]
    names = _names(db, entries)
    rows = [
        EntryRow(
            id=e.id,
            at_utc=e.at_utc,
            who=e.username,
            what=action_words(e.action),
            on=names.get((e.entity, e.entity_id), f"{_label(e.entity)} {e.entity_id}"),
            before=_pairs(e.before_json),
            after=_pairs(e.after_json),
        )
        for e in entries
    ]
    actions = list(
        db.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars()
    )
    return AuditPage(rows, more, actions)


@dataclass(frozen=True, slots=True)
class ChainWords:
    intact: bool
    sentence: str
    broken_at_id: int | None = None


def verify_in_words(db: Session, actor: User) -> ChainWords:
    """Run the chain's verification and say what it found; the check itself is audited.
    Commits."""
    report = audit.verify_chain(db)
    if report.intact:
        words = ChainWords(
            True,
            f"The audit log is intact: all {report.entries:,} entries check out, each linked to "
            "the one before it, none changed or removed.",
        )
    else:
        broken = db.get(AuditEntry, report.first_broken_id)
        when = f", recorded {broken.at_utc:%Y-%m-%d %H:%M} UTC" if broken else ""
        words = ChainWords(
            False,
            f"The audit log is NOT intact: entry number {report.first_broken_id}{when} does not "
            "match its record or its link to the entry before it, so it or an earlier entry was "
            "changed, inserted or removed after it was written. Entries from there on cannot be "
            "trusted; keep the database as it is and tell the clinic's security officer.",
            report.first_broken_id,
        )
    audit.record(
        db, actor, "audit.verify", "audit_log", "chain", None,
        {"entries": report.entries, "intact": report.intact},
    )  # fmt: skip
    db.commit()
    return words
