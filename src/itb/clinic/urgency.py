"""When each pump needs the care team, and when the patient comes to harm without it.

Two kinds of date. *Due* dates say when the care team must act: the low-reservoir alarm, the
drug's stability limit, ERI (the soonest is ``next_due_at``). *Harm* dates say when the patient
is hurt if nobody acts: the reservoir runs dry (at the fast end of the pump's accuracy band: the
earliest it can), the battery stops delivering (the pump's predicted EOS), the drug in the
reservoir expires (its stability limit), or, for a pump read as stopped, in its safe state or at
EOS, now: it is not delivering the program. The dashboard ranks by the soonest harm
(``harm_at``) and names it (``harm``): a pump past ERI with months of delivery left is less
urgent than a reservoir three days from dry (issue 11, H35). A refill due after EOS cannot be
done (the pump stops first): ``refill_after_eos`` marks that conflict.

The reservoir dates and the next refill come from the programmer's refill plan
(:func:`itb.programmer.refill.plan_refill`, docs/refill.md), computed from the state read at the
last interrogation as if the program keeps running as it is: the same alarm threshold, the same
5-day safety margin (S24) and the same stability limit the programmer shows at a refill.

ERI and EOS are the pump's own: the dates its firmware predicts (or entered) and reported at
the last interrogation. Only a pump never read (recorded in the operating room, no telemetry
yet) falls back to the pump model's figures from the implant date, as the device rules in
:mod:`itb.pump.hardware` state them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from itb.drugs import BACLOFEN
from itb.guardrails import LimitError
from itb.programmer.refill import RefillInput, RefillSchedule, plan_refill
from itb.pump.hardware import UnknownModelError, pump_model
from itb.pump.status import Mode
from itb.units import SECONDS_PER_DAY, SECONDS_PER_YEAR


class Harm(enum.StrEnum):
    """What hurts the patient first if nobody acts."""

    RESERVOIR_EMPTY = "reservoir_empty"
    BATTERY_EOS = "battery_eos"
    DRUG_EXPIRED = "drug_expired"
    NOT_DELIVERING = "not_delivering"
    # the family reports an alarm or a withdrawal sign: harm now, until a clinician
    # acknowledges it (services/family.py, issue 16)
    FAMILY_REPORT = "family_report"


# The words a screen shows for each harm.
HARM_WORDS = {
    Harm.RESERVOIR_EMPTY: "reservoir runs dry (fast end of the pump's accuracy band)",
    Harm.BATTERY_EOS: "battery stops delivering (end of service)",
    Harm.DRUG_EXPIRED: "drug in the reservoir past its stability limit",
    Harm.NOT_DELIVERING: "pump not delivering its program (stopped, safe state or end of service)",
    Harm.FAMILY_REPORT: "the family reports an alarm or a withdrawal sign (not yet acknowledged)",
}


def keeps_family_report(harm: str | None) -> bool:
    """A pump whose harm is an open family report keeps it when its dates are projected again
    (a new reading): only a clinician's acknowledgement ends it (services/family.py)."""
    return harm == Harm.FAMILY_REPORT.value


# Modes in which the pump is not delivering the program: withdrawal has already begun (S3).
NOT_DELIVERING_MODES = frozenset({Mode.STOPPED.value, Mode.SAFE_STATE.value, Mode.EOS.value})


@dataclass(frozen=True, slots=True)
class ObservedState:
    """A pump's state as last observed at ``at`` (read from it, or entered at the implant)."""

    at: datetime
    model: str
    implanted_at: datetime
    reservoir_ml: float | None
    low_reservoir_alarm_ml: float
    daily_dose_ug: float | None
    concentration_ug_per_ml: float | None
    filled_at: datetime | None = None
    # the pump's reported ERI and EOS (predicted by its firmware, or entered); None: not read
    battery_eri_at: datetime | None = None
    battery_eos_at: datetime | None = None
    mode: str | None = None  # the pump's mode as read (Mode's value); None: not read


@dataclass(frozen=True, slots=True)
class DueDates:
    low_reservoir_at: datetime | None
    empty_at: datetime | None
    stability_at: datetime | None
    eri_at: datetime | None
    next_refill_at: datetime | None = None
    # why the next refill is then, or why the reservoir dates are missing (plan_refill's words)
    note: str = ""
    eos_at: datetime | None = None
    # the soonest harm (see the module's docstring) and what it is
    harm_at: datetime | None = None
    harm: Harm | None = None
    # the earliest the reservoir can run dry (the fast end of the pump's accuracy band)
    empty_at_fastest_flow: datetime | None = None

    @property
    def next_due_at(self) -> datetime | None:
        dates = [d for d in (self.low_reservoir_at, self.stability_at, self.eri_at) if d]
        return min(dates) if dates else None

    @property
    def refill_after_eos(self) -> bool:
        return refill_after_eos(self.next_refill_at, self.eos_at)


