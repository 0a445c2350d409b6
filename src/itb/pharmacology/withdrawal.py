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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from itb.pharmacology.affine_scan import affine_scan
from itb.pharmacology.exact import DosingError, ModalForm, Piece
from itb.pharmacology.model import (
    FloatArray,
    ParameterError,
    Patients,
    ce_for_effect,
    effect_mas,
)
from itb.pharmacology.thresholds import DEFAULT_WITHDRAWAL_FRACTION

DEFAULT_GRID_H = 0.1
DEFAULT_HORIZON_H = 14 * 24.0
# Each crossing is placed to this many hours (the module doc's promise); the bisections a cell
# needs follow from its length (27 for a 0.1 h cell, where 40 were run before: issue 13).
CROSSING_PRECISION_H = 1e-9


def _bisections(cell_h: float) -> int:
    """Halvings that bring a bracket of ``cell_h`` hours within CROSSING_PRECISION_H."""
    return max(1, math.ceil(math.log2(cell_h / CROSSING_PRECISION_H)))


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
    for _ in range(_bisections(DEFAULT_GRID_H)):
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
    bounds = np.array([x for p in pieces for x in (p.start_h, p.end_h, p.rate_ug_per_h)])
    starts, ends, rates = bounds[0::3], bounds[1::3], bounds[2::3]
    broken = np.flatnonzero(np.abs(starts[1:] - ends[:-1]) > 1e-9)
    if broken.size:
        at = ends[broken[0]]
        raise DosingError("pieces", f"gap or overlap at {at} h; pieces must be contiguous")
    modal = ModalForm.of(patients)
    threshold = withdrawal_threshold(patients, maintenance_rate_ug_per_h, fraction)
    if initial_state is None:
        rate = np.broadcast_to(np.asarray(maintenance_rate_ug_per_h, np.float64), (patients.n,))
        y = modal.modal_steady(rate)
    else:
        y = modal.to_modal(np.broadcast_to(initial_state, (patients.n, 3)))
    durations = ends - starts
    grid = _Grid.inside(durations, grid_h)
    steady = -modal.p_inv_b / modal.lam  # (n, 3) modal steady state per µg/h
    y_start = _modal_piece_starts(modal.lam, steady, durations, rates, y)
    total = np.zeros(patients.n)
    for j in range(patients.n):  # one patient at a time keeps memory at O(grid points)
        course = _CeCourse.of(y_start[:, j, :], steady[j], rates, modal.lam[j], modal.ce_row[j])
        total[j] = _hours_below(course, grid, float(threshold.threshold_ce_ug_per_ml[j]))
    return total


def _modal_piece_starts(
    lam: FloatArray, steady: FloatArray, durations: FloatArray, rates: FloatArray, y: FloatArray
) -> FloatArray:
    """Modal state at each piece start, shape (pieces, n, 3): y ← e^{λ d} y + (1 - e^{λ d}) y_ss
    over every piece, by ``affine_scan`` (no Python step per piece)."""
    exponent = lam[None] * durations[:, None, None]  # (pieces, n, 3)
    # -expm1 keeps 1 - e^{λ d} exact to the last digit when λ d is small
    offset = -np.expm1(exponent) * steady[None] * rates[:, None, None]
    result: FloatArray = affine_scan(np.exp(exponent), offset, y)[:-1]
    return result


