"""The calibration targets of the population model: each with its source, range and the model's
value, measured in one place (docs/pharmacology.md tables them; tests/pharmacology/test_targets.py
asserts them all).

Pure: the population is drawn from a seeded generator passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from itb.pharmacology.bolus import bolus_course
from itb.pharmacology.model import Patients, effect_mas, typical_patient
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal_course import withdrawal_outlook

# Albright 2007 (S64): median 3.3 µg/mL, range 0.2 to 20, at a mean 607 µg/day.
ALBRIGHT_MEAN_DOSE_UG_PER_DAY = 607.0  # S64
ALBRIGHT_MEDIAN_UG_PER_ML = 3.3  # S64
HOURS_PER_DAY = 24.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    source: str
    low: float
    high: float
    measure: Callable[[Patients, Patients], float]  # (typical, population) -> value

    def met_by(self, value: float) -> bool:
        return self.low <= value <= self.high


def _bolus(dose_ug: float, what: str) -> Callable[[Patients, Patients], float]:
    def measure(typical: Patients, _population: Patients) -> float:
        course = bolus_course(typical, dose_ug, step_h=0.01)
        return float(getattr(course, what)[0])

    return measure


def _responders_25ug(_typical: Patients, population: Patients) -> float:
    return float(np.mean(bolus_course(population, 25.0, step_h=0.05).duration_h > 0.0))


def _duration_gain_h(typical: Patients, _population: Patients) -> float:
    """Smallest gain of duration from one screening dose to the next (25, 50, 75, 100 µg)."""
    durations = [bolus_course(typical, d, step_h=0.01).duration_h[0] for d in (25, 50, 75, 100)]
    return float(np.min(np.diff(durations)))


def _fall(rate_ug_per_day: float, typical: Patients) -> float:
    csf = typical.steady_state_csf_ug_per_ml(rate_ug_per_day / HOURS_PER_DAY)
    return float(effect_mas(csf, typical)[0])


def _catheter_csf_median(_typical: Patients, population: Patients) -> float:
    rate = ALBRIGHT_MEAN_DOSE_UG_PER_DAY / HOURS_PER_DAY
    return float(np.median(population.catheter_csf_ug_per_ml(rate)))


def _catheter_csf_percentile(q: float) -> Callable[[Patients, Patients], float]:
    def measure(_typical: Patients, population: Patients) -> float:
        # doses spread evenly over the usual maintenance range, 300 to 800 µg/day
        doses = np.linspace(300.0, 800.0, population.n)
        csf = population.catheter_csf_ug_per_ml(doses / HOURS_PER_DAY)
        return float(np.percentile(csf, q))

    return measure


def _withdrawal(what: str) -> Callable[[Patients, Patients], float]:
    def measure(typical: Patients, _population: Patients) -> float:
        outlook = withdrawal_outlook(typical, 600.0 / HOURS_PER_DAY)
        return float(getattr(outlook, what)[0])

    return measure


TARGETS: tuple[Target, ...] = (
    Target(
        "50 µg bolus: onset (h)",
        "label 0.5 to 1 h (S45); seed within 1 h",
        0.0,
        1.0,
        _bolus(50.0, "onset_h"),
    ),
    Target(
        "50 µg bolus: peak (h)",
        "label 4 to 6 h (S45); seed about 4 h",
        3.5,
        5.0,
        _bolus(50.0, "peak_h"),
    ),
    Target(
        "50 µg bolus: duration (h)",
        "label 4 to 8 h (S45); seed 8 to 12 h",
        7.0,
        9.0,
        _bolus(50.0, "duration_h"),
    ),
    Target("75 µg bolus: duration (h)", "seed 8 to 12 h", 8.0, 12.0, _bolus(75.0, "duration_h")),
    Target(
        "100 µg bolus: duration (h)",
        "seed 8 to 12 h, read to the half hour",
        8.0,
        12.5,
        _bolus(100.0, "duration_h"),
    ),
    Target(
        "duration gain per screening-dose step (h)",
        "label: varying with dose (S45)",
        0.5,
        6.0,
        _duration_gain_h,
    ),
    Target(
        "share responding to 25 µg",
        "label: small patients start at 25 µg (S45 S46)",
        0.10,
        0.60,
        _responders_25ug,
    ),
    Target(
        "CSF half-life after a bolus, typical (h)",
        "0.9 to 5 h (S60)",
        0.9,
        5.0,
        lambda t, _p: float(t.csf_half_life_h[0]),
    ),
    Target(
        "CSF clearance after a bolus, typical (mL/h)",
        "13 to 80 mL/h (S60)",
        13.0,
        80.0,
        lambda t, _p: float(t.apparent_clearance_ml_per_h[0]),
    ),
    Target(
        "catheter CSF at 607 µg/day, population median (µg/mL)",
        "median 3.3 (S64); within a quarter",
        3.3 / 1.25,
        3.3 * 1.25,
        _catheter_csf_median,
    ),
    Target(
        "catheter CSF at 300 to 800 µg/day, 1st percentile (µg/mL)",
        "range 0.2 to 20 (S64)",
        0.2,
        1.0,
        _catheter_csf_percentile(1.0),
    ),
    Target(
        "catheter CSF at 300 to 800 µg/day, 99th percentile (µg/mL)",
        "range 0.2 to 20 (S64)",
        10.0,
        20.0,
        _catheter_csf_percentile(99.0),
    ),
    Target(
        "MAS fall gained from 300 to 600 µg/day, typical (points)",
        "issue 15: a forecast that changes visibly",
        0.3,
        3.0,
        lambda t, _p: _fall(600.0, t) - _fall(300.0, t),
    ),
    Target(
        "MAS fall gained from 600 to 1000 µg/day, typical (points)",
        "issue 15: a usable slope up to 1000 µg/day",
        0.15,
        3.0,
        lambda t, _p: _fall(1000.0, t) - _fall(600.0, t),
    ),
    Target(
        "MAS fall gained from 100 to 1000 µg/day, typical (points)",
        "issue 15: a usable slope across 100 to 1000 µg/day",
        1.0,
        3.0,
        lambda t, _p: _fall(1000.0, t) - _fall(100.0, t),
    ),
    Target(
        "stop at 600 µg/day: early withdrawal signs from (h)",
        "within the first day (S54 S55); course over 1 to 3 days (S98)",
        6.0,
        24.0,
        _withdrawal("signs_from_h"),
    ),
    Target(
        "stop at 600 µg/day: severe withdrawal signs from (h)",
        "24 to 72 h (S55); 1 to 3 days (S98)",
        24.0,
        72.0,
        _withdrawal("severe_from_h"),
    ),
)


def measure_all(seed: int = 2027, n: int = 2000) -> list[tuple[Target, float]]:
    """Every target with the model's value: the typical patient and a seeded population."""
    typical = typical_patient()
    population = draw_patients(np.random.default_rng(seed), n)
    return [(target, target.measure(typical, population)) for target in TARGETS]
