"""Patient search by name (any prefix of the name or of its last word), MRN or pump serial.

Each kind of match is one prefix range on its own index (migration 0008): the case-folded name
and last word kept on the patient, ``lower(mrn)`` and ``lower(pumps.serial)``. A range
``key <= x < key + U+10FFFF`` is a prefix match on SQLite (binary order) and on PostgreSQL
(the "C" collation of those indexes), so 10,000 patients cost a few index probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, func, select
from sqlalchemy.orm import Session

from itb.clinic.models import Patient, Pump, search_keys
from itb.errors import InputError

QUERY_MAX_CHARS = 64
RESULTS_MAX = 50
_TOP = "\U0010ffff"  # the greatest code point: key + _TOP bounds every string starting with key


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    name: str
    mrn: str
    birth_date: datetime | None
    serial: str | None  # the active pump's, or the matched one's
    matched: str  # "name", "MRN" or "pump serial"


def check_query(text: str) -> str:
    """The text typed in the search box: 1 to 64 printable characters (trimmed)."""
    query = " ".join(text.split())
    if not query or len(query) > QUERY_MAX_CHARS or not query.isprintable():
        raise InputError("q", f"type 1 to {QUERY_MAX_CHARS} characters of a name, MRN or serial")
    return query


def _prefix(column: SQLColumnExpression[Any], key: str, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        column = column.collate("C")
    return (column >= key) & (column < key + _TOP)


def search_patients(db: Session, text: str, limit: int = RESULTS_MAX) -> list[SearchHit]:
    """Patients whose name, last name, MRN or any pump's serial starts with ``text`` (any
    case), by name; at most ``limit``."""
    query = check_query(text)
    postgres = db.get_bind().dialect.name == "postgresql"
    folded, _ = search_keys(query)
    lowered = query.lower()
    columns = (Patient.id, Patient.name, Patient.mrn, Patient.birth_date)
    queries: list[tuple[str, Select[*tuple[Any, ...]]]] = [
        ("name", select(*columns).where(_prefix(Patient.search_name, folded, postgres))),
        ("name", select(*columns).where(_prefix(Patient.search_surname, folded, postgres))),
        ("MRN", select(*columns).where(_prefix(func.lower(Patient.mrn), lowered, postgres))),
        (
            "pump serial",
            select(*columns)
            .join(Pump, Pump.patient_id == Patient.id)
            .where(_prefix(func.lower(Pump.serial), lowered, postgres)),
        ),
    ]
    found: dict[int, SearchHit] = {}
    for matched, statement in queries:
        for row in db.execute(statement.limit(limit)):
            if row.id not in found:
                found[row.id] = SearchHit(row.id, row.name, row.mrn, row.birth_date, None, matched)
    hits = sorted(found.values(), key=lambda h: (h.name.casefold(), h.id))[:limit]
    return _with_serials(db, hits)


def _with_serials(db: Session, hits: list[SearchHit]) -> list[SearchHit]:
    if not hits:
        return hits
    active = select(Pump.patient_id, Pump.serial).where(
        Pump.patient_id.in_([h.id for h in hits]), Pump.active
    )
    serials = {patient_id: serial for patient_id, serial in db.execute(active)}
    return [
        SearchHit(h.id, h.name, h.mrn, h.birth_date, serials.get(h.id), h.matched) for h in hits
    ]
