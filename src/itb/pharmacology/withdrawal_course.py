"""Withdrawal over days: from the loss of effect to the progression of the syndrome's signs.

``withdrawal.py`` says when the effect falls below a threshold (hours). The syndrome lags behind
the effect: after an abrupt stop its signs evolve over 1 to 3 days (Coffey 2002, S98), from the
early ones (return of spasticity, itching, low blood pressure, tingling, fast heart rate) to the
severe ones (high fever, altered mental status, rebound rigidity) over 24 to 72 h (S54 S55).

Model. The drive is the share of the maintenance effect that is lost,
``D(t) = clip(1 − E(t) / E_maintenance, 0, 1)``; the syndrome's severity ``S`` follows it with a
time constant: ``dS/dt = (D − S) / SIGNS_TIME_CONSTANT_H``. Early signs are expected once ``S``
reaches ``EARLY_SIGNS_SEVERITY``, severe signs once it reaches ``SEVERE_SIGNS_SEVERITY``. A fall
of delivery to a lower rate drives ``S`` only to the share of the effect that it loses, so a
small cut never reaches the severe grade. ``D`` is sampled every ``step_h`` from the exact
solution and integrated exactly for ``D`` linear between samples.

Pure: no clock; the caller passes the patients, rates and times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from itb.pharmacology.exact import DosingError, Piece, Propagator, predict
from itb.pharmacology.model import EFFECT, FloatArray, ParameterError, Patients, effect_mas

# Time constant of the syndrome behind the loss of effect (h) [R]: with the two grades below,
# an abrupt stop in the typical patient on 600 µg/day gives early signs within the first day and
# severe signs on the second, inside the 1 to 3 days of Coffey 2002 (S98) and the 24 to 72 h of
# S55. No source gives the constant itself.
SIGNS_TIME_CONSTANT_H = 20.0  # [R] S98 S55
# Severity (0 to 1, the share of the effect lost, smoothed) at which each grade begins [R].
EARLY_SIGNS_SEVERITY = 0.3  # [R] early signs: return of spasticity, itching (S54 S55)
SEVERE_SIGNS_SEVERITY = 0.75  # [R] severe: high fever, altered mental status (S54 S55)
DEFAULT_OUTLOOK_HORIZON_H = 96.0  # four days: the syndrome's whole 1 to 3 day course (S98)
DEFAULT_STEP_H = 0.1
# Time constants per block of the closed-form lag (_smoothed): e^8 keeps ~12 digits.
_BLOCK_E_FOLDS = 8.0

GRADE_NONE, GRADE_SIGNS, GRADE_SEVERE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class WithdrawalOutlook:
    """Hours after a change of delivery until each grade is expected; ``inf``: not in horizon."""

    signs_from_h: FloatArray  # (n,)
    severe_from_h: FloatArray  # (n,)


@dataclass(frozen=True, slots=True)
class SeverityCourse:
    t_h: FloatArray  # (T,)
    severity: FloatArray  # (n, T), 0 to 1

    def grade(self) -> np.ndarray:
        """0 none, 1 early signs, 2 severe signs, shape (n, T)."""
        return np.where(
            self.severity >= SEVERE_SIGNS_SEVERITY,
            GRADE_SEVERE,
            np.where(self.severity >= EARLY_SIGNS_SEVERITY, GRADE_SIGNS, GRADE_NONE),
        )

    def first_time_at_h(self, level: float) -> FloatArray:
        """First time severity reaches ``level`` (linear between samples), ``inf`` if never."""
        at = self.severity >= level
        ever = at.any(axis=1)
        k = np.argmax(at, axis=1)
        rows = np.arange(self.severity.shape[0])
        s1 = self.severity[rows, k]
        s0 = self.severity[rows, np.maximum(k - 1, 0)]
        t1, t0 = self.t_h[k], self.t_h[np.maximum(k - 1, 0)]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(s1 > s0, (level - s0) / (s1 - s0), 1.0)
        t = np.where(k == 0, self.t_h[0], t0 + np.clip(frac, 0.0, 1.0) * (t1 - t0))
        result: FloatArray = np.where(ever, t, np.inf)
        return result

    def hours_at_grade(self) -> tuple[FloatArray, FloatArray]:
        """Hours at the early-signs grade and at the severe grade, each (n,)."""
        dt = np.diff(self.t_h)
        g = self.grade()[:, 1:]  # a step counts at the grade reached at its end
        signs = np.sum(np.where(g == GRADE_SIGNS, dt, 0.0), axis=1)
        severe = np.sum(np.where(g == GRADE_SEVERE, dt, 0.0), axis=1)
        return signs, severe


def severity_course(
    patients: Patients,
    pieces: Sequence[Piece],
    maintenance_rate_ug_per_h: float | FloatArray,
    t_h: FloatArray,
    initial_state: FloatArray | None = None,
) -> SeverityCourse:
    """Severity at ``t_h`` (sorted, from the start of ``pieces``), starting from no syndrome at
    ``t_h[0]``, in steady state on the maintenance rate unless ``initial_state`` (n, 3)."""
    rate = np.broadcast_to(np.asarray(maintenance_rate_ug_per_h, np.float64), (patients.n,))
    if not np.all(np.isfinite(rate) & (rate >= 0.0)):
        raise DosingError("maintenance_rate_ug_per_h", "must be finite and 0 or more")
    t = np.asarray(t_h, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0.0):
        raise ParameterError("t_h", "at least two times, increasing")
    maintenance = effect_mas(patients.steady_state_csf_ug_per_ml(rate), patients)
    state0 = Propagator(patients).steady_state(rate) if initial_state is None else initial_state
    states = predict(patients, list(pieces), [], t, initial_state=state0, t0_h=float(t[0]))
    effect = effect_mas(states[..., EFFECT], patients)
    with np.errstate(divide="ignore", invalid="ignore"):
        drive = np.where(maintenance[:, None] > 0.0, 1.0 - effect / maintenance[:, None], 0.0)
    return SeverityCourse(t, _smoothed(np.clip(drive, 0.0, 1.0), np.diff(t)))


def _smoothed(drive: FloatArray, dt: FloatArray) -> FloatArray:
    """First-order lag of ``drive`` (n, T), exact for ``drive`` linear between samples."""
    tau = SIGNS_TIME_CONSTANT_H
    a = np.exp(-dt / tau)
    g = 1.0 - tau / dt * (1.0 - a)  # weight of the sample at the end of each step
    d0, d1 = drive[:, :-1], drive[:, 1:]
    step = d0 * (1.0 - a) + (d1 - d0) * g  # what each step adds: s[k] = s[k-1] a + step
    # The recurrence summed in closed form (cumulative sums, no loop per sample: the cohort
    # simulator runs it on 0.1 h grids of several days), a block at a time: a block spans at
    # most _BLOCK_E_FOLDS time constants, so the weights 1/decay stay small and exact.
    s = np.zeros_like(drive)
    block = max(1, int(_BLOCK_E_FOLDS * tau / float(dt.max())))
    for start in range(0, dt.size, block):
        stop = min(start + block, dt.size)
        decay = np.exp(np.cumsum(-dt[start:stop] / tau))  # from sample ``start`` to each end
        summed = np.cumsum(step[:, start:stop] / decay, axis=1)
        s[:, start + 1 : stop + 1] = decay * (s[:, start : start + 1] + summed)
    return s


def withdrawal_outlook(
    patients: Patients,
    maintenance_rate_ug_per_h: float | FloatArray,
    new_rate_ug_per_h: float = 0.0,
    initial_state: FloatArray | None = None,
    horizon_h: float = DEFAULT_OUTLOOK_HORIZON_H,
) -> WithdrawalOutlook:
    """When withdrawal signs and severe signs are expected after delivery falls to
    ``new_rate_ug_per_h`` (0: it stops), from steady state on the maintenance rate by default."""
    if not (math.isfinite(horizon_h) and 1.0 <= horizon_h <= 14 * 24.0):
        reason = "allowed 1 to 336 h"
        raise ParameterError("horizon_h", reason, f"horizon_h={horizon_h}: {reason}")
    if not (math.isfinite(new_rate_ug_per_h) and new_rate_ug_per_h >= 0.0):
        raise DosingError("new_rate_ug_per_h", "must be finite and 0 or more")
    t = np.linspace(0.0, horizon_h, round(horizon_h / DEFAULT_STEP_H) + 1)
    pieces = [Piece(0.0, horizon_h, new_rate_ug_per_h)] if new_rate_ug_per_h > 0.0 else []
    course = severity_course(patients, pieces, maintenance_rate_ug_per_h, t, initial_state)
    return WithdrawalOutlook(
        signs_from_h=course.first_time_at_h(EARLY_SIGNS_SEVERITY),
        severe_from_h=course.first_time_at_h(SEVERE_SIGNS_SEVERITY),
    )
