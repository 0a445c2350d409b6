"""The crash-safe command visit: one unit that owns both commits around a pump command.

Theory of operation (LoopKit's "uncertain delivery"): a command to an implanted pump can be
applied while its answer is lost, and the clinic's process can die at any point. So a command
visit is two transactions around the command:

1. **sent**: the visit is committed as ``pump_command_sent``, with the pump's last event-log
   sequence number (``seq_before``), *before* the command leaves;
2. **completed**: after the pump's answer, a fresh reading is stored and the visit's records
   (the refill record, the program version) are written and committed with it, in one go.

Between the two, the outcome decides:

==================================  ===========================================================
the pump refused (changed nothing)  visit ``failed`` with the reason; InputError naming the field
never left (link down)              visit ``not_applied``; PumpUnreachableError
sent, no answer (uncertain)         visit stays ``pump_command_sent``; PumpCommandUncertainError
the process died                    visit stays ``pump_command_sent``
==================================  ===========================================================

A visit left ``pump_command_sent`` is settled from the pump's own event log
(:func:`settle_pending`): an entry of the command's kind after ``seq_before`` means it was
applied (``completed_after_restart``, its records written then), none means ``not_applied``.
This runs at the clinic's start (:func:`reconcile_pending`), at the next interrogation and before
the next command to that pump (which is refused while one is still pending).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.errors import ConflictError
from itb.clinic.models import Patient, Pump, PumpEvent, User, Visit, VisitKind, VisitStatus
from itb.clinic.pumps import (
    PumpCommandRefusedError,
    PumpLink,
    PumpLinks,
    PumpUnreachableError,
)
from itb.clinic.services.history import ingest_reading
from itb.clinic.services.lookups import NewVisit, add_program_version, add_visit, pump_snapshot
from itb.clinic.services.refill_rules import record_refill
from itb.errors import InputError
from itb.pump.alarms import ALARM_TEST_EVENT
from itb.therapy import program_from_dict

_T = TypeVar("_T")

# Event-log kinds that show a command was applied (names from itb.pump.eventlog).
REFILL_EVENT_KINDS = frozenset({"refill"})
PROGRAM_EVENT_KINDS = frozenset({"program"})
APPLIED_EVENT_KINDS = {
    VisitKind.REFILL: REFILL_EVENT_KINDS,
    # the pump page's commands (services/pump_actions.py): applied = their log entry; they
    # write no record but the visit itself
    VisitKind.BOLUS: frozenset({"bolus_start"}),
    VisitKind.STOP: frozenset({"stop"}),
    VisitKind.RESUME: frozenset({"resume"}),
    VisitKind.CLEAR_ALARM: frozenset({"alarm_cleared"}),
    VisitKind.ALARM_TEST: frozenset({ALARM_TEST_EVENT}),
}  # any other: a program change
RECORDLESS_KINDS = frozenset(
    {VisitKind.BOLUS, VisitKind.STOP, VisitKind.RESUME, VisitKind.CLEAR_ALARM, VisitKind.ALARM_TEST}
)

# What a completed visit writes: the visit (status set), the pump's state just before the
# reading that confirmed the command (for the audit log) and the time; returns its record.
Completion = Callable[[Visit, dict[str, Any], datetime], _T]


@dataclass(frozen=True, slots=True)
class PumpCommand:
    """One command to the patient's active pump, as a visit."""

    patient: Patient
    pump: Pump
    user: User
    kind: VisitKind
    at: datetime
    details: dict[str, Any]  # what the visit and the audit log keep
    send: Callable[[PumpLink], None]


def run_command_visit(
    db: Session,
    link: PumpLink,
    command: PumpCommand,
    complete: Completion[_T],
    after_pump_command: Callable[[], None] | None = None,
) -> _T:
    """Commit the visit as sent, send the command, then store the pump's answer and the
    visit's records in one second commit (``complete`` writes the records)."""
    visit = _start_command_visit(db, command)
    _send(db, visit, command.at, lambda: command.send(link))
    if after_pump_command:
        after_pump_command()  # the tests' crash point: the command applied, nothing stored
    pump = command.pump
    before = pump_snapshot(pump)
    ingest_reading(db, pump, link.interrogate(pump.last_event_seq), visit)
    result = complete(visit, before, command.at)
    db.commit()
    return result


def refuse_if_pending(db: Session, pump: Pump) -> None:
    pending = pending_visits(db, pump)
    if pending:
        raise ConflictError(
            f"visit {pending[0].id} still has a pump command in flight; reconcile it first"
        )


def pending_visits(db: Session, pump: Pump) -> list[Visit]:
    return list(
        db.execute(
            select(Visit)
            .where(Visit.pump_id == pump.id, Visit.status == VisitStatus.PUMP_COMMAND_SENT.value)
            .order_by(Visit.id)
        ).scalars()
    )


