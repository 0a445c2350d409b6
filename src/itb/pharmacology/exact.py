"""Exact concentrations for piecewise-constant infusions and instantaneous boluses.

The model is linear with constant coefficients, so over a piece of constant rate ``u``:

    x(t0 + d) = x_ss + expm(K d) (x(t0) - x_ss),   x_ss = -K⁻¹ B u

No ODE stepping: one matrix exponential per distinct piece duration, computed once for the whole
batch of patients from a batched eigendecomposition (K = P diag(λ) P⁻¹, so expm(K d) =
P diag(e^{λ d}) P⁻¹; the eigenvalues of this compartmental system are real and negative) and
reused for every piece of that duration. A weekly flex program over a year has a few dozen
distinct durations, so a year costs a few dozen exponentials and one small batched matrix
product per piece.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from itb.errors import InputError
from itb.pharmacology.model import (
    EFFECT,
    N_STATES,
    TIP,
    FloatArray,
    Patients,
    input_vector,
    system_matrix,
)
from itb.therapy import RateSegment
from itb.units import SECONDS_PER_HOUR


class DosingError(InputError):
    """A bolus or an infusion piece the model cannot take: ``field`` names it, ``reason`` why."""


@dataclass(frozen=True, slots=True)
class Bolus:
    """An instantaneous injection into the CSF at the tip (a screening lumbar puncture)."""

    t_h: float
    dose_ug: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_h):
            reason = "must be a finite number of hours"
            raise DosingError("t_h", reason, f"bolus t_h={self.t_h}: {reason}")
        if not (math.isfinite(self.dose_ug) and self.dose_ug >= 0.0):
            reason = "must be a finite number, 0 or more"
            raise DosingError("dose_ug", reason, f"bolus dose_ug={self.dose_ug}: {reason}")


@dataclass(frozen=True, slots=True)
class Piece:
    """A constant infusion rate into the tip CSF from ``start_h`` to ``end_h``."""

    start_h: float
    end_h: float
    rate_ug_per_h: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_h) and math.isfinite(self.end_h)):
            reason = "must be finite hours"
            raise DosingError("start_h", reason, f"piece start_h and end_h {reason}")
        if self.end_h < self.start_h:
            raise DosingError(
                "end_h",
                "must be start_h or later",
                f"piece end_h={self.end_h} is before start_h={self.start_h}: "
                "must be start_h or later",
            )
        if not (math.isfinite(self.rate_ug_per_h) and self.rate_ug_per_h >= 0.0):
            reason = "must be a finite number, 0 or more"
            raise DosingError(
                "rate_ug_per_h", reason, f"piece rate_ug_per_h={self.rate_ug_per_h}: {reason}"
            )


def pieces_from_segments(segments: Iterable[RateSegment], origin_s: float) -> list[Piece]:
    """The pump's received rate segments (pump seconds) as pieces in hours after ``origin_s``."""
    return [
        Piece(
            (s.start_s - origin_s) / SECONDS_PER_HOUR,
            (s.end_s - origin_s) / SECONDS_PER_HOUR,
            s.rate_ug_per_h,
        )
        for s in segments
    ]


@dataclass(frozen=True, slots=True)
class ModalForm:
    """K = P diag(λ) P⁻¹ for each patient; Ce = row EFFECT of P times the modal state."""

    lam: FloatArray  # (n, 3), 1/h, all negative
    p: FloatArray  # (n, 3, 3), eigenvectors in columns
    p_inv: FloatArray  # (n, 3, 3)
    ce_row: FloatArray  # (n, 3)
    p_inv_b: FloatArray  # (n, 3): modal input per µg/h

    @classmethod
    def of(cls, patients: Patients) -> ModalForm:
        k = system_matrix(patients)
        # The effect eigenvalue -ke0 coinciding with a PK eigenvalue makes K defective; nudge
        # ke0 by one part in 1e9 (far below any model uncertainty) to keep P invertible.
        pk_eigs = np.linalg.eigvals(k[:, :2, :2]).real
        gap = np.min(np.abs(pk_eigs + patients.ke0_per_h[:, None]), axis=1)
        close = gap < 1e-9 * patients.ke0_per_h
        if np.any(close):
            k[close, EFFECT, EFFECT] *= 1.0 + 1e-9
        lam_c, p_c = np.linalg.eig(k)
        lam, p = lam_c.real, p_c.real
        p_inv = np.linalg.inv(p)
        return cls(
            lam=lam,
            p=p,
            p_inv=p_inv,
            ce_row=p[:, EFFECT, :],
            p_inv_b=np.einsum("nij,j->ni", p_inv, input_vector()),
        )

    def transition(self, duration_h: float) -> FloatArray:
        """expm(K d) = P diag(e^{λ d}) P⁻¹, shape (n, 3, 3)."""
        decay = np.exp(self.lam * duration_h)
        result: FloatArray = np.einsum("nij,nj,njk->nik", self.p, decay, self.p_inv)
        return result

    def to_modal(self, states: FloatArray) -> FloatArray:
        result: FloatArray = np.einsum("nij,nj->ni", self.p_inv, states)
        return result

    def modal_steady(self, rate_ug_per_h: float | FloatArray) -> FloatArray:
        rate = np.asarray(rate_ug_per_h, dtype=np.float64).reshape(-1, 1)
        result: FloatArray = -self.p_inv_b * rate / self.lam
        return result