def refill_after_eos(next_refill_at: datetime | None, eos_at: datetime | None) -> bool:
    """A refill due at or after EOS cannot be done: the pump stops delivering first, so the
    replacement must come before it (a conflict the dashboard and the calendar show)."""
    return next_refill_at is not None and eos_at is not None and next_refill_at >= eos_at


def soonest_harm(
    at: datetime,
    mode: str | None,
    empty_at: datetime | None,
    eos_at: datetime | None,
    stability_at: datetime | None,
) -> tuple[datetime | None, Harm | None]:
    """The first harm and its date; ties go to the order of :class:`Harm`."""
    if mode in NOT_DELIVERING_MODES:
        return at, Harm.NOT_DELIVERING
    candidates = [
        (when, harm)
        for when, harm in (
            (empty_at, Harm.RESERVOIR_EMPTY),
            (eos_at, Harm.BATTERY_EOS),
            (stability_at, Harm.DRUG_EXPIRED),
        )
        if when is not None
    ]
    if not candidates:
        return None, None
    when, harm = min(candidates, key=lambda c: c[0])
    return when, harm


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
            RefillInput(
                pump_model(model),
                max(reservoir_ml, 0.0),
                concentration_ug_per_ml,
                daily_dose_ug,
                low_reservoir_alarm_ml,
            )
        )
    except (LimitError, UnknownModelError, ValueError):
        return None


def due_dates(state: ObservedState) -> DueDates:
    """Projected dates from the state observed at ``state.at`` (a constant program is assumed).

    ``plan_refill`` counts from ``at`` as if the reservoir had just been filled; the drug's
    stability limit runs from the real fill date instead, so the next refill is the earlier of
    the plan's date (counted from ``at``) and the fill date plus the plan's stability days.
    """
    low_at = empty_at = fastest_empty_at = next_refill = None
    note = ""
    flow_ml_per_day = 0.0
    # the drug library's stability in the reservoir, the figure plan_refill uses too
    filled_at = state.filled_at
    stability_at = filled_at + timedelta(days=BACLOFEN.stability_days) if filled_at else None
    plan = reservoir_plan(
        state.model,
        state.reservoir_ml,
        state.low_reservoir_alarm_ml,
        state.daily_dose_ug,
        state.concentration_ug_per_ml,
    )
    if plan is not None:
        flow_ml_per_day = plan.volume_per_day_ml
        low_at = state.at + timedelta(days=plan.days_to_low_reservoir)
        empty_at = state.at + timedelta(days=plan.days_to_empty)
        fastest_empty_at = state.at + timedelta(days=plan.days_to_empty_at_fastest_flow)
        next_refill = state.at + timedelta(days=plan.next_refill_days)
        note = plan.next_refill_reason
    if stability_at is not None and (next_refill is None or stability_at < next_refill):
        next_refill = stability_at
        note = f"the drug's stability limit in the reservoir, {BACLOFEN.stability_days:g} days"
    eri_at, eos_at = _battery_dates(state, flow_ml_per_day)
    harm_at, harm = soonest_harm(state.at, state.mode, fastest_empty_at, eos_at, stability_at)
    return DueDates(
        low_at, empty_at, stability_at, eri_at, next_refill, note, eos_at,
        harm_at, harm, fastest_empty_at,
    )  # fmt: skip


def _battery_dates(state: ObservedState, flow_ml_per_day: float) -> tuple[datetime, datetime]:
    """The pump's reported ERI and EOS; for a pump never read, the model's closed form from
    the implant date (a fresh battery at this flow) and its fixed EOS delay after ERI."""
    model = pump_model(state.model)
    eri_at = state.battery_eri_at
    if eri_at is None:
        years = model.years_to_eri(flow_ml_per_day)
        eri_at = state.implanted_at + timedelta(seconds=years * SECONDS_PER_YEAR)
    eos_at = state.battery_eos_at
    if eos_at is None:
        eos_at = eri_at + timedelta(seconds=model.eos_after_eri_s)
    return eri_at, eos_at


def days_until(when: datetime | None, now: datetime) -> float | None:
    """Days from ``now`` to ``when`` (negative: overdue); None when there is no date."""
    if when is None:
        return None
    return (when - now).total_seconds() / SECONDS_PER_DAY