def _start_command_visit(db: Session, command: PumpCommand) -> Visit:
    """Commit the visit as ``pump_command_sent`` before the command leaves."""
    visit = add_visit(
        db,
        NewVisit(
            command.patient,
            command.pump,
            command.user,
            command.kind,
            command.at,
            {**command.details, "seq_before": command.pump.last_event_seq},
            status=VisitStatus.PUMP_COMMAND_SENT,
        ),
    )
    audit.record(
        db, command.user, f"visit.{command.kind.value}.sent", "visit", visit.id, None,
        command.details,
    )  # fmt: skip
    db.commit()
    return visit


def _send(db: Session, visit: Visit, now: datetime, command: Callable[[], None]) -> None:
    """Send the command; a refusal (the pump changed nothing) fails the visit and says why; a
    link that failed before the command left marks it not applied."""
    try:
        command()
    except PumpCommandRefusedError as exc:
        _close(db, visit, VisitStatus.FAILED, now, "refused by the pump", exc)
        raise InputError(exc.field, exc.reason, f"the pump refused the command: {exc}") from None
    except PumpUnreachableError as exc:  # the command never left: certainly not applied
        _close(db, visit, VisitStatus.NOT_APPLIED, now, "not sent", exc)
        raise
    # PumpCommandUncertainError (sent, no answer) propagates: the visit stays
    # pump_command_sent and settle_pending settles it from the pump's event log.


def _close(
    db: Session, visit: Visit, status: VisitStatus, now: datetime, why: str, exc: Exception
) -> None:
    """End a visit whose command was certainly not applied, in its own commit."""
    complete_visit(visit, status, now)
    visit.notes = f"{why}: {exc}"
    action = "visit.failed" if status is VisitStatus.FAILED else "visit.not_applied"
    audit.record(db, None, action, "visit", visit.id, None, {"reason": str(exc)})
    db.commit()


def complete_visit(visit: Visit, status: VisitStatus, now: datetime) -> None:
    visit.status = status.value
    visit.completed_at = now


# Settling after a lost answer or a crash -----------------------------------------------------
def reconcile_pending(db: Session, links: PumpLinks, now: datetime) -> list[Visit]:
    """At start: settle each visit left ``pump_command_sent`` from its pump's event log."""
    pump_ids = db.execute(
        select(Visit.pump_id).where(Visit.status == VisitStatus.PUMP_COMMAND_SENT.value).distinct()
    ).scalars()
    settled: list[Visit] = []
    for pump_id in list(pump_ids):
        pump = db.get(Pump, pump_id)
        if pump is not None:
            settled.extend(settle_pending(db, links, pump, now))
    return settled


def settle_pending(db: Session, links: PumpLinks, pump: Pump, now: datetime) -> list[Visit]:
    """Settle this pump's visits left ``pump_command_sent`` from a fresh reading of its event
    log (one session, only when something is pending): before the next command, at start."""
    pending = pending_visits(db, pump)
    if not pending:
        return []
    reading = links.link(pump.serial).interrogate(pump.last_event_seq)
    ingest_reading(db, pump, reading, pending[0])
    return settle_from_stored_log(db, pump, pending, now)


def settle_from_stored_log(
    db: Session, pump: Pump, pending: list[Visit], now: datetime
) -> list[Visit]:
    """Settle ``pending`` from the pump's event log as already stored (a reading just
    ingested), each visit in its own commit."""
    for visit in pending:
        details = json.loads(visit.details_json)
        kinds = APPLIED_EVENT_KINDS.get(VisitKind(visit.kind), PROGRAM_EVENT_KINDS)
        applied = _event_after(db, pump, details["seq_before"], kinds)
        if applied is not None and visit.kind == VisitKind.REFILL:
            status = VisitStatus.COMPLETED_AFTER_RESTART
            record_refill(db, pump, visit, None, pump_snapshot(pump), now, status)
        else:
            if applied is not None and VisitKind(visit.kind) not in RECORDLESS_KINDS:
                program = program_from_dict(details["program"])
                add_program_version(db, pump, program, visit.user, visit, applied.at)
            status = VisitStatus.COMPLETED_AFTER_RESTART if applied else VisitStatus.NOT_APPLIED
            complete_visit(visit, status, now)
            audit.record(
                db, None, "visit.reconciled", "visit", visit.id, None, {"status": status.value}
            )
        db.commit()
    return pending


def _event_after(
    db: Session, pump: Pump, seq_before: int, kinds: frozenset[str]
) -> PumpEvent | None:
    return db.execute(
        select(PumpEvent)
        .where(
            PumpEvent.serial == pump.serial, PumpEvent.seq > seq_before, PumpEvent.kind.in_(kinds)
        )
        .order_by(PumpEvent.seq)
        .limit(1)
    ).scalar_one_or_none()