class Propagator:
    """Exact one-piece propagation for a batch of patients, with an expm cache per duration."""

    def __init__(self, patients: Patients) -> None:
        self.patients = patients
        self.k = system_matrix(patients)
        self.modal = ModalForm.of(patients)
        # steady state per unit rate: -K⁻¹ B, shape (n, 3)
        b = np.broadcast_to(input_vector(), (patients.n, N_STATES))
        self.ss_per_rate = -np.linalg.solve(self.k, b[..., None])[..., 0]
        self._cache: dict[float, FloatArray] = {}

    def transition(self, duration_h: float) -> FloatArray:
        """expm(K d), shape (n, 3, 3); cached by duration rounded to a nanosecond."""
        key = round(duration_h, 12)
        phi = self._cache.get(key)
        if phi is None:
            phi = self.modal.transition(duration_h)
            if len(self._cache) < 4096:
                self._cache[key] = phi
        return phi

    def step(self, state: FloatArray, duration_h: float, rate_ug_per_h: float) -> FloatArray:
        """State after ``duration_h`` hours at a constant rate, from ``state`` of shape (n, 3)."""
        if duration_h <= 0.0:
            return state
        x_ss = self.ss_per_rate * rate_ug_per_h
        phi = self.transition(duration_h)
        result: FloatArray = x_ss + np.einsum("nij,nj->ni", phi, state - x_ss)
        return result

    def steady_state(self, rate_ug_per_h: float | FloatArray) -> FloatArray:
        rate = np.asarray(rate_ug_per_h, dtype=np.float64).reshape(-1, 1)
        result: FloatArray = self.ss_per_rate * rate
        return result


def predict(
    patients: Patients,
    pieces: Sequence[Piece],
    boluses: Sequence[Bolus],
    times_h: Sequence[float] | FloatArray,
    initial_state: FloatArray | None = None,
    t0_h: float | None = None,
) -> FloatArray:
    """States at ``times_h`` (sorted), shape (n, len(times_h), 3), for a batch of patients.

    The rate is 0 outside the given pieces (they must not overlap). A bolus at time t is already
    in the state reported at t. The state at ``t0_h`` (default: the earliest time, piece or bolus)
    is ``initial_state`` (default: no drug).
    """
    times = _checked_times(times_h)
    ordered = _checked_pieces(pieces)
    modal = ModalForm.of(patients)
    starts = [p.start_h for p in ordered] + [b.t_h for b in boluses]
    if times.size:
        starts.append(float(times[0]))
    t = t0_h if t0_h is not None else (min(starts) if starts else 0.0)
    x0 = (
        np.zeros((patients.n, N_STATES))
        if initial_state is None
        else np.array(np.broadcast_to(initial_state, (patients.n, N_STATES)), dtype=np.float64)
    )
    # Work in modal coordinates y = P⁻¹ x, where a piece is an elementwise update
    # y ← y_ss + (y - y_ss) e^{λ d}; states are mapped back with P once, at the end.
    y = modal.to_modal(x0)
    steady_per_rate = -modal.p_inv_b / modal.lam
    bolus_direction = modal.p_inv[:, :, TIP]
    decay = _DecayCache(modal.lam)

    out_modal = np.empty((times.size, patients.n, N_STATES))
    y_ss = steady_per_rate * 0.0
    for when, kind, index in _events(ordered, boluses, times):
        if when < t:
            if kind == _OUTPUT:
                raise DosingError("times_h", f"{when} h is before the start {t} h")
            continue
        if when > t:
            y = y_ss + (y - y_ss) * decay(when - t)
            t = when
        if kind == _RATE:
            y_ss = steady_per_rate * (ordered[index].rate_ug_per_h if index >= 0 else 0.0)
        elif kind == _BOLUS:
            y = y + bolus_direction * boluses[index].dose_ug
        else:
            out_modal[index] = y
    out: FloatArray = np.matmul(out_modal.transpose(1, 0, 2), modal.p.transpose(0, 2, 1))
    return out


# Event kinds, in the order they apply at equal times: the rate changes and boluses come first,
# so that an output at the same time sees them.
_RATE, _BOLUS, _OUTPUT = 0, 1, 2


def _checked_times(times_h: Sequence[float] | FloatArray) -> FloatArray:
    times = np.asarray(times_h, dtype=np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise DosingError("times_h", "expected a 1-D list of finite hours")
    if times.size > 1 and np.any(np.diff(times) < 0.0):
        raise DosingError("times_h", "must be sorted in increasing order")
    return times


def _checked_pieces(pieces: Sequence[Piece]) -> list[Piece]:
    """The pieces in time order; overlapping pieces are refused (each hour has one rate)."""
    ordered = sorted(pieces, key=lambda p: p.start_h)
    for a, b in itertools.pairwise(ordered):
        if b.start_h < a.end_h - 1e-9:
            reason = "each hour has one rate"
            raise DosingError("pieces", reason, f"pieces overlap at {b.start_h} h: {reason}")
    return ordered


def _events(
    ordered: Sequence[Piece], boluses: Sequence[Bolus], times: FloatArray
) -> list[tuple[float, int, int]]:
    """(time, kind, index) in time order; a piece end is a rate change to 0 (index -1)."""
    events: list[tuple[float, int, int]] = []
    for i, piece in enumerate(ordered):
        events.append((piece.start_h, _RATE, i))
        events.append((piece.end_h, _RATE, -1))
    events.extend((b.t_h, _BOLUS, i) for i, b in enumerate(boluses))
    events.extend((float(tt), _OUTPUT, i) for i, tt in enumerate(times))
    events.sort()
    return events


class _DecayCache:
    """e^{λ d} per distinct duration d (a weekly program has a few dozen), cached."""

    def __init__(self, lam: FloatArray) -> None:
        self._lam = lam
        self._decays: dict[float, FloatArray] = {}

    def __call__(self, duration_h: float) -> FloatArray:
        key = round(duration_h, 12)
        decay = self._decays.get(key)
        if decay is None:
            decay = np.exp(self._lam * duration_h)
            if len(self._decays) < 4096:
                self._decays[key] = decay
        return decay
