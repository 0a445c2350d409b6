"""Time course of a single bolus: onset, peak, duration above the response threshold.

Metrics come from the exact solution sampled every minute (``step_h``); threshold crossings are
placed by linear interpolation between samples, so they are exact to well under a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from itb.guardrails import BOLUS_DOSE
from itb.pharmacology.exact import Bolus, DosingError, predict
from itb.pharmacology.model import (
    EFFECT,
    RESPONSE_THRESHOLD_MAS,
    FloatArray,
    Patients,
    csf_ug_per_ml,
    effect_mas,
)

DEFAULT_HORIZON_H = 48.0  # the seed: "by the following day, the test dose is usually eliminated"
DEFAULT_STEP_H = 1.0 / 60.0


@dataclass(frozen=True, slots=True)
class BolusCourse:
    """A bolus's course for ``n`` patients. Arrays of shape (n,) or (n, len(t_h))."""

    dose_ug: float
    threshold_mas: float
    t_h: FloatArray
    csf_ug_per_ml: FloatArray
    effect_mas: FloatArray
    onset_h: FloatArray  # NaN when the effect never reaches the threshold
    peak_h: FloatArray
    peak_effect_mas: FloatArray
    duration_h: FloatArray  # total time at or above the threshold (0 if never)
    offset_h: FloatArray  # last time above the threshold (NaN if never)


def check_dose(dose_ug: float) -> float:
    if not (
        math.isfinite(dose_ug) and BOLUS_DOSE.absolute_min < dose_ug <= BOLUS_DOSE.absolute_max
    ):
        reason = (
            f"allowed more than {BOLUS_DOSE.absolute_min:g} up to "
            f"{BOLUS_DOSE.absolute_max:g} µg ({BOLUS_DOSE.source})"
        )
        raise DosingError("dose_ug", reason, f"dose_ug={dose_ug}: {reason}")
    return dose_ug


def bolus_course(
    patients: Patients,
    dose_ug: float,
    threshold_mas: float = RESPONSE_THRESHOLD_MAS,
    horizon_h: float = DEFAULT_HORIZON_H,
    step_h: float = DEFAULT_STEP_H,
) -> BolusCourse:
    check_dose(dose_ug)
    if not (math.isfinite(threshold_mas) and threshold_mas > 0.0):
        reason = "must be more than 0 MAS points"
        raise DosingError("threshold_mas", reason, f"threshold_mas={threshold_mas}: {reason}")
    if not (math.isfinite(horizon_h) and 1.0 <= horizon_h <= 24.0 * 14):
        reason = "allowed 1 to 336 h"
        raise DosingError("horizon_h", reason, f"horizon_h={horizon_h}: {reason}")
    t_h = np.linspace(0.0, horizon_h, round(horizon_h / step_h) + 1)
    states = predict(patients, [], [Bolus(0.0, dose_ug)], t_h)
    csf = csf_ug_per_ml(states, patients)
    effect = effect_mas(states[..., EFFECT], patients)
    onset, offset, duration = threshold_crossings(t_h, effect, threshold_mas)
    peak_index = np.argmax(effect, axis=1)
    return BolusCourse(
        dose_ug=dose_ug,
        threshold_mas=threshold_mas,
        t_h=t_h,
        csf_ug_per_ml=csf,
        effect_mas=effect,
        onset_h=onset,
        peak_h=t_h[peak_index],
        peak_effect_mas=effect[np.arange(patients.n), peak_index],
        duration_h=duration,
        offset_h=offset,
    )


def threshold_crossings(
    t_h: FloatArray, values: FloatArray, threshold: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """First upward crossing, last downward crossing and total time at or above ``threshold``.

    ``values`` has shape (n, len(t_h)); crossings are linearly interpolated between samples.
    """
    above = values >= threshold
    dt = np.diff(t_h)
    v0, v1 = values[:, :-1], values[:, 1:]
    a0, a1 = above[:, :-1], above[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(v1 != v0, (threshold - v0) / (v1 - v0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    cross_t = t_h[:-1] + frac * dt
    # time above within each sample interval
    time_above = np.where(a0 & a1, dt, 0.0)
    time_above += np.where(~a0 & a1, t_h[1:] - cross_t, 0.0)
    time_above += np.where(a0 & ~a1, cross_t - t_h[:-1], 0.0)
    duration = time_above.sum(axis=1)

    n = values.shape[0]
    onset = np.full(n, np.nan)
    offset = np.full(n, np.nan)
    rows = np.arange(n)
    ever = above.any(axis=1)
    first = np.argmax(above, axis=1)  # first sample at or above
    onset_at_sample = t_h[first]
    previous = np.maximum(first - 1, 0)
    onset_interp = np.where(first > 0, cross_t[rows, previous], t_h[0])
    onset[ever] = np.where(first[ever] > 0, onset_interp[ever], onset_at_sample[ever])
    last = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)  # last sample at or above
    has_next = last < above.shape[1] - 1
    offset_interp = np.where(has_next, cross_t[rows, np.minimum(last, dt.size - 1)], t_h[-1])
    offset[ever] = offset_interp[ever]
    return onset, offset, duration
