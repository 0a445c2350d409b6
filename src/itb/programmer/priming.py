"""Priming bolus after an implant or a catheter revision.

An empty catheter (and, for a new pump, its empty internal tubing) must be filled with drug
before any reaches the spinal fluid; the priming bolus pushes exactly that volume. Given to a
catheter that is already full, the same volume goes into the spinal fluid as an overdose, so the
result always states that dose.

Pure functions. Sources are the S-numbers of ``docs/domain.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.drugs import BACLOFEN, Drug
from itb.pump.hardware import (
    CATHETER_LENGTH_CM,
    CATHETER_VOLUME_ML_PER_CM,
    PumpModel,
    implanted_catheter_volume_ml,
)
from itb.units import SECONDS_PER_DAY, SECONDS_PER_MINUTE

__all__ = ["PrimingPlan", "plan_priming"]


@dataclass(frozen=True, slots=True)
class PrimingPlan:
    model: str
    catheter_trimmed_cm: float
    catheter_volume_ml: float
    internal_tubing_ml: float  # 0 when the pump's tubing is already full (catheter revision)
    priming_volume_ml: float
    concentration_ug_per_ml: float
    # What the patient would receive if the catheter were already full of drug.
    dose_if_catheter_full_ug: float
    duration_min_at_max_flow: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "catheter_trimmed_cm": self.catheter_trimmed_cm,
            "catheter_volume_ml": round(self.catheter_volume_ml, 4),
            "internal_tubing_ml": round(self.internal_tubing_ml, 4),
            "priming_volume_ml": round(self.priming_volume_ml, 4),
            "concentration_ug_per_ml": self.concentration_ug_per_ml,
            "dose_if_catheter_full_ug": round(self.dose_if_catheter_full_ug, 1),
            "duration_min_at_max_flow": round(self.duration_min_at_max_flow, 1),
            "reasons": list(self.reasons),
        }


def plan_priming(
    model: PumpModel,
    catheter_trimmed_cm: float,
    concentration_ug_per_ml: float,
    pump_tubing_empty: bool = True,
    drug: Drug = BACLOFEN,
) -> PrimingPlan:
    """Priming volume: implanted catheter (S31) plus, for a new pump, its internal tubing."""
    catheter_ml = implanted_catheter_volume_ml(catheter_trimmed_cm)
    drug.check_concentration(concentration_ug_per_ml)
    tubing_ml = model.internal_tubing_ml if pump_tubing_empty else 0.0
    volume_ml = catheter_ml + tubing_ml
    dose_ug = volume_ml * concentration_ug_per_ml
    duration_min = volume_ml / model.max_flow_ml_per_day * SECONDS_PER_DAY / SECONDS_PER_MINUTE
    reasons = [
        f"catheter ({CATHETER_LENGTH_CM:g} − {catheter_trimmed_cm:g}) cm × "
        f"{CATHETER_VOLUME_ML_PER_CM} mL/cm = {catheter_ml:.4f} mL (S31)",
        (
            f"pump internal tubing {tubing_ml:.4f} mL ({model.name})"
            if pump_tubing_empty
            else "pump internal tubing already full (catheter revision): not primed"
        ),
        f"only for an empty catheter: if it is already full of drug, this bolus puts "
        f"{dose_ug:.0f} µg into the spinal fluid",
    ]
    return PrimingPlan(
        model=model.name,
        catheter_trimmed_cm=catheter_trimmed_cm,
        catheter_volume_ml=catheter_ml,
        internal_tubing_ml=tubing_ml,
        priming_volume_ml=volume_ml,
        concentration_ug_per_ml=concentration_ug_per_ml,
        dose_if_catheter_full_ug=dose_ug,
        duration_min_at_max_flow=duration_min,
        reasons=tuple(reasons),
    )
