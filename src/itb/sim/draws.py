"""What is random about one patient, drawn once from the patient's own generator: origin, age,
daily dose, pump model, concentration, program and the pump's own flow error."""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np

from itb.drugs import BACLOFEN
from itb.pump.hardware import PumpModel, pump_model
from itb.sim.config import CohortConfig
from itb.therapy import FlexStep, Program, continuous, flex
from itb.units import SECONDS_PER_DAY

_Z90 = 1.2815515655446004  # standard normal quantile of 0.9


@dataclass(frozen=True)
class Draws:
    origin: str
    age_years: float
    daily_dose_ug: float
    model: PumpModel
    concentration_ug_per_ml: float
    program: Program
    flow_error_fraction: float


def _lognormal_between(rng: np.random.Generator, p10: float, p90: float) -> float:
    median = math.sqrt(p10 * p90)
    sigma = math.log(p90 / p10) / (2 * _Z90)
    return float(median * math.exp(sigma * rng.standard_normal()))


def draw_patient(config: CohortConfig, rng: np.random.Generator) -> Draws:
    pop, pumps = config.population, config.pumps
    origin = "spinal" if rng.random() < pop.spinal_fraction else "cerebral"
    age = float(rng.uniform(pop.age_min_years, max(pop.age_min_years, pop.age_max_years)))
    if age < 12.0:
        dose = _lognormal_between(rng, pop.child_dose_p10_ug_per_day, pop.child_dose_p90_ug_per_day)
    elif origin == "spinal":
        dose = _lognormal_between(
            rng, pop.spinal_dose_p10_ug_per_day, pop.spinal_dose_p90_ug_per_day
        )
    else:
        dose = _lognormal_between(
            rng, pop.cerebral_dose_p10_ug_per_day, pop.cerebral_dose_p90_ug_per_day
        )
    dose = min(max(dose, 20.0), BACLOFEN.warning_daily_dose_ug)  # S25 ranges, S46 warning
    names, cdf = _model_cdf(pumps.models)
    model = pump_model(names[bisect.bisect_right(cdf, rng.random())])
    use_flex = bool(rng.random() < pop.flex_fraction)
    program = day_night_program(dose) if use_flex else continuous(dose)
    concentration = choose_concentration(
        model, program, pumps.low_reservoir_alarm_ml, pumps.target_refill_interval_days
    )
    # this pump's real flow error within its accuracy band (S9): most pumps are close
    band = model.flow_accuracy_fraction
    error = float(rng.normal(0.0, band * pumps.flow_error_sd_of_band))
    error = min(max(error, -band), band)
    return Draws(origin, age, dose, model, concentration, program, error)


def _model_cdf(shares: dict[str, float]) -> tuple[list[str], list[float]]:
    """The models in name order and their cumulative shares, normalised: a model is drawn by
    one uniform, as ``Generator.choice`` with ``p`` draws it (the same numbers, at a tenth of
    the cost of its checks and arrays)."""
    names = sorted(shares)
    total = sum(shares[name] for name in names)
    cdf = list(itertools.accumulate(shares[name] / total for name in names))
    return names, [c / cdf[-1] for c in cdf]


def choose_concentration(
    model: PumpModel, program: Program, alarm_ml: float, target_days: float
) -> float:
    """The lowest marketed concentration whose every rate the pump can run and that lasts
    ``target_days`` between refills; the most concentrated usable one otherwise."""
    low_ug_per_day = program.profile.min_rate_ug_per_s * SECONDS_PER_DAY
    high_ug_per_day = program.profile.max_rate_ug_per_s * SECONDS_PER_DAY
    usable = [
        c
        for c in BACLOFEN.concentrations_ug_per_ml
        if low_ug_per_day / c >= model.min_flow_ml_per_day
        and high_ug_per_day / c <= model.max_flow_ml_per_day
    ]
    daily_ml = {c: program.mean_daily_dose_ug() / c for c in usable}
    for concentration in usable:
        if (model.reservoir_ml - alarm_ml) / daily_ml[concentration] >= target_days:
            return concentration
    return usable[-1]


def day_night_program(daily_dose_ug: float) -> Program:
    """More at night against night spasms, the same daily dose (a common flex pattern [R])."""
    mean = daily_dose_ug / 24.0
    night, day = 1.3 * mean, mean - 0.3 * mean * 9.0 / 15.0  # 9 h of night, 15 h of day
    return flex([FlexStep(7 * 60, day), FlexStep(22 * 60, night)])
