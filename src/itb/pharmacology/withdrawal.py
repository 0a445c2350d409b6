"""Withdrawal risk: when the effect falls a set fraction below the patient's maintenance effect.

This is the loss of effect (hours); the syndrome that follows over days, with its early and
severe signs, is ``withdrawal_course.py``.

The maintenance effect is the effect at steady state on the patient's maintenance dose; the
withdrawal threshold is ``(1 - fraction) × maintenance effect``. Because the effect rises with the
effect-site concentration, "effect below threshold" is "Ce below the matching concentration".

Exactness. Over a piece of constant rate, in the model's eigenbasis (modal form), Ce is a constant
plus three exponentials. We evaluate it in closed form on a grid of ``grid_h`` (default 0.1 h) in
every piece, then place each crossing by bisection on the closed form (to 1e-9 h). The only error
is an excursion across the threshold that begins and ends between two grid points: such an
excursion lasts less than ``grid_h`` and is missed, so the total below the threshold is exact up
to ``grid_h`` per missed excursion. After a stop (rate 0) Ce has at most one maximum, so the first
crossing found is the withdrawal-risk time, exact to 1e-9 h.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from itb.pharmacology.exact import DosingError, ModalForm, Piece
from itb.pharmacology.model import (
    FloatArray,
    ParameterError,
    Patients,
    ce_for_effect,
    effect_mas,
)

# Fraction of the maintenance effect whose loss marks the withdrawal risk [R]: half the
# maintenance effect gone. Early withdrawal is a return of spasticity (S54 S55 S56); no source
# gives a figure, so it is a setting.
DEFAULT_WITHDRAWAL_FRACTION = 0.5  # [R]
DEFAULT_GRID_H = 0.1
DEFAULT_HORIZON_H = 14 * 24.0
_BISECTIONS = 40


@dataclass(frozen=True, slots=True)
class WithdrawalThreshold:
    maintenance_effect_mas: FloatArray  # (n,)
    threshold_effect_mas: FloatArray  # (n,)
    threshold_ce_ug_per_ml: FloatArray  # (n,)


def check_fraction(fraction: float) -> float:
    if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
        reason = "allowed more than 0 and less than 1"
        raise ParameterError("fraction", reason, f"fraction={fraction}: {reason}")
    return fraction


def withdrawal_threshold(
    patients: Patients,
    maintenance_rate_ug_per_h: float | FloatArray,
    fraction: float = DEFAULT_WITHDRAWAL_FRACTION,
) -> WithdrawalThreshold:
    check_fraction(fraction)
    rate = np.broadcast_to(np.asarray(maintenance_rate_ug_per_h, dtype=np.float64), (patients.n,))
    if not np.all(np.isfinite(rate) & (rate >= 0.0)):
        raise DosingError("maintenance_rate_ug_per_h", "must be finite and 0 or more")
    ce_ss = patients.steady_state_csf_ug_per_ml(rate)  # at steady state Ce equals tip CSF
    maintenance = effect_mas(ce_ss, patients)
    threshold = (1.0 - fraction) * maintenance
    return WithdrawalThreshold(maintenance, threshold, ce_for_effect(threshold, patients))


def withdrawal_risk_time_h(
    patients: Patients,
    state_at_stop: FloatArray,
    maintenance_rate_ug_per_h: float | FloatArray,
    fraction: float = DEFAULT_WITHDRAWAL_FRACTION,
    horizon_h: float = DEFAULT_HORIZON_H,
) -> FloatArray:
    """Hours from a stop of delivery until the effect falls below the withdrawal threshold.

    ``state_at_stop`` has shape (n, 3). 0 if it is already below; ``inf`` if it does not fall
    below within ``horizon_h`` (e.g. no maintenance effect to lose).
    """
    modal = ModalForm.of(patients)
    threshold = withdrawal_threshold(patients, maintenance_rate_ug_per_h, fraction)
    coeff = modal.ce_row * modal.to_modal(state_at_stop)  # Ce(t) = Σ coeff e^{λ t}
    ce_thr = threshold.threshold_ce_ug_per_ml

    def ce_at(t: FloatArray) -> FloatArray:
        result: FloatArray = np.sum(
            coeff[:, None, :] * np.exp(modal.lam[:, None, :] * t[..., None]), axis=-1
        )
        return result

    grid = np.arange(0.0, horizon_h + DEFAULT_GRID_H, DEFAULT_GRID_H)
    values = ce_at(np.broadcast_to(grid, (patients.n, grid.size)))
    below = values < ce_thr[:, None]
    found = below.any(axis=1) & (ce_thr > 0.0)
    first = np.argmax(below, axis=1)
    hi = grid[first].astype(np.float64)
    lo = grid[np.maximum(first - 1, 0)].astype(np.float64)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        mid_below = ce_at(mid[:, None])[:, 0] < ce_thr
        hi = np.where(mid_below, mid, hi)
        lo = np.where(mid_below, lo, mid)
    result: FloatArray = np.where(found, np.where(first == 0, 0.0, hi), np.inf)
    return result


def time_below_threshold_h(
    patients: Patients,
    pieces: Sequence[Piece],
    maintenance_rate_ug_per_h: float | FloatArray,
    fraction: float = DEFAULT_WITHDRAWAL_FRACTION,
    initial_state: FloatArray | None = None,
    grid_h: float = DEFAULT_GRID_H,
) -> FloatArray:
    """Total hours in ``pieces`` (contiguous) with the effect below the withdrawal threshold.

    For the cohort simulator: one patient and years of received rate segments, or a batch of
    patients sharing the pieces. Starts at steady state on the maintenance rate unless
    ``initial_state`` (n, 3) is given. Exact up to ``grid_h`` per missed excursion (module doc).
    """
    if not (math.isfinite(grid_h) and 0.0 < grid_h <= 1.0):
        reason = "allowed more than 0 up to 1 h"
        raise ParameterError("grid_h", reason, f"grid_h={grid_h}: {reason}")
    if not pieces:
        return np.zeros(patients.n)
    for a, b in itertools.pairwise(pieces):
        if abs(b.start_h - a.end_h) > 1e-9:
            raise DosingError("pieces", f"gap or overlap at {a.end_h} h; pieces must be contiguous")
    modal = ModalForm.of(patients)
    threshold = withdrawal_threshold(patients, maintenance_rate_ug_per_h, fraction)
    if initial_state is None:
        rate = np.broadcast_to(np.asarray(maintenance_rate_ug_per_h, np.float64), (patients.n,))
        y = modal.modal_steady(rate)
    else:
        y = modal.to_modal(np.broadcast_to(initial_state, (patients.n, 3)))
    durations = np.array([p.end_h - p.start_h for p in pieces])
    rates = np.array([p.rate_ug_per_h for p in pieces])
    y_start = _modal_piece_starts(modal, durations, rates, y)
    grid = _Grid.inside(durations, grid_h)
    steady = -modal.p_inv_b / modal.lam  # (n, 3) per µg/h
    total = np.zeros(patients.n)
    for j in range(patients.n):  # one patient at a time keeps memory at O(grid points)
        y0 = y_start[:, j, :][grid.piece_of]  # (m, 3)
        yss = steady[j] * rates[grid.piece_of][:, None]
        course = _CeCourse(y0, yss, modal.lam[j], modal.ce_row[j])
        total[j] = _hours_below(course, grid, float(threshold.threshold_ce_ug_per_ml[j]))
    return total


def _modal_piece_starts(
    modal: ModalForm, durations: FloatArray, rates: FloatArray, y: FloatArray
) -> FloatArray:
    """Modal state at each piece start, shape (pieces, n, 3): y ← y_ss + (y - y_ss) e^{λ d},
    with e^{λ d} computed once per distinct duration."""
    unique_d, d_index = np.unique(np.round(durations, 12), return_inverse=True)
    decay = np.exp(modal.lam[:, None, :] * unique_d[None, :, None])  # (n, D, 3)
    steady = -modal.p_inv_b / modal.lam  # (n, 3) per µg/h
    y_start = np.empty((len(durations), y.shape[0], 3))
    for i, (rate_i, di) in enumerate(zip(rates, d_index, strict=True)):
        y_start[i] = y
        y_ss = steady * rate_i
        y = y_ss + (y - y_ss) * decay[:, di, :]
    return y_start


@dataclass(frozen=True, slots=True)
class _Grid:
    """Grid cells inside every piece, vectorized over pieces: cell k of piece ``piece_of``
    starts ``tau0`` hours after its piece start and lasts ``step`` hours."""

    piece_of: NDArray[np.int64]
    tau0: FloatArray
    step: FloatArray

    @classmethod
    def inside(cls, durations: FloatArray, grid_h: float) -> _Grid:
        n_sub = np.maximum(np.ceil(durations / grid_h).astype(np.int64), 1)
        piece_of = np.repeat(np.arange(len(durations)), n_sub)
        sub_k = np.arange(piece_of.size) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
        step = durations[piece_of] / n_sub[piece_of]
        return cls(piece_of, sub_k * step, step)


@dataclass(frozen=True, slots=True)
class _CeCourse:
    """Closed-form Ce of one patient at ``tau`` hours into each grid cell's piece."""

    y0: FloatArray  # (m, 3) modal state at the piece start
    yss: FloatArray  # (m, 3) modal steady state of the piece's rate
    lam: FloatArray  # (3,)
    row: FloatArray  # (3,)

    def at(
        self, tau: FloatArray, y0: FloatArray | None = None, yss: FloatArray | None = None
    ) -> FloatArray:
        y0 = self.y0 if y0 is None else y0
        yss = self.yss if yss is None else yss
        out: FloatArray = ((yss + (y0 - yss) * np.exp(self.lam * tau[:, None])) * self.row).sum(
            axis=1
        )
        return out


def _hours_below(course: _CeCourse, grid: _Grid, ce_thr: float) -> float:
    """Hours below ``ce_thr``: whole cells below, plus the part of each cell with a crossing
    found by bisection."""
    tau0, step = grid.tau0, grid.step
    b0 = course.at(tau0) < ce_thr
    b1 = course.at(tau0 + step) < ce_thr
    below = np.where(b0 & b1, step, 0.0)
    crossing = b0 != b1
    if np.any(crossing):
        lo, hi = tau0[crossing], tau0[crossing] + step[crossing]
        start_below = b0[crossing]
        sel_y0, sel_yss = course.y0[crossing], course.yss[crossing]
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            mid_below = course.at(mid, sel_y0, sel_yss) < ce_thr
            # keep the crossing bracketed: the side that matches the start moves
            move_lo = mid_below == start_below
            lo = np.where(move_lo, mid, lo)
            hi = np.where(move_lo, hi, mid)
        t_cross = 0.5 * (lo + hi)
        below[crossing] = np.where(
            start_below, t_cross - tau0[crossing], tau0[crossing] + step[crossing] - t_cross
        )
    return float(below.sum())
