"""Exact PK/PD propagation against SciPy's solve_ivp on the same work, in the same run.

Work: DAYS days of a 10-step daily flex program, states (tip CSF, distal CSF, effect site) at
every hour, for N_PATIENTS drawn patients. Baseline: what a competent engineer would write with
SciPy: ONE solve_ivp over the whole batch (3 x N_PATIENTS states) with a vectorised right-hand
side, DOP853, restarted at each rate change, at the tolerance printed (RTOL, ATOL_UG: the same
values are passed to solve_ivp). Both are timed in full in this run (best of 7 for exact, one run
for the baseline). Accuracy: the largest difference between the two, relative to each state's
largest value over all patients; the goal is a speed-up >= 100 x at that agreement.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.integrate import solve_ivp

from itb.pharmacology.exact import Piece, predict
from itb.pharmacology.model import FloatArray, Patients
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal import time_below_threshold_h

N_PATIENTS = 1000
DAYS = 90
RTOL = 1e-8
ATOL_UG = 1e-10  # absolute tolerance on every state (µg, µg/mL): far below any dose
GOAL_SPEEDUP = 100.0
# 10 steps a day (start hour, µg/h): a flex program around 600 µg/day
STEPS = [(0, 18.0), (3, 16.0), (6, 26.0), (8, 30.0), (11, 24.0), (13, 28.0), (16, 26.0),
         (18, 30.0), (20, 24.0), (22, 20.0)]  # fmt: skip


def program_pieces(days: int) -> list[Piece]:
    pieces = []
    for day in range(days):
        for i, (start, rate) in enumerate(STEPS):
            end = STEPS[i + 1][0] if i + 1 < len(STEPS) else 24
            pieces.append(Piece(24.0 * day + start, 24.0 * day + end, rate))
    return pieces


def batched_solve_ivp(patients: Patients, pieces: list[Piece], times: FloatArray) -> FloatArray:
    """All patients at once: states (n, len(times), 3) by solve_ivp, restarted at each change."""
    p, n = patients, patients.n
    cl1, cl2, q = p.cl_tip_ml_per_h, p.cl_rest_ml_per_h, p.q_ml_per_h
    v1, v2, ke0 = p.v_tip_ml, p.v_rest_ml, p.ke0_per_h
    x: FloatArray = np.zeros(3 * n)  # [tip (n), rest (n), effect (n)]
    out = np.empty((len(times), 3 * n))
    out[0] = x
    filled = 1
    for piece in pieces:
        rate = piece.rate_ug_per_h

        def rhs(_t: float, y: FloatArray, rate: float = rate) -> FloatArray:
            c1, c2, ce = y[:n] / v1, y[n : 2 * n] / v2, y[2 * n :]
            flow = q * (c1 - c2)
            return np.concatenate((rate - cl1 * c1 - flow, flow - cl2 * c2, ke0 * (c1 - ce)))

        inside = times[(times > piece.start_h) & (times <= piece.end_h)]
        sol = solve_ivp(
            rhs, (piece.start_h, piece.end_h), x, method="DOP853", t_eval=inside,
            rtol=RTOL, atol=ATOL_UG,
        )  # fmt: skip
        out[filled : filled + inside.size] = sol.y.T
        filled += inside.size
        x = sol.y[:, -1]  # every piece ends on a whole hour, so the last output is its end
    result: FloatArray = out.reshape(len(times), 3, n).transpose(2, 0, 1)
    return result


def main() -> None:
    days = DAYS
    patients = draw_patients(np.random.default_rng(2027), N_PATIENTS)
    pieces = program_pieces(days)
    times = np.arange(0.0, 24.0 * days + 1e-9, 1.0)

    exact_s = np.inf
    for _ in range(7):  # best of seven: the machine may be shared
        started = time.perf_counter()
        exact = predict(patients, pieces, [], times, t0_h=0.0)
        exact_s = min(exact_s, time.perf_counter() - started)

    started = time.perf_counter()
    ref = batched_solve_ivp(patients, pieces, times)
    ref_s = time.perf_counter() - started

    scale = np.max(np.abs(ref), axis=(0, 1))  # each state's largest value over everyone
    worst = float(np.max(np.abs(exact - ref) / scale))

    print(f"work: {days} days x 10-step flex program ({len(pieces)} rate changes), hourly states,")
    print(f"      {N_PATIENTS} patients (seed 2027)")
    print(f"exact (modal expm, batched over patients, best of 7): {exact_s:.3f} s")
    print(
        f"baseline: one solve_ivp over all {N_PATIENTS} patients, vectorised rhs, DOP853, "
        f"rtol {RTOL:g}, atol {ATOL_UG:g}, restarted at each change: {ref_s:.2f} s"
    )
    print(f"speed-up: {ref_s / exact_s:,.0f} x   (goal >= {GOAL_SPEEDUP:,.0f} x)")
    print(f"largest difference exact vs baseline, relative to each state's maximum: {worst:.1e}")

    # The cohort helper: one patient, ten years, time below the withdrawal threshold.
    one = patients.take(slice(0, 1))
    year = program_pieces(365)
    ten_years = [
        Piece(p.start_h + 24.0 * 365 * k, p.end_h + 24.0 * 365 * k, p.rate_ug_per_h)
        for k in range(10)
        for p in year
    ]
    started = time.perf_counter()
    below = time_below_threshold_h(one, ten_years, 600.0 / 24.0)
    print(
        f"time_below_threshold_h, 1 patient, 10 years ({len(ten_years)} segments): "
        f"{time.perf_counter() - started:.2f} s (below: {below[0]:.2f} h)"
    )
