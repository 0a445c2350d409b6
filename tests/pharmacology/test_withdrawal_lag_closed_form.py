"""The syndrome's lag behind the loss of effect, summed in closed form (issue 13: the cohort
simulator runs it on 0.1 h grids of days), equals the step-by-step recurrence it replaced."""

from __future__ import annotations

import numpy as np

from itb.pharmacology.exact import Piece, Propagator, predict
from itb.pharmacology.model import EFFECT, effect_mas
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal_course import SIGNS_TIME_CONSTANT_H, severity_course


def _stepwise(drive: np.ndarray, t_h: np.ndarray) -> np.ndarray:
    """dS/dt = (D - S) / tau, exact for D linear between samples, one step at a time."""
    tau, s = SIGNS_TIME_CONSTANT_H, np.zeros_like(drive)
    for k in range(1, drive.shape[1]):
        dt = t_h[k] - t_h[k - 1]
        a = np.exp(-dt / tau)
        g = 1.0 - tau / dt * (1.0 - a)
        d0, d1 = drive[:, k - 1], drive[:, k]
        s[:, k] = s[:, k - 1] * a + d0 * (1.0 - a) + (d1 - d0) * g
    return s


def _course_both_ways(t_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    patients = draw_patients(np.random.default_rng(3), 4)
    rate = 500.0 / 24.0
    # on the program, a 2-day stop (empty reservoir), then back on it: days of grid
    pieces = [Piece(0.0, 24.0, rate), Piece(72.0, float(t_h[-1]) + 1.0, rate)]
    closed = severity_course(patients, pieces, rate, t_h).severity
    # the drive the lag follows, rebuilt from the exact states
    ss = patients.steady_state_csf_ug_per_ml(np.full(patients.n, rate))
    maintenance = effect_mas(ss, patients)
    states = predict(
        patients, pieces, [], t_h, initial_state=Propagator(patients).steady_state(rate)
    )
    effect = effect_mas(states[..., EFFECT], patients)
    drive = np.clip(1.0 - effect / maintenance[:, None], 0.0, 1.0)
    return closed, _stepwise(drive, t_h)


def test_the_closed_form_lag_is_the_recurrence_over_three_weeks_of_tenth_hours() -> None:
    t_h = np.linspace(0.0, 21 * 24.0, 21 * 240 + 1)  # several blocks of the closed form
    closed, stepwise = _course_both_ways(t_h)
    assert np.max(np.abs(closed - stepwise)) < 1e-12
    assert closed.max() > 0.75  # the stop reaches the severe grade: a real course, not zeros


def test_the_closed_form_lag_is_the_recurrence_on_an_uneven_grid() -> None:
    rng = np.random.default_rng(5)
    t_h = np.concatenate(([0.0], np.sort(rng.uniform(0.0, 240.0, 3000)), [240.0]))
    t_h = np.unique(t_h)
    closed, stepwise = _course_both_ways(t_h)
    assert np.max(np.abs(closed - stepwise)) < 1e-12
