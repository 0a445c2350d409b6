"""When each pump needs the care team: low reservoir, empty, drug stability limit, battery ERI.

A stop-gap until ``itb.programmer.refill`` lands (the lead swaps it in): the same arithmetic as
the refill plan, from the last known state, assuming the program keeps running as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itb.drugs import BACLOFEN
from itb.pump.hardware import pump_model
from itb.units import SECONDS_PER_DAY, SECONDS_PER_YEAR

# Refill this many days before the low-reservoir alarm date (S24: 3 to 5 days before).
REFILL_MARGIN_DAYS = 4.0
# Replace the pump about six months before it stops (S3); ERI gives 90 days (S21).
ERI_WARNING_DAYS = 180.0


@dataclass(frozen=True, slots=True)
class DueDates:
    low_reservoir_at: datetime | None
    empty_at: datetime | None
    stability_at: datetime | None
    eri_at: datetime | None

    @property
    def next_due_at(self) -> datetime | None:
        dates = [d for d in (self.low_reservoir_at, self.stability_at, self.eri_at) if d]
        return min(dates) if dates else None

    @property
    def next_refill_at(self) -> datetime | None:
        """The refill appointment: a few days before the alarm or the stability limit."""
        dates = [d for d in (self.low_reservoir_at, self.stability_at) if d]
        return min(dates) - timedelta(days=REFILL_MARGIN_DAYS) if dates else None


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
    stability_days: float = BACLOFEN.stability_days,
) -> DueDates:
    """Projected dates from the state observed at ``at`` (a constant program is assumed)."""
    low_at = empty_at = None
    flow_ml_per_day = 0.0
    if reservoir_ml is not None and daily_dose_ug and concentration_ug_per_ml:
        flow_ml_per_day = daily_dose_ug / concentration_ug_per_ml
        days_to_low = max(reservoir_ml - low_reservoir_alarm_ml, 0.0) / flow_ml_per_day
        low_at = at + timedelta(days=days_to_low)
        empty_at = at + timedelta(days=max(reservoir_ml, 0.0) / flow_ml_per_day)
    stability_at = filled_at + timedelta(days=stability_days) if filled_at else None
    eri_at = battery_eri_at
    if eri_at is None:
        years = pump_model(model).years_to_eri(flow_ml_per_day)
        eri_at = implanted_at + timedelta(seconds=years * SECONDS_PER_YEAR)
    return DueDates(low_at, empty_at, stability_at, eri_at)


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
