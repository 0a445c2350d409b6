"""When each pump needs the care team: low reservoir, empty, drug stability limit, battery ERI.

The reservoir dates and the next refill come from the programmer's refill plan
(:func:`itb.programmer.refill.plan_refill`, docs/refill.md), computed from the state read at the
last interrogation as if the program keeps running as it is: the same alarm threshold, the same
5-day safety margin (S24) and the same stability limit the programmer shows at a refill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itb.drugs import BACLOFEN
from itb.guardrails import LimitError
from itb.programmer.refill import RefillSchedule, plan_refill
from itb.pump.hardware import UnknownModelError, pump_model
from itb.units import SECONDS_PER_DAY, SECONDS_PER_YEAR

# Replace the pump about six months before it stops (S3); ERI gives 90 days (S21).
ERI_WARNING_DAYS = 180.0


@dataclass(frozen=True, slots=True)
class DueDates:
    low_reservoir_at: datetime | None
    empty_at: datetime | None
    stability_at: datetime | None
    eri_at: datetime | None
    next_refill_at: datetime | None = None
    # why the next refill is then, or why the reservoir dates are missing (plan_refill's words)
    note: str = ""

    @property
    def next_due_at(self) -> datetime | None:
        dates = [d for d in (self.low_reservoir_at, self.stability_at, self.eri_at) if d]
        return min(dates) if dates else None


def reservoir_plan(
    model: str,
    reservoir_ml: float | None,
    low_reservoir_alarm_ml: float,
    daily_dose_ug: float | None,
    concentration_ug_per_ml: float | None,
) -> RefillSchedule | None:
    """The programmer's refill plan for the state read from the pump; None when there is no
    flow to plan for (no reading, a zero dose) or the reading is outside the plan's ranges
    (the refill page then shows the pump's own values only)."""
    if reservoir_ml is None or not daily_dose_ug or not concentration_ug_per_ml:
        return None
    try:
        return plan_refill(
            pump_model(model),
            max(reservoir_ml, 0.0),
            concentration_ug_per_ml,
            daily_dose_ug,
            low_reservoir_alarm_ml,
        )
    except (LimitError, UnknownModelError, ValueError):
        return None


def due_dates(
    at: datetime,
    reservoir_ml: float | None,
    low_reservoir_alarm_ml: float,
    daily_dose_ug: float | None,
    concentration_ug_per_ml: float | None,
    filled_at: datetime | None,
    battery_eri_at: datetime | None,
    model: str,
    implanted_at: datetime,
) -> DueDates:
    """Projected dates from the state observed at ``at`` (a constant program is assumed).

    ``plan_refill`` counts from ``at`` as if the reservoir had just been filled; the drug's
    stability limit runs from the real fill date instead, so the next refill is the earlier of
    the plan's date (counted from ``at``) and the fill date plus the plan's stability days.
    """
    low_at = empty_at = next_refill = None
    note = ""
    flow_ml_per_day = 0.0
    # the drug library's stability in the reservoir, the figure plan_refill uses too
    stability_at = filled_at + timedelta(days=BACLOFEN.stability_days) if filled_at else None
    plan = reservoir_plan(
        model, reservoir_ml, low_reservoir_alarm_ml, daily_dose_ug, concentration_ug_per_ml
    )
    if plan is not None:
        flow_ml_per_day = plan.volume_per_day_ml
        low_at = at + timedelta(days=plan.days_to_low_reservoir)
        empty_at = at + timedelta(days=plan.days_to_empty)
        next_refill = at + timedelta(days=plan.next_refill_days)
        note = plan.next_refill_reason
    if stability_at is not None and (next_refill is None or stability_at < next_refill):
        next_refill = stability_at
        note = f"the drug's stability limit in the reservoir, {BACLOFEN.stability_days:g} days"
    eri_at = battery_eri_at
    if eri_at is None:
        years = pump_model(model).years_to_eri(flow_ml_per_day)
        eri_at = implanted_at + timedelta(seconds=years * SECONDS_PER_YEAR)
    return DueDates(low_at, empty_at, stability_at, eri_at, next_refill, note)


def days_until(when: datetime | None, now: datetime) -> float | None:
    """Days from ``now`` to ``when`` (negative: overdue); None when there is no date."""
    if when is None:
        return None
    return (when - now).total_seconds() / SECONDS_PER_DAY


def eri_estimate(
    at: datetime, model: str, remaining_mah: float, flow_ml_per_day: float
) -> datetime:
    """When the battery reaches ERI at a steady flow, from the charge left at ``at``."""
    pump = pump_model(model)
    to_eri_mah = max(remaining_mah - pump.eri_reserve_mah, 0.0)
    hours = to_eri_mah * 1000.0 / pump.battery_current_ua(flow_ml_per_day)
    return at + timedelta(hours=hours)
