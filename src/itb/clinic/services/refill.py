"""A refill visit (nurses): read the pump, check the withdrawn volume, refill, store it all.

A refill at another concentration than the pump's is a physician's concentration change, with
its bridge bolus and the program at the new concentration (``concentration_change``, H33).

The pump is read first: the expected volume and the serial check come from the pump itself. A
withdrawn volume the programmer's check flags (S28, the pump's accuracy band) needs the user's
acknowledgement; without it nothing is sent or stored. The command itself goes through the
crash-safe command visit (``commands.run_command_visit``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Patient, Pump, RefillRecord, User, Visit, VisitKind, VisitStatus
from itb.clinic.pumps import PumpLink, PumpLinks, PumpReading
from itb.clinic.services.commands import (
    PumpCommand,
    refuse_if_pending,
    run_command_visit,
    settle_pending,
)
from itb.clinic.services.concentration_change import (
    ChangeRequest,
    check_prescriber,
    plan_change,
    send_bridge_and_program,
)
from itb.clinic.services.history import ingest_reading
from itb.clinic.services.lookups import REASON_MAX_CHARS, active_pump
from itb.clinic.services.refill_rules import (
    RefillInput,
    record_refill,
    validate_refill,
    withdrawn_volume_check,
)
from itb.errors import InputError


class AcknowledgementRequired(InputError):
    """A flagged withdrawn volume not acknowledged: nothing sent, nothing stored (HTTP 422)."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        reason = (
            "the withdrawn volume is flagged (possible pump, catheter or pocket-fill problem); "
            "acknowledge it to refill: " + "; ".join(reasons)
        )
        super().__init__("acknowledge_discrepancy", reason)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (AcknowledgementRequired, (self.reasons,))


def refill(
    db: Session,
    links: PumpLinks,
    patient: Patient,
    user: User,
    values: RefillInput,
    now: datetime,
    after_pump_command: Callable[[], None] | None = None,
) -> RefillRecord:
    """Interrogate, record the visit as sent, refill the pump, then store everything at once.

    A flagged withdrawn volume needs ``values.acknowledge_discrepancy``: without it nothing is
    sent or stored (InputError on ``acknowledge_discrepancy`` with the reasons)."""
    pump = active_pump(db, patient)
    validate_refill(pump, values)
    check_prescriber(user, _change_request(pump, values))  # before the reading: nothing stored
    settle_pending(db, links, pump, now)
    refuse_if_pending(db, pump)
    link = links.link(pump.serial)
    reading = link.interrogate(pump.last_event_seq)
    ingest_reading(db, pump, reading)
    try:  # the concentration now read from the pump
        change = plan_change(db, pump, user, _change_request(pump, values))
    except InputError:
        db.rollback()  # not even the fresh reading: nothing is stored
        raise
    details = _refill_details(db, pump, reading, values)
    if change is not None:
        details["concentration_change"] = change.to_dict()
    given: dict[str, Any] = {}

    def send(link: PumpLink) -> None:
        link.refill(values.filled_ml, values.concentration_ug_per_ml)
        if change is not None:
            given.update(send_bridge_and_program(link, change))

    def complete(visit: Visit, before: dict[str, Any], at: datetime) -> RefillRecord:
        if given:
            visit.details_json = audit.canonical_json(
                {**json.loads(visit.details_json), "concentration_change_given": given}
            )
        return record_refill(db, pump, visit, user, before, at, VisitStatus.COMPLETED)

    command = PumpCommand(patient, pump, user, VisitKind.REFILL, now, details, send)
    return run_command_visit(db, link, command, complete, after_pump_command)


def _change_request(pump: Pump, values: RefillInput) -> ChangeRequest:
    return ChangeRequest(
        pump.concentration_ug_per_ml,
        values.concentration_ug_per_ml,
        values.confirm_concentration_change,
    )


def _refill_details(
    db: Session, pump: Pump, reading: PumpReading, values: RefillInput
) -> dict[str, Any]:
    """What the visit keeps: the volumes, the withdrawn-volume check, the acknowledgement."""
    details: dict[str, Any] = {
        "expected_ml": pump.reservoir_ml or 0.0,
        "withdrawn_ml": values.withdrawn_ml,
        # what the pump counted as delivered since its last fill
        "delivered_since_fill_ml": max(reading.status.delivered_since_refill_ml, 0.0),
        "filled_ml": values.filled_ml,
        "concentration_ug_per_ml": values.concentration_ug_per_ml,
    }
    check = withdrawn_volume_check(pump, details)
    details["discrepancy_check"] = check.to_dict()
    if check.flagged:
        if not values.acknowledge_discrepancy:
            db.rollback()  # not even the fresh reading: nothing is stored
            raise AcknowledgementRequired(check.reasons)
        details["discrepancy_acknowledged"] = True
        details["discrepancy_note"] = values.discrepancy_note.strip()[:REASON_MAX_CHARS]
    return details
