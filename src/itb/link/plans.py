"""What the programmer computes from a pump's own status before it sends anything (pure).

Every rule lives in ``itb.programmer`` (programming.py, refill.py, bridge.py); this module only
feeds those rules what the pump reported (model, concentration, program, volumes: never typed by
hand) and reads the pump's event log for the last concentration change. No link, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from itb.errors import InputError
from itb.programmer.bridge import BridgePlan, plan_concentration_change
from itb.programmer.programming import (
    ProgramChange,
    ProgramReview,
    ReviewContext,
    program_in_force_at,
    review_program,
)
from itb.programmer.refill import (
    DiscrepancyCheck,
    RefillInput,
    RefillSchedule,
    check_withdrawn_volume,
    plan_refill,
)
from itb.pump.hardware import PumpModel, pump_model
from itb.pump.status import PumpStatus
from itb.telemetry.responses import LogRecord
from itb.therapy import Program, ProgramError, program_from_dict

# The label allows one titration increase per 24 h (S46 S52): a change is also judged against
# the program in force this long before it.
TITRATION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RefillPreparation:
    discrepancy: DiscrepancyCheck
    schedule: RefillSchedule
    bridge: BridgePlan | None

    def to_dict(self) -> dict[str, object]:
        return {
            "discrepancy": self.discrepancy.to_dict(),
            "schedule": self.schedule.to_dict(),
            "bridge": None if self.bridge is None else self.bridge.to_dict(),
        }


def model_of(status: PumpStatus) -> PumpModel:
    return pump_model(status.model)


def known_concentration(status: PumpStatus) -> float:
    """The concentration the pump reports; an InputError when it lost it (both memory banks)."""
    if status.concentration_ug_per_ml is None:
        raise InputError(
            "concentration_ug_per_ml",
            "the pump does not know its concentration (its memory was lost); refill it first",
        )
    return status.concentration_ug_per_ml


def daily_dose_after_refill_ug(status: PumpStatus, concentration_ug_per_ml: float) -> float:
    """The daily dose a refill is planned for: the pump's program, or, for a pump that lost its
    concentration (and so its program), the model's minimum flow it runs at the new one."""
    if status.concentration_ug_per_ml is None:
        return model_of(status).min_flow_ml_per_day * concentration_ug_per_ml
    return status.daily_dose_ug


def review_new_program(status: PumpStatus, new: Program, context: ReviewContext) -> ProgramReview:
    """programming.py's review of ``new`` against the program read back from the pump."""
    concentration = known_concentration(status)
    return review_program(model_of(status), status.program, new, concentration, context)


def program_changes(entries: list[LogRecord]) -> list[ProgramChange]:
    """The pump's logged program changes (kind "program", data {"old", "new"}), oldest first.
    An entry whose programs cannot be read is an error, not a change to skip: skipping it could
    hide a stacked increase."""
    changes = []
    for entry in entries:
        if entry.kind != "program":
            continue
        old, new = entry.data.get("old"), entry.data.get("new")
        if not (isinstance(old, dict) and isinstance(new, dict)):
            raise ProgramError("event_log", f"program entry {entry.seq} has no old/new program")
        changes.append(
            ProgramChange(entry.at, program_from_dict(dict(old)), program_from_dict(dict(new)))
        )
    return sorted(changes, key=lambda c: c.at)


def program_24h_ago(status: PumpStatus, entries: list[LogRecord]) -> Program | None:
    """The program the pump ran 24 h before its own clock's now (None: it has none now)."""
    if status.program is None:
        return None
    return program_in_force_at(
        program_changes(entries), status.now - TITRATION_WINDOW, status.program
    )


def prepare_refill(
    status: PumpStatus,
    withdrawn_ml: float,
    volume_ml: float,
    concentration_ug_per_ml: float,
    catheter_volume_ml: float,
) -> RefillPreparation:
    """refill.py's withdrawn-volume check and schedule, with the pump's own figures. A bridge is
    planned when the concentration changes (not when the pump lost the old one: it cannot be
    planned without it)."""
    model = model_of(status)
    discrepancy = check_withdrawn_volume(
        model, status.reservoir_ml, withdrawn_ml, status.delivered_since_refill_ml
    )
    model.check_fill(volume_ml, "fill_ml")
    schedule = plan_refill(
        RefillInput(
            model,
            volume_ml,
            concentration_ug_per_ml,
            daily_dose_after_refill_ug(status, concentration_ug_per_ml),
            status.low_reservoir_alarm_ml,
            filled_on=status.now.date(),
        )
    )
    old_concentration = status.concentration_ug_per_ml
    bridge = None
    if old_concentration is not None and concentration_ug_per_ml != old_concentration:
        bridge = plan_concentration_change(
            model,
            catheter_volume_ml,
            old_concentration,
            concentration_ug_per_ml,
            status.daily_dose_ug,
        )
    return RefillPreparation(discrepancy, schedule, bridge)


def last_concentration_change(entries: list[LogRecord]) -> tuple[float, float] | None:
    """(old, new) µg/mL of the pump's last refill, from its event log, if it changed."""
    for entry in reversed(entries):
        if entry.kind != "refill":
            continue
        old = entry.data.get("old")
        new = entry.data.get("concentration_ug_per_ml")
        if isinstance(old, dict):
            old_c = old.get("concentration_ug_per_ml")
            if isinstance(old_c, int | float) and isinstance(new, int | float) and old_c != new:
                return float(old_c), float(new)
        return None
    return None
