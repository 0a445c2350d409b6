"""The patient page's forecast: predicted spasticity over the next hours on the current program,
with its 80% prediction interval, and the withdrawal-risk time if delivery stops, from
:mod:`itb.pharmacology`: the patient's own model when the screening trial recorded MAS scores
(:mod:`itb.pharmacology.fit`, the population as the prior), the typical patient otherwise.

Pure: the start time, the projected empty date and the screening records are passed in. The
model, the response rule (a MAS fall of at least 1.0, S51) and the withdrawal threshold (half the
maintenance effect lost, [R]) are the pharmacology's own, as ``itb pk program`` uses them
(docs/pharmacology.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from itb.drugs import BACLOFEN
from itb.pharmacology.exact import Propagator, pieces_from_segments, predict
from itb.pharmacology.fit import PatientFit, TrialDay, fit_patient, prior_fit, trial_data
from itb.pharmacology.model import (
    EFFECT,
    RESPONSE_THRESHOLD_MAS,
    FloatArray,
    csf_ug_per_ml,
    effect_mas,
    predicted_mas,
)
from itb.pharmacology.prediction import Dosing, predict_response
from itb.pharmacology.thresholds import DEFAULT_WITHDRAWAL_FRACTION
from itb.pharmacology.withdrawal import withdrawal_risk_time_h, withdrawal_threshold
from itb.pharmacology.withdrawal_course import withdrawal_outlook
from itb.therapy import Program, rate_segments, to_pump_s
from itb.units import HOURS_PER_DAY

FORECAST_HOURS = 72.0
STEP_H = 0.25
# Run the program this long before the window, from steady state on its mean rate, so that a
# flex schedule starts the window at its periodic steady state (the effect site's half-life is
# about 3 h, ke0 = 0.22 /h: three days is many half-lives).
WARM_UP_H = 72.0
BAND_SEED = 0


def screening_days(records: Sequence[tuple[datetime, Mapping[str, Any]]]) -> list[TrialDay]:
    """The stored screening doses (bolus time, visit details) with hourly MAS, oldest first;
    doses recorded before the hourly scores existed carry none and are left out."""
    days = []
    for given_at, details in sorted(records, key=lambda r: r[0]):
        scores = details.get("scores")
        if isinstance(scores, Mapping) and scores:
            by_hour = {int(h): float(m) for h, m in scores.items()}
            days.append(TrialDay(float(details["dose_ug"]), by_hour, given_at))
    return days


def patient_fit(days: Sequence[TrialDay]) -> PatientFit:
    """The patient's own model from the screening trial (the typical patient if no scores)."""
    return fit_patient(trial_data(days))


