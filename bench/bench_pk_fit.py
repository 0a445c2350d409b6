"""Each patient's own model: is the fit calibrated, and how fast is it?

Work: N_TRIALS synthetic patients drawn from the population (seeded), each with the label's
screening trial (50, then 75 and 100 µg a day apart until a response; hourly MAS 0 to 8 h with a
normal measurement error of RESIDUAL_SD_MAS) and held-out follow-up scores at steady state on
HELD_OUT_DOSES_UG. The fit sees the trial only. Printed:

* recovery of each varied parameter: median relative error of the fit and of the typical patient
  (the prior, no fit), and the Spearman correlation of fitted against true;
* coverage of the 80% prediction intervals (posterior draws + residual error) on the held-out
  scores, goal within 5 points of 80%;
* the time per fit, against a baseline measured in the same run: the same least-squares fit with
  SciPy's own one-patient-at-a-time finite-difference Jacobian, on BASELINE_TRIALS trials.

Runs on WORKERS processes (one seeded generator per trial: the result does not depend on them).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import least_squares
from scipy.special import ndtr
from scipy.stats import spearmanr

from itb.pharmacology.fit import (
    PatientFit,
    TrialData,
    fit_patient,
    patients_at,
    predicted_scores,
    trial_data,
)
from itb.pharmacology.model import FloatArray, Patients
from itb.pharmacology.population import MAS_MAX, N_NORMALS, RESIDUAL_SD_MAS
from itb.pharmacology.prediction import Dosing, predict_response
from itb.pharmacology.synthetic import screening_days, steady_scores

N_TRIALS = int(os.environ.get("ITB_BENCH_FIT_TRIALS", "1000"))
BASELINE_TRIALS = 50
WORKERS = 2
SEED = 20261130
HELD_OUT_DOSES_UG = (200.0, 400.0, 600.0, 800.0)
LEVEL = 0.8
SAMPLES = 400
COVERAGE_GOAL_POINTS = 5.0


@dataclass(frozen=True, slots=True)
class Outcome:
    true_z: FloatArray
    fit_z: FloatArray
    covered: int
    randomised: int
    held_out: int
    fit_s: float


def _held_out_data(patient: Patients, rng: np.random.Generator) -> TrialData:
    return TrialData(steady_scores=steady_scores(patient, HELD_OUT_DOSES_UG, rng))


def _coverage(fitted: PatientFit, held: TrialData, rng: np.random.Generator) -> tuple[int, int]:
    """Held-out scores inside the band (as the clinic draws it: ties at the scale's ends count as
    inside), and inside by a randomised PIT (a score at 0 or 5 is placed at random within the
    band's atom there), which is what "80%" means for a score the scale clips."""
    covered = randomised = 0
    for score in held.steady_scores:
        # steady state on the dose: the band at one time after a long constant infusion
        rate = score.daily_dose_ug / 24.0
        band = predict_response(
            fitted, Dosing(initial_rate_ug_per_h=rate), [0.0], rng, LEVEL, SAMPLES
        )
        covered += int(band.low_mas[0] - 1e-9 <= score.mas <= band.high_mas[0] + 1e-9)
        one = TrialData(steady_scores=(score,))
        lines = predicted_scores(fitted.sample(rng, SAMPLES), one)[:, 0]
        cdf = float(np.mean(ndtr((score.mas - lines) / fitted.residual_sd_mas)))
        # the scale's ends are atoms: below 0 and above 5 are scored 0 and 5
        below = 0.0 if score.mas <= 0.0 else cdf
        at_or_below = 1.0 if score.mas >= MAS_MAX else cdf
        pit = below + rng.uniform() * (at_or_below - below)
        tail = (1.0 - LEVEL) / 2.0
        randomised += int(tail <= pit <= 1.0 - tail)
    return covered, randomised


def one_trial(index: int) -> Outcome:
    rng = np.random.default_rng([SEED, index])
    true_z = rng.standard_normal(N_NORMALS)
    patient = patients_at(true_z[None, :])
    data = trial_data(screening_days(patient, rng))
    held = _held_out_data(patient, rng)
    started = time.perf_counter()
    fitted = fit_patient(data)
    fit_s = time.perf_counter() - started
    covered, randomised = _coverage(fitted, held, rng)
    return Outcome(true_z, fitted.z_map, covered, randomised, len(held.steady_scores), fit_s)


def baseline_fit_s(index: int) -> float:
    """The same MAP fit with SciPy's default finite-difference Jacobian (one patient per call)."""
    rng = np.random.default_rng([SEED, index])
    true_z = rng.standard_normal(N_NORMALS)
    data = trial_data(screening_days(patients_at(true_z[None, :]), rng))
    observed = data.observed_mas

    def residuals(z: FloatArray) -> FloatArray:
        predicted = predicted_scores(patients_at(z[None, :]), data)[0]
        return np.concatenate([z, (observed - predicted) / RESIDUAL_SD_MAS])

    started = time.perf_counter()
    least_squares(residuals, np.zeros(N_NORMALS), method="trf", max_nfev=200)
    return time.perf_counter() - started


def _recovery(outcomes: list[Outcome]) -> None:
    true = patients_at(np.array([o.true_z for o in outcomes]))
    fitted = patients_at(np.array([o.fit_z for o in outcomes]))
    typical = patients_at(np.zeros((1, N_NORMALS)))
    print(f"{'parameter':<28} {'fit: median rel. error':>22} {'typical: median rel. error':>27}"
          f" {'Spearman fit/true':>18}")  # fmt: skip
    for f in fields(Patients):
        t, v = getattr(true, f.name), getattr(fitted, f.name)
        if np.ptp(t) <= 1e-12 * abs(float(t[0])):
            continue
        fit_err = np.median(np.abs(v - t) / t)
        prior_err = np.median(np.abs(float(getattr(typical, f.name)[0]) - t) / t)
        rho = spearmanr(v, t).statistic
        print(f"{f.name:<28} {fit_err:>22.1%} {prior_err:>27.1%} {rho:>18.2f}")


def main() -> None:
    print(
        f"{N_TRIALS} synthetic screening trials (seed {SEED}), residual SD {RESIDUAL_SD_MAS} MAS, "
        f"held-out steady-state scores at {', '.join(f'{d:g}' for d in HELD_OUT_DOSES_UG)} "
        f"µg/day, {SAMPLES} posterior draws per band, {WORKERS} workers"
    )
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        started = time.perf_counter()
        outcomes = pool.map(one_trial, range(N_TRIALS), chunksize=25)
        wall_s = time.perf_counter() - started
        base = pool.map(baseline_fit_s, range(BASELINE_TRIALS))
    _recovery(outcomes)
    covered = sum(o.covered for o in outcomes)
    total = sum(o.held_out for o in outcomes)
    coverage = 100.0 * covered / total
    pit = 100.0 * sum(o.randomised for o in outcomes) / total
    low, high = 100 * LEVEL - COVERAGE_GOAL_POINTS, 100 * LEVEL + COVERAGE_GOAL_POINTS
    for what, value in (("as drawn, ends inclusive", coverage), ("randomised PIT", pit)):
        verdict = "met" if low <= value <= high else "NOT met"
        print(
            f"80% prediction intervals ({what}): {value:.1f}% of {total} held-out scores "
            f"covered (goal {low:g} to {high:g}%: {verdict})"
        )
    fit_ms = 1000 * float(np.mean([o.fit_s for o in outcomes]))
    base_ms = 1000 * float(np.mean(base))
    print(
        f"time per fit: {fit_ms:.1f} ms (batched Jacobian) vs {base_ms:.1f} ms (SciPy's own "
        f"finite differences, {BASELINE_TRIALS} trials): {base_ms / fit_ms:.1f}x faster; "
        f"goal < 100 ms per fit; whole run {wall_s:.1f} s"
    )


if __name__ == "__main__":
    main()
