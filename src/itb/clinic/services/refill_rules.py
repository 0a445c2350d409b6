"""What a refill checks and what it stores: the entered volumes, the withdrawn-volume check,
the refill record.

The checks are the shared device and drug rules (never overfill: ``PumpModel.check_fill``;
the drug library: ``BACLOFEN.check_concentration``) and the programmer's withdrawn-volume check
(S28 and the pump's accuracy band, ``itb.programmer.refill``). :func:`record_refill` writes the
refill record once the pump has applied the refill: right after its answer, or at a restart from
its event log (``commands.settle_pending``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import Pump, RefillRecord, User, Visit, VisitStatus
from itb.clinic.services.lookups import pump_snapshot
from itb.clinic.urgency import days_until, reservoir_plan
from itb.drugs import BACLOFEN
from itb.errors import InputError
from itb.programmer.refill import DiscrepancyCheck, check_withdrawn_volume
from itb.pump.hardware import pump_model

# what the user said about a flagged withdrawn volume, kept in the visit and the audit log
DISCREPANCY_ACK_KEYS = ("discrepancy_acknowledged", "discrepancy_note")


@dataclass(frozen=True, slots=True)
class RefillInput:
    """A refill as entered: the volumes and, for a flagged withdrawn volume, the user's
    acknowledgement and note (kept in the visit and the audit log)."""

    withdrawn_ml: float
    filled_ml: float
    concentration_ug_per_ml: float
    acknowledge_discrepancy: bool = False
    discrepancy_note: str = ""
    # a refill at another concentration than the pump's: the physician's confirmation of the
    # bridge bolus and the program at the new concentration (services.concentration_change)
    confirm_concentration_change: bool = False


def validate_refill(pump: Pump, values: RefillInput) -> RefillInput:
    model = pump_model(pump.model)
    if not (
        math.isfinite(values.withdrawn_ml) and 0.0 <= values.withdrawn_ml <= model.reservoir_ml
    ):
        raise InputError(
            "withdrawn_ml",
            f"{values.withdrawn_ml:g} mL; allowed 0 to {model.reservoir_ml:g} mL",
        )
    model.check_fill(values.filled_ml, "filled_ml")  # never overfill (S26 S27)
    BACLOFEN.check_concentration(values.concentration_ug_per_ml)
    return values


def expected_volume_ml(pump: Pump, now: datetime) -> float | None:
    """What the reservoir should hold now: the last reading less the refill plan's volume per
    day (docs/refill.md) for the days since."""
    if pump.reservoir_ml is None or pump.state_at is None:
        return None
    plan = reservoir_plan(
        pump.model,
        pump.reservoir_ml,
        pump.low_reservoir_alarm_ml,
        pump.daily_dose_ug,
        pump.concentration_ug_per_ml,
    )
    if plan is None:
        return pump.reservoir_ml
    elapsed_days = max(days_until(now, pump.state_at) or 0.0, 0.0)
    return max(pump.reservoir_ml - elapsed_days * plan.volume_per_day_ml, 0.0)


def withdrawn_volume_check(pump: Pump, details: dict[str, Any]) -> DiscrepancyCheck:
    """The programmer's withdrawn-volume check (S28 and the pump's accuracy band)."""
    model = pump_model(pump.model)
    return check_withdrawn_volume(
        model,
        min(max(details["expected_ml"], 0.0), model.reservoir_ml),
        details["withdrawn_ml"],
        # a visit stored before this field existed: the pump's whole reservoir less what is left
        details.get("delivered_since_fill_ml", model.reservoir_ml - details["expected_ml"]),
    )


def record_refill(
    db: Session,
    pump: Pump,
    visit: Visit,
    user: User | None,
    before: dict[str, Any],
    now: datetime,
    status: VisitStatus,
) -> RefillRecord:
    """The refill record of an applied refill visit, and its audit entry (not committed): the
    volumes from the visit, the fill date from the pump's reading just stored."""
    details = json.loads(visit.details_json)
    check = withdrawn_volume_check(pump, details)
    record = RefillRecord(
        visit_id=visit.id,
        pump_id=pump.id,
        at=pump.filled_at or now,
        expected_ml=details["expected_ml"],
        withdrawn_ml=details["withdrawn_ml"],
        filled_ml=details["filled_ml"],
        concentration_ug_per_ml=details["concentration_ug_per_ml"],
        discrepancy_ml=check.discrepancy_ml,
        discrepancy_flagged=check.flagged,
    )
    db.add(record)
    visit.status = status.value
    visit.completed_at = now
    audit.record(
        db,
        user,
        "pump.refill",
        "pump",
        pump.serial,
        before,
        {
            **pump_snapshot(pump),
            "visit_id": visit.id,
            "visit_status": status.value,
            **{k: v for k, v in details.items() if k in DISCREPANCY_ACK_KEYS},
        },
    )
    return record
