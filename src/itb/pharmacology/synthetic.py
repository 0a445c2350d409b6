"""Synthetic screening trials: what a known patient would score, with measurement noise.

For the fit's calibration (tests, ``bench/bench_pk_fit.py``) and the demo clinic. The trial
follows the label: 50 µg, then 75 and 100 µg a day apart until a response (S45 S46); each day has
the baseline at hour 0 and hourly scores to hour 8 (the clinic's sheet), each score the model's
MAS plus a normal error of ``RESIDUAL_SD_MAS``, rounded to a hundredth and kept on the 0 to 5
scale (S75). Pure: the seeded generator is passed in.
"""

from __future__ import annotations

import numpy as np

from itb.drugs import BACLOFEN
from itb.pharmacology.exact import Bolus
from itb.pharmacology.fit import (
    MasScore,
    SteadyScore,
    TrialData,
    TrialDay,
    predicted_scores,
)
from itb.pharmacology.model import RESPONSE_THRESHOLD_MAS, Patients
from itb.pharmacology.population import MAS_MAX, RESIDUAL_SD_MAS
from itb.pharmacology.screening import HOURLY_FOR_8H


def _noisy(clean: np.ndarray, rng: np.random.Generator, sd_mas: float) -> list[float]:
    noisy = clean + rng.normal(0.0, sd_mas, clean.shape)
    return [float(v) for v in np.round(np.clip(noisy, 0.0, MAS_MAX), 2)]


def screening_days(
    patient: Patients, rng: np.random.Generator, sd_mas: float = RESIDUAL_SD_MAS
) -> list[TrialDay]:
    """The label's escalation for one patient, stopping at the first dose with a fall of at
    least 1 point from the day's baseline (S45 S46 S51)."""
    days: list[TrialDay] = []
    hours = (0, *(int(h) for h in HOURLY_FOR_8H))
    for dose in BACLOFEN.screening_doses_ug:
        day = TrialData(
            boluses=(Bolus(0.0, dose),), scores=tuple(MasScore(float(h), 0.0) for h in hours)
        )
        scores = _noisy(predicted_scores(patient, day)[0], rng, sd_mas)
        days.append(TrialDay(dose, dict(zip(hours, scores, strict=True))))
        if scores[0] - min(scores[1:]) >= RESPONSE_THRESHOLD_MAS:
            break
    return days


def steady_scores(
    patient: Patients,
    daily_doses_ug: tuple[float, ...],
    rng: np.random.Generator,
    sd_mas: float = RESIDUAL_SD_MAS,
) -> tuple[SteadyScore, ...]:
    """Scores at steady state on continuous daily doses (follow-up visits), with noise."""
    data = TrialData(steady_scores=tuple(SteadyScore(d, 0.0) for d in daily_doses_ug))
    values = _noisy(predicted_scores(patient, data)[0], rng, sd_mas)
    return tuple(SteadyScore(d, m) for d, m in zip(daily_doses_ug, values, strict=True))
