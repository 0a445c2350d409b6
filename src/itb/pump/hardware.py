"""Hardware models of implantable programmable pumps.

Figures from ``docs/domain.md`` (S-numbers); [R] marks a default not confirmed by a source,
kept here so that it can be replaced in one place. The battery figures are chosen so that the
elective replacement indicator (ERI) falls six to seven years after implant at 0.1 to 1 mL/day
for the peristaltic model, as the seed page and the manufacturer say (S3 S4), and about ten
years for the valve-gated one [R]; see ``docs/pump.md`` for the arithmetic.

A battery that drains slowly does not run for ever: the maker states a maximum service life
with an automatic shut-off (S3 S4: SynchroMed II, 7 years). ERI comes at the latest
``eos_after_eri_days`` before that shut-off, so the clinic always gets its warning; end of
service (EOS) is whichever comes first, ERI + 90 days or the shut-off (:mod:`itb.pump.battery`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from itb import guardrails
from itb.errors import InputError
from itb.units import SECONDS_PER_DAY, SECONDS_PER_YEAR, UA_H_PER_MAH, UL_PER_ML

# S31: the intrathecal catheter is 110 cm long and holds 0.0026 mL per cm; the implanted volume
# is (110 − trimmed cm) × 0.0026 mL. One home: priming, the firmware's dead space, the clinic.
CATHETER_LENGTH_CM = 110.0
CATHETER_VOLUME_ML_PER_CM = 0.0026
# The whole catheter cannot be trimmed away: at least a centimetre stays implanted.
CATHETER_MAX_TRIM_CM = CATHETER_LENGTH_CM - 1.0


def implanted_catheter_volume_ml(trimmed_cm: float) -> float:
    """Volume of the implanted catheter after ``trimmed_cm`` were cut off (S31)."""
    if not (math.isfinite(trimmed_cm) and 0.0 <= trimmed_cm <= CATHETER_MAX_TRIM_CM):
        raise guardrails.LimitError(
            "catheter_trimmed_cm", trimmed_cm, 0.0, CATHETER_MAX_TRIM_CM, "cm"
        )
    return (CATHETER_LENGTH_CM - trimmed_cm) * CATHETER_VOLUME_ML_PER_CM


# The catheter of a full-length (untrimmed) implant: the default dead space of a scenario pump.
FULL_CATHETER_VOLUME_ML = CATHETER_LENGTH_CM * CATHETER_VOLUME_ML_PER_CM


class PumpKind(enum.Enum):
    PERISTALTIC = "peristaltic"
    VALVE_GATED = "valve_gated"


class UnknownModelError(InputError):
    """A pump model name that is not in :data:`MODELS`."""

    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(MODELS)
        super().__init__(
            "model",
            f"{name!r} is not a known pump model; known: {known}",
            f"model={name!r} is not a known pump model; known: {known}",
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (UnknownModelError, (self.name,))


@dataclass(frozen=True, slots=True)
class PumpModel:
    name: str
    kind: PumpKind
    reservoir_ml: float
    # Smallest delivery quantum: one motor stroke or one valve cycle.
    quantum_ul: float
    min_flow_ml_per_day: float
    max_flow_ml_per_day: float
    # Volume between the reservoir and the catheter connector (part of the dead space that a
    # bridge or priming bolus pushes through).
    internal_tubing_ml: float
    # Flow accuracy: the delivered volume may differ from the programmed one by this fraction.
    flow_accuracy_fraction: float
    battery_capacity_mah: float
    # Charge left at the elective replacement indicator.
    eri_reserve_mah: float
    quiescent_current_ua: float
    charge_per_quantum_uc: float
    telemetry_session_charge_uc: float
    # Delivery stops this long after ERI (S3 S21: 90 days).
    eos_after_eri_days: float
    # The automatic shut-off, counted from implant, whatever charge is left (S3 S4).
    max_service_life_years: float
    # What an MRI field does: stall and recover (peristaltic, S19 S23) or close the valve
    # until it is reset (valve-gated, S32 S34).
    mri_recovers_by_itself: bool
    # Derived once from the fields above (__post_init__): the firmware asks them at every step.
    usable_charge_to_eri_mah: float = field(init=False, compare=False, repr=False)
    eos_after_eri_s: float = field(init=False, compare=False, repr=False)
    # Implant to the automatic shut-off (S3 S4).
    max_service_life_s: float = field(init=False, compare=False, repr=False)
    # Implant to the latest ERI: ``eos_after_eri`` before the shut-off.
    service_life_eri_s: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        derived = {
            "usable_charge_to_eri_mah": self.battery_capacity_mah - self.eri_reserve_mah,
            "eos_after_eri_s": self.eos_after_eri_days * SECONDS_PER_DAY,
            "max_service_life_s": self.max_service_life_years * SECONDS_PER_YEAR,
        }
        derived["service_life_eri_s"] = derived["max_service_life_s"] - derived["eos_after_eri_s"]
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def quantum_ml(self) -> float:
        return self.quantum_ul / UL_PER_ML

    def battery_current_ua(self, flow_ml_per_day: float) -> float:
        """Mean battery current at a steady flow, µA."""
        quanta_per_s = flow_ml_per_day * UL_PER_ML / self.quantum_ul / SECONDS_PER_DAY
        return self.quiescent_current_ua + quanta_per_s * self.charge_per_quantum_uc

    def battery_years_to_eri(self, flow_ml_per_day: float) -> float:
        """Closed-form time from a fresh battery to its charge at ERI at a steady flow (no
        telemetry), ignoring the service-life shut-off."""
        hours = (
            self.usable_charge_to_eri_mah * UA_H_PER_MAH / self.battery_current_ua(flow_ml_per_day)
        )
        return hours * 3600.0 / SECONDS_PER_YEAR

    def years_to_eri(self, flow_ml_per_day: float) -> float:
        """Implant to ERI at a steady flow: the battery's charge or the service life's notice,
        whichever comes first."""
        return min(
            self.battery_years_to_eri(flow_ml_per_day),
            self.service_life_eri_s / SECONDS_PER_YEAR,
        )

    # ---- device rules: every layer asks these, none re-derives them -------------------------
    def check_fill(self, volume_ml: float, field: str = "volume_ml") -> float:
        """A fill volume of at least one delivery quantum (less is no fill: 1e-320 mL was taken)
        and never above the reservoir (never overfill, S28)."""
        if not (math.isfinite(volume_ml) and self.quantum_ml <= volume_ml <= self.reservoir_ml):
            raise InputError(
                field,
                f"{volume_ml:g} mL; allowed {self.quantum_ml:g} mL (one delivery quantum) up to "
                f"the {self.reservoir_ml:g} mL reservoir of the {self.name} (never overfill)",
            )
        return volume_ml

    def check_low_reservoir_alarm(
        self, volume_ml: float, field: str = "low_reservoir_alarm_ml"
    ) -> float:
        """The low-reservoir alarm threshold: within its guardrail and below the reservoir."""
        guardrails.LOW_RESERVOIR_ALARM.check(volume_ml, field)
        if volume_ml >= self.reservoir_ml:
            raise InputError(
                field, f"{volume_ml:g} mL; must be below the {self.reservoir_ml:g} mL reservoir"
            )
        return volume_ml


def _peristaltic(reservoir_ml: float) -> PumpModel:
    return PumpModel(
        name=f"peristaltic-{reservoir_ml:g}",
        kind=PumpKind.PERISTALTIC,
        reservoir_ml=reservoir_ml,  # S1: 20 and 40 mL
        quantum_ul=0.25,  # [R] stroke volume
        min_flow_ml_per_day=0.048,  # [R] domain.md flow range
        max_flow_ml_per_day=24.0,  # [R]
        internal_tubing_ml=0.2,  # [R] pump tubing volume used by bridge/priming boluses
        flow_accuracy_fraction=0.145,  # S9: ±14.5%
        # Battery (docs/pump.md): 10 µA quiescent plus 36 µC a stroke puts ERI at 6.95 years at
        # 0.1 mL/day and 6.06 years at 1 mL/day (S3 S4 and the seed: six to seven years).
        battery_capacity_mah=740.0,
        eri_reserve_mah=120.6,  # covers 90 days to EOS at the maximum flow
        quiescent_current_ua=10.0,
        charge_per_quantum_uc=36.0,
        telemetry_session_charge_uc=30_000.0,  # ~10 s at 3 mA [R]
        eos_after_eri_days=90.0,  # S3 S21
        # S3 S4 (Medtronic's replacement pages for SynchroMed II): at most 7 years, then an
        # automatic shut-off; replacement advised about 6 months before it.
        max_service_life_years=7.0,
        mri_recovers_by_itself=True,  # S19 S23
    )


def _valve_gated(reservoir_ml: float) -> PumpModel:
    return PumpModel(
        name=f"valve-gated-{reservoir_ml:g}",
        kind=PumpKind.VALVE_GATED,
        reservoir_ml=reservoir_ml,  # S32: 20 and 40 mL
        quantum_ul=2.0,  # [R] accumulator volume per valve cycle
        min_flow_ml_per_day=0.0,  # [R] the valve may stay shut
        max_flow_ml_per_day=28.8,  # [R]
        internal_tubing_ml=0.1,  # [R]
        flow_accuracy_fraction=0.10,  # [R]; the ceramic pump claims 10% (S39)
        # Valves draw far less than a motor [R]: ERI about ten years at 0.5 mL/day.
        battery_capacity_mah=620.0,
        eri_reserve_mah=88.0,
        quiescent_current_ua=6.0,
        charge_per_quantum_uc=20.0,
        telemetry_session_charge_uc=30_000.0,
        eos_after_eri_days=90.0,  # same policy as S3 S21 [R] for this model
        # [R] no source found for this model's shut-off; ten years, its battery's order
        max_service_life_years=10.0,
        mri_recovers_by_itself=False,  # S32 S34: the flow-activated valve needs a manual reset
    )


MODELS: dict[str, PumpModel] = {
    m.name: m
    for m in (_peristaltic(20.0), _peristaltic(40.0), _valve_gated(20.0), _valve_gated(40.0))
}

DEFAULT_MODEL = "peristaltic-20"


def pump_model(name: str) -> PumpModel:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name) from None
