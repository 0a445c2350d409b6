"""Concentration change: the bridge bolus and the program in the new concentration.

Theory of operation. After a refill with a new concentration, the pump's internal tubing and the
implanted catheter (the dead space) still hold the old drug. A pump that switched straight to
the new volume rate would push that old drug at the wrong speed: too little drug when the new
concentration is higher, too much when it is lower. During the bridge the firmware replaces the
basal rate by the volume rate ``daily_dose / old_concentration`` until the dead space has been
pushed, so the patient keeps receiving the same µg/day; the bridge lasts
``dead_space_ml × old_concentration / daily_dose`` days. The program itself is in µg and does
not change; only the volume it takes per day does.

Pure functions. Sources are the S-numbers of ``docs/domain.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from itb.drugs import BACLOFEN, Drug
from itb.errors import InputError
from itb.guardrails import DAILY_DOSE, Verdict, rate_guardrail
from itb.programmer.refill import require_range
from itb.pump.hardware import PumpModel
from itb.units import HOURS_PER_DAY


@dataclass(frozen=True, slots=True)
class BridgePlan:
    model: str
    old_concentration_ug_per_ml: float
    new_concentration_ug_per_ml: float
    daily_dose_ug: float
    internal_tubing_ml: float
    catheter_volume_ml: float
    dead_space_ml: float
    # Drug in the dead space, at the old concentration: what the bridge delivers to the patient.
    bridge_dose_ug: float
    bridge_volume_rate_ml_per_day: float
    bridge_duration_h: float
    old_volume_per_day_ml: float
    new_volume_per_day_ml: float
    # Without a bridge: the µg/day the patient would get while the old drug is pushed at the
    # new volume rate, and for how long.
    unbridged_dose_ug_per_day: float
    unbridged_duration_h: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "old_concentration_ug_per_ml": self.old_concentration_ug_per_ml,
            "new_concentration_ug_per_ml": self.new_concentration_ug_per_ml,
            "daily_dose_ug": self.daily_dose_ug,
            "internal_tubing_ml": round(self.internal_tubing_ml, 4),
            "catheter_volume_ml": round(self.catheter_volume_ml, 4),
            "dead_space_ml": round(self.dead_space_ml, 4),
            "bridge_dose_ug": round(self.bridge_dose_ug, 1),
            "bridge_volume_rate_ml_per_day": round(self.bridge_volume_rate_ml_per_day, 4),
            "bridge_duration_h": round(self.bridge_duration_h, 2),
            "old_volume_per_day_ml": round(self.old_volume_per_day_ml, 4),
            "new_volume_per_day_ml": round(self.new_volume_per_day_ml, 4),
            "unbridged_dose_ug_per_day": round(self.unbridged_dose_ug_per_day, 1),
            "unbridged_duration_h": round(self.unbridged_duration_h, 2),
            "reasons": list(self.reasons),
        }


def plan_concentration_change(
    model: PumpModel,
    catheter_volume_ml: float,
    old_concentration_ug_per_ml: float,
    new_concentration_ug_per_ml: float,
    daily_dose_ug: float,
    drug: Drug = BACLOFEN,
) -> BridgePlan:
    """The bridge that keeps the patient's µg/day steady across a concentration change.

    ``old_concentration_ug_per_ml`` is the one read back from the pump before the refill;
    ``catheter_volume_ml`` comes from :func:`itb.pump.hardware.implanted_catheter_volume_ml`.
    """
    # The longest catheter holds 110 cm × 0.0026 mL/cm = 0.286 mL (S31); 1 mL allows other makes.
    require_range("catheter_volume_ml", catheter_volume_ml, 0.0, 1.0, "mL", low_open=True)
    drug.check_concentration(old_concentration_ug_per_ml)
    drug.check_concentration(new_concentration_ug_per_ml)
    if new_concentration_ug_per_ml == old_concentration_ug_per_ml:
        reason = "equals the concentration in the pump: no concentration change, no bridge needed"
        raise InputError(
            "new_concentration_ug_per_ml",
            reason,
            f"new_concentration_ug_per_ml={new_concentration_ug_per_ml:g} µg/mL {reason}",
        )
    require_range(
        "daily_dose_ug", daily_dose_ug, 0.0, DAILY_DOSE.absolute_max, DAILY_DOSE.unit, low_open=True
    )
    rate = rate_guardrail(model.min_flow_ml_per_day, model.max_flow_ml_per_day)
    old_volume_ml = rate.check(daily_dose_ug / old_concentration_ug_per_ml, "old_volume_per_day_ml")
    new_volume_ml = rate.check(daily_dose_ug / new_concentration_ug_per_ml, "new_volume_per_day_ml")

    dead_space_ml = model.internal_tubing_ml + catheter_volume_ml
    bridge_dose_ug = dead_space_ml * old_concentration_ug_per_ml
    bridge_days = bridge_dose_ug / daily_dose_ug
    plan = BridgePlan(
        model=model.name,
        old_concentration_ug_per_ml=old_concentration_ug_per_ml,
        new_concentration_ug_per_ml=new_concentration_ug_per_ml,
        daily_dose_ug=daily_dose_ug,
        internal_tubing_ml=model.internal_tubing_ml,
        catheter_volume_ml=catheter_volume_ml,
        dead_space_ml=dead_space_ml,
        bridge_dose_ug=bridge_dose_ug,
        bridge_volume_rate_ml_per_day=old_volume_ml,
        bridge_duration_h=bridge_days * HOURS_PER_DAY,
        old_volume_per_day_ml=old_volume_ml,
        new_volume_per_day_ml=new_volume_ml,
        # Unbridged, the old drug leaves at the new volume rate.
        unbridged_dose_ug_per_day=new_volume_ml * old_concentration_ug_per_ml,
        unbridged_duration_h=dead_space_ml / new_volume_ml * HOURS_PER_DAY,
        reasons=(),
    )
    return replace(plan, reasons=_reasons(model, plan, rate.verdict(new_volume_ml) is Verdict.WARN))


def _reasons(model: PumpModel, p: BridgePlan, below_lowest_flow: bool) -> tuple[str, ...]:
    change = "under" if p.new_concentration_ug_per_ml > p.old_concentration_ug_per_ml else "over"
    reasons = [
        f"dead space = pump tubing {model.internal_tubing_ml:g} mL + catheter "
        f"{p.catheter_volume_ml:.4f} mL = {p.dead_space_ml:.4f} mL of "
        f"{p.old_concentration_ug_per_ml:g} µg/mL drug ({p.bridge_dose_ug:.1f} µg)",
        f"bridge: {p.old_volume_per_day_ml:.4f} mL/day for {p.bridge_duration_h:.1f} h keeps "
        f"{p.daily_dose_ug:g} µg/day",
        f"then {p.daily_dose_ug:g} µg/day at {p.new_concentration_ug_per_ml:g} µg/mL = "
        f"{p.new_volume_per_day_ml:.4f} mL/day (was {p.old_volume_per_day_ml:.4f} mL/day)",
        f"without the bridge: {p.unbridged_dose_ug_per_day:.0f} µg/day for "
        f"{p.unbridged_duration_h:.1f} h ({change}dose)",
    ]
    if below_lowest_flow:
        reasons.append(
            f"new volume rate {p.new_volume_per_day_ml:.4f} mL/day is below the {model.name}'s "
            f"lowest flow {model.min_flow_ml_per_day:g} mL/day"
        )
    return tuple(reasons)
