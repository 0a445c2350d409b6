"""Refill arithmetic: the withdrawn-volume check and the next refill date.

Theory of operation. At a refill the clinician withdraws all residual drug and compares it with
the volume the pump expects (S26 S27); a gap beyond tolerance may mean a pocket fill, a catheter
or a pump problem (S28) and must be acknowledged before going on. Then the reservoir is filled
(never beyond its volume, S27) and the programmer computes, from the new volume, the
concentration read back from the pump and the daily dose: the low-reservoir alarm date, the empty
date, the drug's stability limit and the recommended next refill date.

Pure functions: no clock, no disk. Dates come in as arguments. Sources are the S-numbers of
``docs/domain.md``; [R] marks a default not confirmed by a source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from itb.drugs import BACLOFEN, Drug
from itb.guardrails import (
    DAILY_DOSE,
    DEFAULT_LOW_RESERVOIR_ALARM_ML,
    LOW_RESERVOIR_ALARM,
    LimitError,
    Verdict,
    rate_guardrail,
)
from itb.pump.hardware import PumpModel

__all__ = [
    "DEFAULT_SAFETY_MARGIN_DAYS",
    "POCKET_FILL_TOLERANCE_FRACTION",
    "DiscrepancyCheck",
    "RefillInput",
    "RefillSchedule",
    "check_withdrawn_volume",
    "plan_refill",
    "pocket_fill_tolerance_ml",
    "require_range",
]

# S24: refill 3 to 5 days before the pump's alarm date. We take the 5-day end: it leaves room
# for a missed appointment, a holiday or a pump that runs fast within its accuracy band.
DEFAULT_SAFETY_MARGIN_DAYS = 5.0

# S28 (Maino 2017): a discrepancy of more than 1 mL in a 20 mL pump or more than 2 mL in a 40 mL
# pump may mean a pocket fill. Both are 5% of the reservoir; other sizes use the same fraction.
POCKET_FILL_TOLERANCE_FRACTION = 0.05

# Longest horizon an EOS or expiry bound may be given for: 20 years, beyond any pump's life.
MAX_PLAN_DAYS = 20 * 365.0


def require_range(
    field: str, value: float, low: float, high: float, unit: str, *, low_open: bool = False
) -> float:
    """Return ``value`` if it is finite and within [low, high] (or (low, high]), else raise.

    Raises :class:`LimitError` naming the field and the allowed range, so that every caller of
    the programmer catches one kind of error for bad input.
    """
    outside = value < low or value > high or (low_open and value == low)
    if not math.isfinite(value) or outside:
        error = LimitError(field, value, low, high, unit)
        if low_open:
            error.args = (
                f"{field}={value:g} {unit} is outside the allowed range: "
                f"more than {low:g} up to {high:g} {unit}",
            )
        raise error
    return value


# Withdrawn-volume check --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiscrepancyCheck:
    """The withdrawn volume against the expected one. ``flagged`` needs an acknowledgement."""

    expected_ml: float
    withdrawn_ml: float
    discrepancy_ml: float  # withdrawn minus expected
    pocket_fill_tolerance_ml: float
    accuracy_band_ml: float
    flagged: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "expected_ml": round(self.expected_ml, 3),
            "withdrawn_ml": round(self.withdrawn_ml, 3),
            "discrepancy_ml": round(self.discrepancy_ml, 3),
            "pocket_fill_tolerance_ml": round(self.pocket_fill_tolerance_ml, 3),
            "accuracy_band_ml": round(self.accuracy_band_ml, 3),
            "flagged": self.flagged,
            "acknowledgement_required": self.flagged,
            "reasons": list(self.reasons),
        }


def pocket_fill_tolerance_ml(model: PumpModel) -> float:
    """S28: 1 mL for a 20 mL reservoir, 2 mL for a 40 mL one."""
    return model.reservoir_ml * POCKET_FILL_TOLERANCE_FRACTION


def check_withdrawn_volume(
    model: PumpModel, expected_ml: float, withdrawn_ml: float, delivered_since_fill_ml: float
) -> DiscrepancyCheck:
    """Compare the residual drug withdrawn with what the pump expects.

    Two tolerances, each flagged on its own: S28's pocket-fill limit, and the pump model's flow
    accuracy applied to the volume it delivered since the last fill (a gap beyond it means the
    pump did not deliver what it counted: a stall, a leak, an occluded or torn catheter).
    """
    reservoir_ml = model.reservoir_ml
    require_range("expected_ml", expected_ml, 0.0, reservoir_ml, "mL")
    require_range("withdrawn_ml", withdrawn_ml, 0.0, reservoir_ml, "mL")
    require_range("delivered_since_fill_ml", delivered_since_fill_ml, 0.0, 1e6, "mL")

    discrepancy_ml = withdrawn_ml - expected_ml
    gap_ml = abs(discrepancy_ml)
    tolerance_ml = pocket_fill_tolerance_ml(model)
    band_ml = model.flow_accuracy_fraction * delivered_since_fill_ml
    if discrepancy_ml < 0:
        direction = (
            f"{gap_ml:.2f} mL less than expected: more drug left the reservoir than the pump "
            "counted (over-infusion), or the last fill went partly into the pocket"
        )
    else:
        direction = (
            f"{gap_ml:.2f} mL more than expected: the pump delivered less than it counted "
            "(stall, occluded or leaking catheter): watch for withdrawal"
        )
    reasons: list[str] = []
    flagged = False
    if gap_ml > tolerance_ml:
        flagged = True
        reasons.append(
            f"withdrawn {withdrawn_ml:.2f} mL vs expected {expected_ml:.2f} mL: {direction}; "
            f"beyond the {tolerance_ml:g} mL tolerance of a {reservoir_ml:g} mL pump "
            "(S28: possible pocket fill, catheter or pump problem)"
        )
    else:
        reasons.append(
            f"discrepancy {discrepancy_ml:+.2f} mL is within the {tolerance_ml:g} mL tolerance "
            f"of a {reservoir_ml:g} mL pump (S28)"
        )
    if gap_ml > band_ml:
        flagged = True
        reasons.append(
            f"discrepancy {discrepancy_ml:+.2f} mL is beyond the pump's accuracy band of "
            f"±{model.flow_accuracy_fraction * 100:g}% of the {delivered_since_fill_ml:.2f} mL "
            f"delivered since the last fill (±{band_ml:.2f} mL, {model.name})"
        )
    else:
        reasons.append(
            f"discrepancy {discrepancy_ml:+.2f} mL is within the pump's accuracy band "
            f"(±{band_ml:.2f} mL)"
        )
    return DiscrepancyCheck(
        expected_ml, withdrawn_ml, discrepancy_ml, tolerance_ml, band_ml, flagged, tuple(reasons)
    )


# Refill schedule ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefillSchedule:
    """Days (and dates, when a fill date is given) from a fill to each reservoir event."""

    model: str
    reservoir_ml: float
    concentration_ug_per_ml: float
    daily_dose_ug: float
    volume_per_day_ml: float
    low_reservoir_alarm_ml: float
    safety_margin_days: float
    days_to_low_reservoir: float
    days_to_empty: float
    # The reservoir may run dry this early if the pump runs at the fast end of its accuracy band.
    days_to_empty_at_fastest_flow: float
    stability_days: float
    next_refill_days: float
    next_refill_reason: str
    warnings: tuple[str, ...]
    filled_on: date | None = None
    # Which bound set the next refill: alarm, fast_flow_empty, stability, drug_expiry or eos.
    next_refill_bound: str = "alarm"

    def _date(self, days: float) -> date | None:
        # Round down: a date shown is never later than the event.
        return None if self.filled_on is None else self.filled_on + timedelta(days=math.floor(days))

    @property
    def low_reservoir_on(self) -> date | None:
        return self._date(self.days_to_low_reservoir)

    @property
    def empty_on(self) -> date | None:
        return self._date(self.days_to_empty)

    @property
    def stability_limit_on(self) -> date | None:
        return self._date(self.stability_days)

    @property
    def next_refill_on(self) -> date | None:
        return self._date(self.next_refill_days)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "model": self.model,
            "reservoir_ml": self.reservoir_ml,
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "daily_dose_ug": self.daily_dose_ug,
            "volume_per_day_ml": round(self.volume_per_day_ml, 4),
            "low_reservoir_alarm_ml": self.low_reservoir_alarm_ml,
            "safety_margin_days": self.safety_margin_days,
            "days_to_low_reservoir": round(self.days_to_low_reservoir, 1),
            "days_to_empty": round(self.days_to_empty, 1),
            "days_to_empty_at_fastest_flow": round(self.days_to_empty_at_fastest_flow, 1),
            "stability_days": self.stability_days,
            "next_refill_days": round(self.next_refill_days, 1),
            "next_refill_reason": self.next_refill_reason,
            "next_refill_bound": self.next_refill_bound,
            "warnings": list(self.warnings),
        }
        if self.filled_on is not None:
            out["filled_on"] = self.filled_on.isoformat()
            for key, value in (
                ("low_reservoir_on", self.low_reservoir_on),
                ("empty_on", self.empty_on),
                ("stability_limit_on", self.stability_limit_on),
                ("next_refill_on", self.next_refill_on),
            ):
                out[key] = None if value is None else value.isoformat()
        return out


@dataclass(frozen=True, slots=True)
class RefillInput:
    """What the refill plan starts from: the pump, its reservoir after the fill, and the policy.

    ``concentration_ug_per_ml`` is the one read back from the pump; ``filled_on`` dates the
    schedule (None: days only).
    """

    model: PumpModel
    reservoir_ml: float
    concentration_ug_per_ml: float
    daily_dose_ug: float
    low_reservoir_alarm_ml: float = DEFAULT_LOW_RESERVOIR_ALARM_ML
    filled_on: date | None = None
    safety_margin_days: float = DEFAULT_SAFETY_MARGIN_DAYS
    drug: Drug = BACLOFEN
    # Optional hard bounds, in days after the fill: the battery's end of service (the pump's
    # predicted or entered EOS) and the filled drug's own expiry. The refill is never after them.
    days_to_eos: float | None = None
    days_to_drug_expiry: float | None = None

    def check(self) -> None:
        """Each figure within its range, else a LimitError (or UnknownDrugError) naming it."""
        require_range("reservoir_ml", self.reservoir_ml, 0.0, self.model.reservoir_ml, "mL")
        self.drug.check_concentration(self.concentration_ug_per_ml)
        require_range(
            "daily_dose_ug",
            self.daily_dose_ug,
            0.0,
            DAILY_DOSE.absolute_max,
            DAILY_DOSE.unit,
            low_open=True,
        )
        LOW_RESERVOIR_ALARM.check(self.low_reservoir_alarm_ml)  # 0.5 to 10 mL, below any pump
        require_range("safety_margin_days", self.safety_margin_days, 0.0, 30.0, "days")
        if self.days_to_eos is not None:
            require_range("days_to_eos", self.days_to_eos, 0.0, MAX_PLAN_DAYS, "days")
        if self.days_to_drug_expiry is not None:
            require_range(
                "days_to_drug_expiry", self.days_to_drug_expiry, 0.0, MAX_PLAN_DAYS, "days"
            )


def plan_refill(fill: RefillInput) -> RefillSchedule:
    """When the reservoir reaches its alarm, runs dry, and when to come back.

    The next refill is the earliest of its bounds (see :func:`_next_refill`), and the schedule
    says which one set it.
    """
    fill.check()
    model = fill.model
    volume_per_day_ml = fill.daily_dose_ug / fill.concentration_ug_per_ml
    rate = rate_guardrail(model.min_flow_ml_per_day, model.max_flow_ml_per_day)
    rate.check(volume_per_day_ml, "volume_per_day_ml")
    below_lowest_flow = rate.verdict(volume_per_day_ml) is Verdict.WARN
    days_to_low = max(0.0, fill.reservoir_ml - fill.low_reservoir_alarm_ml) / volume_per_day_ml
    days_to_empty = fill.reservoir_ml / volume_per_day_ml
    days_to_empty_fast = days_to_empty / (1.0 + model.flow_accuracy_fraction)
    next_days, bound, reason = _next_refill(fill, days_to_low, days_to_empty_fast)
    return RefillSchedule(
        model=model.name,
        reservoir_ml=fill.reservoir_ml,
        concentration_ug_per_ml=fill.concentration_ug_per_ml,
        daily_dose_ug=fill.daily_dose_ug,
        volume_per_day_ml=volume_per_day_ml,
        low_reservoir_alarm_ml=fill.low_reservoir_alarm_ml,
        safety_margin_days=fill.safety_margin_days,
        days_to_low_reservoir=days_to_low,
        days_to_empty=days_to_empty,
        days_to_empty_at_fastest_flow=days_to_empty_fast,
        stability_days=fill.drug.stability_days,
        next_refill_days=next_days,
        next_refill_reason=reason,
        next_refill_bound=bound,
        warnings=_warnings(
            fill, volume_per_day_ml, below_lowest_flow, next_days, days_to_empty_fast
        ),
        filled_on=fill.filled_on,
    )


def _next_refill(
    fill: RefillInput, days_to_low: float, days_to_empty_fast: float
) -> tuple[float, str, str]:
    """(days after the fill, the bound that set it, reason): the earliest of every bound, so the
    recommendation is never later than a date the plan itself calls unsafe (issue 11):

    - ``alarm``: the low-reservoir alarm minus the margin (S24: 3 to 5 days before);
    - ``fast_flow_empty``: the day the reservoir may run dry at the fast end of the pump's
      accuracy band, minus the margin;
    - ``stability``: the drug's stability in the reservoir ([R]);
    - ``drug_expiry``: the filled drug's own expiry, when given;
    - ``eos``: the battery's end of service (the pump stops delivering), minus the margin, when
      given.
    """
    margin = fill.safety_margin_days
    bounds: list[tuple[float, str, str]] = [
        (
            days_to_low - margin,
            "alarm",
            f"{margin:g} days before the low-reservoir alarm at {fill.low_reservoir_alarm_ml:g} "
            f"mL (day {days_to_low:.1f}; S24: 3 to 5 days before)",
        ),
        (
            days_to_empty_fast - margin,
            "fast_flow_empty",
            f"{margin:g} days before day {days_to_empty_fast:.1f}, when the reservoir may run "
            f"dry if the pump runs at the fast end of its "
            f"±{fill.model.flow_accuracy_fraction * 100:g}% accuracy band",
        ),
        (
            fill.drug.stability_days,
            "stability",
            f"the drug's stability limit in the reservoir, {fill.drug.stability_days:g} days ([R])",
        ),
    ]
    if fill.days_to_drug_expiry is not None:
        expiry = fill.days_to_drug_expiry
        bounds.append((expiry, "drug_expiry", f"the filled drug expires on day {expiry:g}"))
    if fill.days_to_eos is not None:
        eos = fill.days_to_eos
        bounds.append(
            (
                eos - margin,
                "eos",
                f"{margin:g} days before the battery's end of service (day {eos:g}): the pump "
                "stops delivering; plan the replacement",
            )
        )
    days, bound, reason = min(bounds, key=lambda b: b[0])
    return max(0.0, days), bound, reason


def _warnings(
    fill: RefillInput,
    volume_per_day_ml: float,
    below_lowest_flow: bool,
    next_days: float,
    days_to_empty_fast: float,
) -> tuple[str, ...]:
    model = fill.model
    warnings: list[str] = []
    if below_lowest_flow:
        warnings.append(
            f"{fill.daily_dose_ug:g} µg/day at {fill.concentration_ug_per_ml:g} µg/mL is "
            f"{volume_per_day_ml:.4f} mL/day, below the {model.name}'s lowest flow "
            f"{model.min_flow_ml_per_day:g} mL/day: use a lower concentration"
        )
    if fill.reservoir_ml <= fill.low_reservoir_alarm_ml:
        warnings.append(
            f"reservoir {fill.reservoir_ml:g} mL is at or below the low-reservoir alarm "
            f"{fill.low_reservoir_alarm_ml:g} mL: refill now"
        )
    if next_days > days_to_empty_fast:
        warnings.append(
            f"the next refill (day {next_days:.1f}) falls after day {days_to_empty_fast:.1f}, "
            f"when the reservoir may run dry if the pump runs at the fast end of its "
            f"±{model.flow_accuracy_fraction * 100:g}% accuracy band: consider an earlier date"
        )
    return tuple(warnings)
