"""Withdrawal risk after a stop, and time below the threshold, against solve_ivp."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from itb.pharmacology.exact import Piece, Propagator, predict
from itb.pharmacology.model import EFFECT, ParameterError, typical_patient
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal import (
    time_below_threshold_h,
    withdrawal_risk_time_h,
    withdrawal_threshold,
)
from tests.pharmacology.reference import rhs_factory


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_time_after_a_stop_matches_solve_ivp_event(seed: int) -> None:
    patients = draw_patients(np.random.default_rng(seed), 4)
    rate = 25.0  # 600 µg/day
    state = Propagator(patients).steady_state(rate)
    risk = withdrawal_risk_time_h(patients, state, rate, fraction=0.5)
    threshold = withdrawal_threshold(patients, rate, 0.5).threshold_ce_ug_per_ml
    for i in range(patients.n):

        def crossing(_t, x, i=i):  # type: ignore[no-untyped-def]
            return x[2] - threshold[i]

        crossing.terminal = True  # type: ignore[attr-defined]
        sol = solve_ivp(
            rhs_factory(patients, i, 0.0),
            (0.0, 400.0),
            state[i],
            events=crossing,
            rtol=1e-10,
            atol=1e-14,
        )
        assert risk[i] == pytest.approx(sol.t_events[0][0], abs=1e-4)


def test_risk_time_is_within_a_day_for_the_typical_patient_and_grows_with_the_fraction() -> None:
    patient = typical_patient()
    state = Propagator(patient).steady_state(25.0)
    soon = withdrawal_risk_time_h(patient, state, 25.0, fraction=0.2)[0]
    later = withdrawal_risk_time_h(patient, state, 25.0, fraction=0.8)[0]
    assert 0.0 < soon < later < 48.0


def test_time_below_matches_a_dense_reference() -> None:
    patient = draw_patients(np.random.default_rng(4), 1)
    pieces = [
        Piece(0.0, 30.0, 25.0),
        Piece(30.0, 80.0, 0.0),  # a stop
        Piece(80.0, 90.0, 60.0),
        Piece(90.0, 140.0, 5.0),  # far too little
        Piece(140.0, 200.0, 25.0),
    ]
    initial = Propagator(patient).steady_state(25.0)[0]
    exact = time_below_threshold_h(patient, pieces, 25.0, 0.5)[0]
    # reference: solve_ivp piece by piece, Ce sampled every 0.005 h
    thr = withdrawal_threshold(patient, 25.0, 0.5).threshold_ce_ug_per_ml[0]
    dt, below, x = 0.005, 0.0, initial
    for piece in pieces:
        grid = np.arange(piece.start_h, piece.end_h, dt) + dt / 2
        sol = solve_ivp(
            rhs_factory(patient, 0, piece.rate_ug_per_h),
            (piece.start_h, piece.end_h),
            x,
            t_eval=grid,
            rtol=1e-10,
            atol=1e-13,
        )
        below += np.sum(sol.y[2] < thr) * dt
        x = solve_ivp(
            rhs_factory(patient, 0, piece.rate_ug_per_h),
            (piece.start_h, piece.end_h),
            x,
            rtol=1e-10,
            atol=1e-13,
        ).y[:, -1]
    assert exact == pytest.approx(below, abs=0.02)
    assert exact > 20.0  # the 50 h stop is mostly below the threshold


def test_no_time_below_on_steady_maintenance() -> None:
    patients = draw_patients(np.random.default_rng(8), 3)
    pieces = [Piece(24.0 * d, 24.0 * (d + 1), 25.0) for d in range(30)]
    np.testing.assert_allclose(time_below_threshold_h(patients, pieces, 25.0), 0.0)


def test_bad_fraction_is_refused() -> None:
    with pytest.raises(ParameterError, match="fraction"):
        withdrawal_threshold(typical_patient(), 25.0, 1.5)


def test_time_below_over_months_with_stops_matches_dense_sampling() -> None:
    # 40 days of a 4-step flex program with an 18 h stop every 8 days (1,600 h, 160 pieces),
    # three patients at once: the hours below match Ce sampled every 0.01 h by predict (each
    # crossing is within half a sample, 0.005 h, of the sampled count).
    patients = draw_patients(np.random.default_rng(11), 3)
    steps = [(0.0, 6.0, 20.0), (6.0, 12.0, 30.0), (12.0, 20.0, 25.0), (20.0, 24.0, 22.0)]
    pieces = [
        Piece(24.0 * day + a, 24.0 * day + b, 0.0 if day % 8 == 3 and a < 18.0 else rate)
        for day in range(40)
        for a, b, rate in steps
    ]
    exact = time_below_threshold_h(patients, pieces, 25.0)
    dt = 0.01
    times = np.arange(dt / 2, 40 * 24.0, dt)
    initial = Propagator(patients).steady_state(25.0)
    ce = predict(patients, pieces, [], times, initial_state=initial, t0_h=0.0)[..., EFFECT]
    thr = withdrawal_threshold(patients, 25.0).threshold_ce_ug_per_ml
    sampled = np.sum(ce < thr[:, None], axis=1) * dt
    crossings = np.sum(np.diff(ce < thr[:, None], axis=1), axis=1)
    assert np.all(crossings >= 10)  # every stop dips below and comes back
    assert np.all(np.abs(exact - sampled) <= 0.005 * crossings + 1e-9)
    one_by_one = [time_below_threshold_h(patients.take(i), pieces, 25.0)[0] for i in range(3)]
    np.testing.assert_allclose(exact, one_by_one, rtol=0, atol=1e-9)
