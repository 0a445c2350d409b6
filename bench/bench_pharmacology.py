"""Exact PK/PD propagation against SciPy's solve_ivp on the same work, in the same run.

Work: DAYS days of a 10-step daily flex program, states (tip CSF, distal CSF, effect site) at
every hour, for N_PATIENTS drawn patients. Baseline: what a competent engineer would write with
SciPy: ONE solve_ivp over the whole batch (3 x N_PATIENTS states) with a vectorised right-hand
side, DOP853, restarted at each rate change, at the tolerance printed (RTOL, ATOL_UG: the same
values are passed to solve_ivp). Tried and slower or no faster at that tolerance (90 days, the
same run conditions): RK45 (as fast, closer to exact), LSODA with a banded Jacobian on
interleaved states (2.5 x slower), LSODA with its dense Jacobian (80 x slower).

The machine may be shared, so both are timed in ROUNDS interleaved rounds (each round: the
exact solution EXACT_PER_ROUND times, then the baseline once) and the medians are compared, in
wall-clock and in this process's CPU time (which other processes disturb less). Accuracy: the
largest difference between the two, relative to each state's largest value over all patients;
the goal is a speed-up >= 100 x at that agreement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from scipy.integrate import solve_ivp

from itb.pharmacology import exact as exact_module
from itb.pharmacology.exact import Piece, predict
from itb.pharmacology.model import FloatArray, Patients
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal import time_below_threshold_h

T = TypeVar("T")

N_PATIENTS = 1000
DAYS = 90
RTOL = 1e-8
ATOL_UG = 1e-10  # absolute tolerance on every state (µg, µg/mL): far below any dose
GOAL_SPEEDUP = 100.0
ROUNDS = 3
EXACT_PER_ROUND = 5
# One patient, states every 0.1 h over a few pieces (the cohort simulation's withdrawal course):
# one broadcast per run of constant rate against stepping breakpoint by breakpoint.
FINE_GRID_H = 0.1
FINE_SPAN_H = 240.0
FINE_ROUNDS = 21
GOAL_FINE_SPEEDUP = 3.0
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


def timed(run: Callable[[], T]) -> tuple[float, float, T]:
    """(wall s, CPU s of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    days = DAYS
    patients = draw_patients(np.random.default_rng(2027), N_PATIENTS)
    pieces = program_pieces(days)
    times = np.arange(0.0, 24.0 * days + 1e-9, 1.0)

    exact_wall, exact_cpu, base_wall, base_cpu = [], [], [], []
    exact: FloatArray = np.empty(0)
    ref: FloatArray = np.empty(0)
    for _ in range(ROUNDS):
        for _ in range(EXACT_PER_ROUND):
            wall, cpu, exact = timed(lambda: predict(patients, pieces, [], times, t0_h=0.0))
            exact_wall.append(wall)
            exact_cpu.append(cpu)
        wall, cpu, ref = timed(lambda: batched_solve_ivp(patients, pieces, times))
        base_wall.append(wall)
        base_cpu.append(cpu)

    scale = np.max(np.abs(ref), axis=(0, 1))  # each state's largest value over everyone
    worst = float(np.max(np.abs(exact - ref) / scale))
    ew, ec = float(np.median(exact_wall)), float(np.median(exact_cpu))
    bw, bc = float(np.median(base_wall)), float(np.median(base_cpu))

    print(f"work: {days} days x 10-step flex program ({len(pieces)} rate changes), hourly states,")
    print(f"      {N_PATIENTS} patients (seed 2027); {ROUNDS} interleaved rounds, medians")
    print(
        f"exact (modal form, batched over patients, {ROUNDS * EXACT_PER_ROUND} runs): "
        f"{ew:.3f} s wall, {ec:.3f} s CPU"
    )
    print(
        f"baseline: one solve_ivp over all {N_PATIENTS} patients, vectorised rhs, DOP853, "
        f"rtol {RTOL:g}, atol {ATOL_UG:g}, restarted at each change ({ROUNDS} runs): "
        f"{bw:.2f} s wall, {bc:.2f} s CPU"
    )
    print(
        f"speed-up: {bw / ew:,.0f} x wall, {bc / ec:,.0f} x CPU   (goal >= {GOAL_SPEEDUP:,.0f} x)"
    )
    print(f"largest difference exact vs baseline, relative to each state's maximum: {worst:.1e}")

    # The cohort helper: one patient, ten years, time below the withdrawal threshold.
    one = patients.take(slice(0, 1))
    year = program_pieces(365)
    ten_years = [
        Piece(p.start_h + 24.0 * 365 * k, p.end_h + 24.0 * 365 * k, p.rate_ug_per_h)
        for k in range(10)
        for p in year
    ]
    runs = [timed(lambda: time_below_threshold_h(one, ten_years, 600.0 / 24.0)) for _ in range(5)]
    below = runs[-1][2]
    print(
        f"time_below_threshold_h, 1 patient, 10 years ({len(ten_years)} segments), median of 5: "
        f"{np.median([r[0] for r in runs]):.3f} s wall (below: {below[0]:.2f} h)"
    )
    fine_grid_case(one)


def fine_grid_case(one: Patients) -> None:
    """One patient, three pieces, a 0.1 h grid: runs vs stepping, interleaved CPU medians."""
    pieces = [Piece(0.0, 10.05, 25.0), Piece(10.05, 30.0, 40.0), Piece(30.0, 36.0, 5.0)]
    times = np.arange(0.0, FINE_SPAN_H, FINE_GRID_H)
    few = exact_module._FEW_PATIENTS
    by_runs, stepped = [], []
    runs_states = stepped_states = np.empty(0)
    for _ in range(FINE_ROUNDS):
        _, cpu, runs_states = timed(lambda: predict(one, pieces, [], times, t0_h=0.0))
        by_runs.append(cpu)
        exact_module._FEW_PATIENTS = 0  # the stepping path, as for many patients
        try:
            _, cpu, stepped_states = timed(lambda: predict(one, pieces, [], times, t0_h=0.0))
        finally:
            exact_module._FEW_PATIENTS = few
        stepped.append(cpu)
    scale = np.max(np.abs(stepped_states), axis=(0, 1))
    worst = float(np.max(np.abs(runs_states - stepped_states) / scale))
    r, b = float(np.median(by_runs)), float(np.median(stepped))
    print(
        f"predict, 1 patient, {len(pieces)} pieces, {times.size} output times "
        f"({FINE_GRID_H:g} h grid), {FINE_ROUNDS} interleaved rounds, CPU medians:"
    )
    print(f"  one broadcast per run of constant rate: {r * 1e3:.2f} ms")
    print(f"  baseline, stepping breakpoint by breakpoint: {b * 1e3:.2f} ms")
    print(
        f"  speed-up: {b / r:.1f} x (goal >= {GOAL_FINE_SPEEDUP:g} x); "
        f"largest difference relative to each state's maximum: {worst:.1e}"
    )