@dataclass(frozen=True, slots=True)
class EffectForecast:
    start: datetime
    t_h: FloatArray  # hours after start
    csf_ug_per_ml: FloatArray
    mas: FloatArray  # predicted Modified Ashworth score (0 to 5, 1+ coded 2)
    baseline_mas: float
    response_mas: float  # at or below: a response (a fall of at least 1.0 point, S51)
    withdrawal_mas: float  # at or above: withdrawal risk (half the maintenance effect lost)
    mean_daily_dose_ug: float
    # hours from a stop of delivery (at steady state on this program) to the withdrawal risk
    risk_after_stop_h: float | None
    empty_at_h: float | None  # the projected empty reservoir, when inside the window
    risk_after_empty_h: float | None  # hours after start when withdrawal risk begins, if empty
    low_mas: FloatArray  # the 80% prediction interval of a score (model + measurement)
    high_mas: FloatArray
    level: float
    personal: bool  # True: the patient's own model; False: the typical patient
    scores_fitted: int  # MAS scores the patient's model was fitted to (0: typical patient)
    # if delivery stops (at steady state on this program): hours to early and to severe
    # withdrawal signs (withdrawal_course, S98 S54 S55); None: not within four days
    signs_after_stop_h: float | None = None
    severe_after_stop_h: float | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=float(self.t_h[-1]))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def forecast_effect(
    program: Program,
    start: datetime,
    empty_at: datetime | None = None,
    hours: float = FORECAST_HOURS,
    fraction: float = DEFAULT_WITHDRAWAL_FRACTION,
    fit: PatientFit | None = None,
) -> EffectForecast:
    """Predicted MAS from ``start`` for ``hours`` on ``program``; delivery stops at ``empty_at``
    when that falls inside the window. ``fit``: the patient's model (default: the typical
    patient, with the population's spread as the interval)."""
    fit = fit if fit is not None else prior_fit()
    patient = fit.patient()
    mean_rate_ug_per_h = program.mean_daily_dose_ug() / HOURS_PER_DAY
    end = start + timedelta(hours=hours)
    stop = empty_at if empty_at is not None and start <= empty_at < end else None
    warm_start = start - timedelta(hours=WARM_UP_H)
    segments = rate_segments(program, warm_start, stop or end)
    pieces = pieces_from_segments(segments, to_pump_s(start))
    propagator = Propagator(patient)
    initial = propagator.steady_state(mean_rate_ug_per_h)
    times = np.arange(0.0, hours + 1e-9, STEP_H)
    states = predict(patient, pieces, [], times, initial_state=initial, t0_h=-WARM_UP_H)
    effect = effect_mas(states[..., EFFECT], patient)
    dosing = Dosing(tuple(pieces), (), mean_rate_ug_per_h, -WARM_UP_H)
    # a fixed seed: the same page shows the same band on every load
    band = predict_response(fit, dosing, times, np.random.default_rng(BAND_SEED))
    threshold = withdrawal_threshold(patient, mean_rate_ug_per_h, fraction)
    baseline = float(patient.baseline_mas[0])

    at_steady = propagator.steady_state(mean_rate_ug_per_h)
    risk_h = float(withdrawal_risk_time_h(patient, at_steady, mean_rate_ug_per_h, fraction)[0])
    outlook = withdrawal_outlook(patient, mean_rate_ug_per_h)
    empty_h = risk_empty_h = None
    if stop is not None:
        empty_h = (stop - start).total_seconds() / 3600.0
        at_stop = predict(patient, pieces, [], [empty_h], initial_state=initial, t0_h=-WARM_UP_H)
        after = float(
            withdrawal_risk_time_h(patient, at_stop[:, 0], mean_rate_ug_per_h, fraction)[0]
        )
        risk_empty_h = _finite(empty_h + after)
    return EffectForecast(
        start=start,
        t_h=times,
        csf_ug_per_ml=csf_ug_per_ml(states, patient)[0],
        mas=predicted_mas(effect, patient)[0],
        baseline_mas=baseline,
        response_mas=baseline - RESPONSE_THRESHOLD_MAS,
        withdrawal_mas=baseline - float(threshold.threshold_effect_mas[0]),
        mean_daily_dose_ug=program.mean_daily_dose_ug(),
        risk_after_stop_h=_finite(risk_h),
        empty_at_h=empty_h,
        risk_after_empty_h=risk_empty_h,
        low_mas=band.low_mas,
        high_mas=band.high_mas,
        level=band.level,
        personal=not fit.typical,
        scores_fitted=fit.n_scores,
        signs_after_stop_h=_finite(float(outlook.signs_from_h[0])),
        severe_after_stop_h=_finite(float(outlook.severe_from_h[0])),
    )


# Other daily doses, as fractions of the current one: what titration could change [R]
WHAT_IF_FRACTIONS = (0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True, slots=True)
class SettledMas:
    """The MAS settled on a continuous daily dose, with its prediction interval."""

    daily_dose_ug: float
    mas: float
    low_mas: float
    high_mas: float


def settled_by_dose(fit: PatientFit, current_daily_dose_ug: float) -> list[SettledMas]:
    """The settled MAS at fractions of the current daily dose (at most the library's cap)."""
    cap = BACLOFEN.absolute_max_daily_dose_ug
    doses = sorted({min(round(current_daily_dose_ug * f), cap) for f in WHAT_IF_FRACTIONS})
    rows = []
    for dose in doses:
        dosing = Dosing(initial_rate_ug_per_h=dose / HOURS_PER_DAY)
        band = predict_response(fit, dosing, [0.0], np.random.default_rng(BAND_SEED))
        rows.append(
            SettledMas(
                float(dose), float(band.mas[0]), float(band.low_mas[0]), float(band.high_mas[0])
            )
        )
    return rows
