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
from itb.guardrails import DAILY_DOSE, LOW_RESERVOIR_ALARM, LimitError, Verdict, rate_guardrail
from itb.pump.hardware import PumpModel

# Low-reservoir alarm threshold when none is programmed: 2.0 mL ([R] domain.md).
DEFAULT_LOW_RESERVOIR_ALARM_ML = 2.0

# S24: refill 3 to 5 days before the pump's alarm date. We take the 5-day end: it leaves room
# for a missed appointment, a holiday or a pump that runs fast within its accuracy band.
DEFAULT_SAFETY_MARGIN_DAYS = 5.0

# S28 (Maino 2017): a discrepancy of more than 1 mL in a 20 mL pump or more than 2 mL in a 40 mL
# pump may mean a pocket fill. Both are 5% of the reservoir; other sizes use the same fraction.
POCKET_FILL_TOLERANCE_FRACTION = 0.05


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


def check_fill_volume(model: PumpModel, fill_ml: float) -> float:
    """The volume put into the emptied reservoir. Overfill is refused (S27)."""
    return require_range("fill_ml", fill_ml, 0.0, model.reservoir_ml, "mL")


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


def plan_refill(
    model: PumpModel,
    reservoir_ml: float,
    concentration_ug_per_ml: float,
    daily_dose_ug: float,
    low_reservoir_alarm_ml: float = DEFAULT_LOW_RESERVOIR_ALARM_ML,
    filled_on: date | None = None,
    safety_margin_days: float = DEFAULT_SAFETY_MARGIN_DAYS,
    drug: Drug = BACLOFEN,
) -> RefillSchedule:
    """When the reservoir reaches its alarm, runs dry, and when to come back.

    ``concentration_ug_per_ml`` is the one read back from the pump. The next refill is the
    earliest of the alarm date minus the safety margin (S24) and the stability limit ([R]).
    """
    require_range("reservoir_ml", reservoir_ml, 0.0, model.reservoir_ml, "mL")
    drug.check_concentration(concentration_ug_per_ml)
    require_range(
        "daily_dose_ug", daily_dose_ug, 0.0, DAILY_DOSE.absolute_max, DAILY_DOSE.unit, low_open=True
    )
    LOW_RESERVOIR_ALARM.check(low_reservoir_alarm_ml)  # 0.5 to 10 mL, below any reservoir
    require_range("safety_margin_days", safety_margin_days, 0.0, 30.0, "days")

    volume_per_day_ml = daily_dose_ug / concentration_ug_per_ml
    rate = rate_guardrail(model.min_flow_ml_per_day, model.max_flow_ml_per_day)
    rate.check(volume_per_day_ml, "volume_per_day_ml")
    warnings: list[str] = []
    if rate.verdict(volume_per_day_ml) is Verdict.WARN:
        warnings.append(
            f"{daily_dose_ug:g} µg/day at {concentration_ug_per_ml:g} µg/mL is "
            f"{volume_per_day_ml:.4f} mL/day, below the {model.name}'s lowest flow "
            f"{model.min_flow_ml_per_day:g} mL/day: use a lower concentration"
        )

    days_to_low = max(0.0, reservoir_ml - low_reservoir_alarm_ml) / volume_per_day_ml
    days_to_empty = reservoir_ml / volume_per_day_ml
    days_to_empty_fast = days_to_empty / (1.0 + model.flow_accuracy_fraction)
    stability_days = drug.stability_days
    by_alarm_days = max(0.0, days_to_low - safety_margin_days)
    if by_alarm_days <= stability_days:
        next_days = by_alarm_days
        reason = (
            f"{safety_margin_days:g} days before the low-reservoir alarm at "
            f"{low_reservoir_alarm_ml:g} mL (day {days_to_low:.1f}; S24: 3 to 5 days before)"
        )
    else:
        next_days = stability_days
        reason = (
            f"the drug's stability limit in the reservoir, {stability_days:g} days ([R]), "
            f"comes before the low-reservoir alarm (day {days_to_low:.1f})"
        )
    if reservoir_ml <= low_reservoir_alarm_ml:
        warnings.append(
            f"reservoir {reservoir_ml:g} mL is at or below the low-reservoir alarm "
            f"{low_reservoir_alarm_ml:g} mL: refill now"
        )
    if next_days > days_to_empty_fast:
        warnings.append(
            f"the next refill (day {next_days:.1f}) falls after day {days_to_empty_fast:.1f}, "
            f"when the reservoir may run dry if the pump runs at the fast end of its "
            f"±{model.flow_accuracy_fraction * 100:g}% accuracy band: consider an earlier date"
        )
    return RefillSchedule(
        model=model.name,
        reservoir_ml=reservoir_ml,
        concentration_ug_per_ml=concentration_ug_per_ml,
        daily_dose_ug=daily_dose_ug,
        volume_per_day_ml=volume_per_day_ml,
        low_reservoir_alarm_ml=low_reservoir_alarm_ml,
        safety_margin_days=safety_margin_days,
        days_to_low_reservoir=days_to_low,
        days_to_empty=days_to_empty,
        days_to_empty_at_fastest_flow=days_to_empty_fast,
        stability_days=stability_days,
        next_refill_days=next_days,
        next_refill_reason=reason,
        warnings=tuple(warnings),
        filled_on=filled_on,
    )