@dataclass(frozen=True, slots=True)
class _Grid:
    """Grid points inside every piece: ``cells[p]`` cells of equal length per piece, points
    0 to ``cells[p]`` of piece p in a row, piece after piece. Pieces of the same duration (to
    1e-9 h, the precision of a crossing) share their points' times ``table_tau``, so e^{λ τ} is
    computed once per distinct time, not once per point."""

    cells: NDArray[np.int64]  # (pieces,)
    first: NDArray[np.int64]  # (pieces,) index of each piece's point 0
    cell_h: FloatArray  # (points - 1,) hours from each point to the next; 0 across two pieces
    table_row: NDArray[np.int64]  # (points,) the row of ``table_tau`` with its time
    table_tau: FloatArray  # (distinct times,) hours after the piece start

    @classmethod
    def inside(cls, durations: FloatArray, grid_h: float) -> _Grid:
        _, rep, group = np.unique(np.round(durations, 9), return_index=True, return_inverse=True)
        group = group.reshape(-1)
        rep_cells = np.maximum(np.ceil(durations[rep] / grid_h).astype(np.int64), 1)
        rep_first = np.cumsum(rep_cells + 1) - (rep_cells + 1)  # each group's rows of the table
        table_k = np.arange(int(rep_first[-1] + rep_cells[-1] + 1)) - np.repeat(
            rep_first, rep_cells + 1
        )
        table_tau = table_k * np.repeat(durations[rep] / rep_cells, rep_cells + 1)
        cells = rep_cells[group]
        first = np.cumsum(cells + 1) - (cells + 1)
        # point i of piece p is at index first[p] + i, its table row at rep_first[group[p]] + i
        table_row = np.repeat(rep_first[group] - first, cells + 1)
        table_row += np.arange(table_row.size)
        cell_h = np.repeat(durations / cells, cells + 1)[:-1]
        cell_h[(first + cells)[:-1]] = 0.0
        return cls(
            cells=cells,
            first=first,
            cell_h=cell_h,
            table_row=table_row,
            table_tau=table_tau,
        )


@dataclass(frozen=True, slots=True)
class _CeCourse:
    """Closed-form Ce of one patient in each piece: Ce(τ) = ce_ss + Σ_m w_m e^{λ_m τ}."""

    ce_ss: FloatArray  # (pieces,) µg/mL at the steady state of the piece's rate
    w: FloatArray  # (pieces, 3) µg/mL per mode at the piece start
    lam: FloatArray  # (3,) 1/h

    @classmethod
    def of(
        cls, y0: FloatArray, steady: FloatArray, rates: FloatArray, lam: FloatArray, row: FloatArray
    ) -> _CeCourse:
        yss = steady[None, :] * rates[:, None]  # (pieces, 3)
        return cls(ce_ss=yss @ row, w=(y0 - yss) * row, lam=lam)

    def on_grid(self, grid: _Grid) -> FloatArray:
        """Ce at every grid point, e^{λ τ} taken from one table row per distinct τ."""
        points = grid.cells + 1
        decay = np.exp(np.outer(self.lam, grid.table_tau))  # (3, distinct τ)
        result: FloatArray = np.repeat(self.ce_ss, points)
        for m in range(self.lam.size):  # 1-D repeats and takes: no (points, 3) temporaries
            result += np.repeat(self.w[:, m], points) * decay[m].take(grid.table_row)
        return result

    def at(self, pieces: NDArray[np.int64], tau: FloatArray) -> FloatArray:
        result: FloatArray = self.ce_ss[pieces] + np.einsum(
            "pm,pm->p", self.w[pieces], np.exp(tau[:, None] * self.lam)
        )
        return result


def _hours_below(course: _CeCourse, grid: _Grid, ce_thr: float) -> float:
    """Hours below ``ce_thr``: whole cells below, plus the part of each cell with a crossing
    found by bisection."""
    below = course.on_grid(grid) < ce_thr
    cell_h = grid.cell_h
    b0, b1 = below[:-1], below[1:]
    hours = float(np.sum(cell_h[b0 & b1]))
    crossing = np.flatnonzero((b0 != b1) & (cell_h > 0.0))
    if crossing.size:
        piece = np.searchsorted(grid.first, crossing, side="right") - 1
        step, start_below = cell_h[crossing], b0[crossing]
        lo = (crossing - grid.first[piece]) * step
        hi = lo + step
        tau0 = lo.copy()
        for _ in range(_bisections(float(step.max()))):
            mid = 0.5 * (lo + hi)
            mid_below = course.at(piece, mid) < ce_thr
            # keep the crossing bracketed: the side that matches the start moves
            move_lo = mid_below == start_below
            lo = np.where(move_lo, mid, lo)
            hi = np.where(move_lo, hi, mid)
        t_cross = 0.5 * (lo + hi)
        hours += float(np.sum(np.where(start_below, t_cross - tau0, tau0 + step - t_cross)))
    return hours
