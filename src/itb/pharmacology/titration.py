"""Titration advice: the first pump dose and the next daily-dose step, each with its reason.

A pure decision function with time passed in and a reason for every recommendation (the shape of
oref0's determine-basal). Rules (docs/domain.md):

* first pump dose: twice the positive screening dose per day, or the same dose when its effect
  lasted more than 8 hours (S46);
* steps: at most one per 24 h and none in the first 24 h; spinal origin +10 to 30%, cerebral
  origin +5 to 15% (S46 S52);
* above 1,000 µg/day: a warning (limited experience, S46 S52); 2,000 µg/day is the absolute cap
  of the drug library (S25).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from itb.drugs import BACLOFEN
from itb.guardrails import DAILY_DOSE, Origin, Phase, change_limit
from itb.pharmacology.model import ParameterError
from itb.units import SECONDS_PER_HOUR

__all__ = [
    "LONG_EFFECT_H",
    "STEP_INTERVAL",
    "FirstDoseAdvice",
    "Origin",
    "TitrationAdvice",
    "first_pump_dose",
    "next_titration_step",
    "parse_origin",
    "step_range",
]

LONG_EFFECT_H = 8.0  # S46: "if the effect lasted more than 8 hours"
STEP_INTERVAL = timedelta(hours=24)  # S46 S52


def step_range(origin: Origin) -> tuple[float, float]:
    """(lowest, highest) daily-dose increase per 24 h as fractions: the titration row of the
    one change-limit table (``itb.guardrails.CHANGE_LIMITS``, S46 S52)."""
    limit = change_limit(origin, Phase.TITRATION)
    return limit.min_increase_percent / 100.0, limit.max_increase_percent / 100.0


def parse_origin(text: str) -> Origin:
    try:
        return Origin(text.strip().lower())
    except ValueError:
        allowed = ", ".join(o.value for o in Origin)
        reason = f"allowed {allowed}"
        raise ParameterError("origin", reason, f"origin={text!r}: {reason}") from None


@dataclass(frozen=True, slots=True)
class FirstDoseAdvice:
    daily_dose_ug: float
    reason: str


def first_pump_dose(screening_dose_ug: float, effect_duration_h: float) -> FirstDoseAdvice:
    """Daily dose to start the pump with, from the positive screening bolus (S46)."""
    if not (math.isfinite(screening_dose_ug) and 0.0 < screening_dose_ug <= 100.0):
        reason = "allowed more than 0 to 100"
        raise ParameterError(
            "screening_dose_ug", reason, f"screening_dose_ug={screening_dose_ug}: {reason}"
        )
    if not (math.isfinite(effect_duration_h) and 0.0 <= effect_duration_h <= 48.0):
        reason = "allowed 0 to 48 h"
        raise ParameterError(
            "effect_duration_h", reason, f"effect_duration_h={effect_duration_h}: {reason}"
        )
    if effect_duration_h > LONG_EFFECT_H:
        return FirstDoseAdvice(
            screening_dose_ug,
            f"the {screening_dose_ug:g} µg screening effect lasted {effect_duration_h:g} h, more "
            f"than {LONG_EFFECT_H:g} h: start at the same dose, {screening_dose_ug:g} µg/day (S46)",
        )
    dose = 2.0 * screening_dose_ug
    return FirstDoseAdvice(
        dose,
        f"the {screening_dose_ug:g} µg screening effect lasted {effect_duration_h:g} h "
        f"(not more than {LONG_EFFECT_H:g} h): start at twice the dose, {dose:g} µg/day (S46)",
    )


@dataclass(frozen=True, slots=True)
class TitrationAdvice:
    may_change_now: bool
    earliest_change: datetime
    current_daily_dose_ug: float
    min_daily_dose_ug: float  # lowest step allowed (the current dose if no step yet)
    max_daily_dose_ug: float
    suggested_daily_dose_ug: float
    warnings: tuple[str, ...]
    reason: str


def next_titration_step(
    now: datetime,
    therapy_started: datetime,
    last_change: datetime | None,
    current_daily_dose_ug: float,
    origin: Origin,
) -> TitrationAdvice:
    """The next daily-dose step allowed by the label at ``now``; suggests the lowest step."""
    if not (math.isfinite(current_daily_dose_ug) and current_daily_dose_ug > 0.0):
        reason = "must be more than 0"
        raise ParameterError(
            "current_daily_dose_ug",
            reason,
            f"current_daily_dose_ug={current_daily_dose_ug}: {reason}",
        )
    DAILY_DOSE.check(current_daily_dose_ug, "current_daily_dose_ug")
    if now < therapy_started:
        raise ParameterError("now", "is before therapy_started")
    if last_change is not None and not (therapy_started <= last_change <= now):
        raise ParameterError("last_change", "must be between therapy_started and now")
    reference = max(therapy_started, last_change) if last_change else therapy_started
    earliest = reference + STEP_INTERVAL
    low_frac, high_frac = step_range(origin)
    warnings: list[str] = []
    if now < earliest:
        wait_h = (earliest - now).total_seconds() / SECONDS_PER_HOUR
        what = "pump start" if last_change is None else "the last change"
        return TitrationAdvice(
            False,
            earliest,
            current_daily_dose_ug,
            current_daily_dose_ug,
            current_daily_dose_ug,
            current_daily_dose_ug,
            (),
            f"no change yet: less than 24 h since {what}; next step allowed in {wait_h:.1f} h "
            f"(S46 S52)",
        )
    cap = BACLOFEN.absolute_max_daily_dose_ug
    low = min(current_daily_dose_ug * (1.0 + low_frac), cap)
    high = min(current_daily_dose_ug * (1.0 + high_frac), cap)
    if high >= cap:
        warnings.append(f"capped at the absolute maximum {cap:g} µg/day (S25)")
    if high > BACLOFEN.warning_daily_dose_ug:
        warnings.append(
            f"above {BACLOFEN.warning_daily_dose_ug:g} µg/day: limited experience (S46 S52)"
        )
    reason = (
        f"{origin.value} origin: raise by {low_frac:.0%} to {high_frac:.0%} per 24 h (S46 S52), "
        f"from {current_daily_dose_ug:g} to {low:.0f}-{high:.0f} µg/day; suggest the lowest step, "
        f"{low:.0f} µg/day"
    )
    return TitrationAdvice(
        True, earliest, current_daily_dose_ug, low, high, low, tuple(warnings), reason
    )
