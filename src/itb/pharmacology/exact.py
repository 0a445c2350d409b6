"""Exact concentrations for piecewise-constant infusions and instantaneous boluses.

The model is linear with constant coefficients, so over a piece of constant rate ``u``:

    x(t0 + d) = x_ss + expm(K d) (x(t0) - x_ss),   x_ss = -K⁻¹ B u

No ODE stepping. A batched eigendecomposition K = P diag(λ) P⁻¹ (the eigenvalues of this
compartmental system are real and negative) turns every step between two breakpoints (t0, piece
edges, boluses, output times) into an elementwise map of the modal state y = P⁻¹ x:

    y ← e^{λ d} y + (1 - e^{λ d}) y_ss

with one (e^{λ d}, offset) pair per distinct (duration, rate), computed once for the whole batch
of patients (an hourly grid over a repeating program has a dozen). ``predict`` is then two
NumPy calls per breakpoint over all patients, and the modal states go back to physical states
(x = P y) one cache-sized block of output times at a time, in one batched matrix product that
also lays them out patient by patient. For a few patients on a fine output grid (the cohort
simulation: one patient, thousands of outputs over a few pieces) stepping would cost a Python
call per output; there each run of constant rate is one broadcast instead,
y(t) = y_ss + (y(a) - y_ss) e^{λ (t - a)} at all its breakpoints at once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from itb.errors import InputError
from itb.pharmacology.model import (
    EFFECT,
    N_STATES,
    REST,
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
        gap = np.min(np.abs(_pk_eigenvalues(k) + patients.ke0_per_h[:, None]), axis=1)
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


def _pk_eigenvalues(k: FloatArray) -> FloatArray:
    """Eigenvalues of the CSF block [[a, b], [c, d]] of K, (n, 2): (a + d) / 2 ± the root of
    ((a - d) / 2)² + b c, real (transfer both ways, b c > 0); a closed form, cheaper than a
    batched eigvals for a check."""
    half_sum = 0.5 * (k[:, TIP, TIP] + k[:, REST, REST])
    half_diff = 0.5 * (k[:, TIP, TIP] - k[:, REST, REST])
    root = np.sqrt(half_diff * half_diff + k[:, TIP, REST] * k[:, REST, TIP])
    result: FloatArray = np.stack((half_sum - root, half_sum + root), axis=1)
    return result


class Propagator:
    """Exact one-piece propagation for a batch of patients, with an expm cache per duration."""

    def __init__(self, patients: Patients) -> None:
        self.patients = patients
        self.k = system_matrix(patients)
        self._modal: ModalForm | None = None
        # steady state per unit rate: -K⁻¹ B, shape (n, 3)
        b = np.broadcast_to(input_vector(), (patients.n, N_STATES))
        self.ss_per_rate = -np.linalg.solve(self.k, b[..., None])[..., 0]
        self._cache: dict[float, FloatArray] = {}

    @property
    def modal(self) -> ModalForm:
        """Decomposed on first use: a steady state alone does not need it."""
        if self._modal is None:
            self._modal = ModalForm.of(self.patients)
        return self._modal

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
    is ``initial_state`` (default: no drug); a piece running at ``t0_h`` delivers from then on,
    and a bolus before ``t0_h`` is taken to be in ``initial_state`` already.
    """
    times = _checked_times(times_h)
    ordered = _checked_pieces(pieces)
    starts = [p.start_h for p in ordered] + [b.t_h for b in boluses]
    if times.size:
        starts.append(float(times[0]))
    t0 = t0_h if t0_h is not None else (min(starts) if starts else 0.0)
    if times.size and times[0] < t0:
        raise DosingError("times_h", f"{float(times[0])} h is before the start {t0} h")
    x0 = (
        np.zeros((patients.n, N_STATES))
        if initial_state is None
        else np.array(np.broadcast_to(initial_state, (patients.n, N_STATES)), dtype=np.float64)
    )
    if not times.size:
        return np.empty((patients.n, 0, N_STATES))
    modal = ModalForm.of(patients)
    plan = _Plan.of(ordered, boluses, times, t0)
    if patients.n <= _FEW_PATIENTS:
        runs = plan.runs()
        if plan.durations_h.size >= _STEPS_PER_RUN * runs.size:
            return _by_runs(modal, plan, runs, modal.to_modal(x0))
    writer = _StateWriter(modal.p, times.size)
    _propagate(modal, plan, modal.to_modal(x0), writer)
    return writer.finished()


# For a few patients with at least this many steps per run of constant rate on average (a fine
# output grid over a few pieces), one broadcast per run beats one Python step per breakpoint.
# For many patients stepping wins: it shares one e^{λ d} per distinct duration, where a run
# takes one exponential per patient, output and component (measured: 16 patients break even).
_STEPS_PER_RUN = 8
_FEW_PATIENTS = 8


@dataclass(frozen=True, slots=True)
class _Plan:
    """The work from t0 to the last output time, on the breakpoints where anything happens
    (t0, piece edges, boluses, outputs) in time order: the rate between two breakpoints, the
    bolus and the number of output times at each."""

    points_h: FloatArray  # (k + 1,): the breakpoints
    durations_h: FloatArray  # (k,): step i runs from breakpoint i to breakpoint i + 1
    rates_ug_per_h: FloatArray  # (k,)
    doses_ug: FloatArray  # (k + 1,)
    outputs: NDArray[np.int64]  # (k + 1,)

    @classmethod
    def of(
        cls, ordered: Sequence[Piece], boluses: Sequence[Bolus], times: FloatArray, t0: float
    ) -> _Plan:
        last = float(times[-1])
        delivering = [p for p in ordered if p.end_h > p.start_h]  # an empty piece gives nothing
        starts = np.array([p.start_h for p in delivering], dtype=np.float64)
        # index -1 (before the first piece) reads the last entry: nothing running, rate 0
        ends = np.array([p.end_h for p in delivering] + [-math.inf])
        rates = np.array([p.rate_ug_per_h for p in delivering] + [0.0])
        given = [b for b in boluses if t0 <= b.t_h <= last]
        bolus_h = np.array([b.t_h for b in given], dtype=np.float64)
        points = np.sort(np.concatenate(([t0], starts, ends[:-1], bolus_h, times)))
        keep = (points >= t0) & (points <= last)
        keep[1:] &= points[1:] != points[:-1]  # each time once
        points = points[keep]
        left = points[:-1]
        # the piece running from each breakpoint to the next: the last one started, unless ended
        latest = np.searchsorted(starts, left, side="right") - 1
        running = np.where(left < ends[latest], latest, -1)
        doses = np.bincount(  # weighted: float µg, several boluses at one time add up
            np.searchsorted(points, bolus_h), [b.dose_ug for b in given], minlength=points.size
        ).astype(np.float64, copy=False)
        return cls(
            points_h=points,
            durations_h=points[1:] - left,
            rates_ug_per_h=rates[running],
            doses_ug=doses,
            outputs=np.bincount(np.searchsorted(points, times), minlength=points.size),
        )

    def runs(self) -> NDArray[np.intp]:
        """The breakpoints ending a run of steps at one rate with no bolus inside: where the
        rate changes next, where a bolus is given, and the last one; (r,), increasing."""
        last = self.durations_h.size
        inner = np.flatnonzero(
            (self.rates_ug_per_h[1:] != self.rates_ug_per_h[:-1]) | (self.doses_ug[1:last] != 0.0)
        )
        return np.append(inner + 1, last)


def _by_runs(
    modal: ModalForm, plan: _Plan, run_ends: NDArray[np.intp], y0: FloatArray
) -> FloatArray:
    """States (n, times, 3), one broadcast per run of constant rate: in the modal basis each
    component relaxes on its own, y(t) = y_ss + (y(a) - y_ss) e^{λ (t - a)}, so every
    breakpoint of a run comes from the run's start at once (no error piling up step by step)."""
    bolus_direction = modal.p_inv[:, :, TIP]
    steady = -modal.p_inv_b / modal.lam  # modal steady state per µg/h, (n, 3)
    points, doses = plan.points_h, plan.doses_ug
    modal_states = np.empty((modal.lam.shape[0], points.size, N_STATES))
    y = y0 + bolus_direction * doses[0]
    modal_states[:, 0] = y
    start = 0
    for end in run_ends.tolist():
        if end == start:  # no step at all: one output at t0
            continue
        y_ss = steady * plan.rates_ug_per_h[start]
        elapsed_h = points[start + 1 : end + 1] - points[start]
        decay = np.exp(modal.lam[:, None, :] * elapsed_h[None, :, None])
        run = modal_states[:, start + 1 : end + 1]
        np.multiply(decay, (y - y_ss)[:, None, :], out=run)
        run += y_ss[:, None, :]
        if doses[end]:
            run[:, -1] += bolus_direction * doses[end]
        y = run[:, -1]
        start = end
    # x = P y at the breakpoints holding outputs, each as often as it is an output time
    rows = np.repeat(np.arange(points.size), plan.outputs)
    result: FloatArray = np.matmul(modal_states[:, rows], modal.p.transpose(0, 2, 1))
    return result


def _propagate(modal: ModalForm, plan: _Plan, y0: FloatArray, writer: _StateWriter) -> None:
    """Modal states y = P⁻¹ x from breakpoint to breakpoint, each step the elementwise map
    y ← e^{λ d} y + (1 - e^{λ d}) y_ss; the states at output times go to ``writer``."""
    bolus_direction = modal.p_inv[:, :, TIP]
    outputs, doses = plan.outputs.tolist(), plan.doses_ug.tolist()
    y = y0 + bolus_direction * doses[0] if doses[0] else y0
    if outputs[0]:
        writer.next_row()[...] = y
        y = writer.commit(outputs[0])
    scratch = np.empty_like(y)
    maps = _step_maps(modal, plan.durations_h, plan.rates_ug_per_h)
    for i, (decay, offset) in enumerate(maps, start=1):
        target = writer.next_row() if outputs[i] else scratch
        np.multiply(y, decay, out=target)
        target += offset
        if doses[i]:
            target += bolus_direction * doses[i]
        y = writer.commit(outputs[i]) if outputs[i] else target


# Up to this many exponentials (steps x patients x 3), every step gets its own map.
_FEW_EXPONENTIALS = 4096
# Memory for the table of step maps, one per distinct (duration, rate): a repeating program
# has a few dozen; past this size each step computes its own map instead.
_MAP_TABLE_BYTES = 64 * 2**20


def _step_maps(
    modal: ModalForm, durations_h: FloatArray, rates_ug_per_h: FloatArray
) -> Iterable[tuple[FloatArray, FloatArray]]:
    """(e^{λ d}, (1 - e^{λ d}) y_ss) for each step, each (n, 3). Steps of the same duration (to
    1e-12 h) share one e^{λ d}, from the first one's duration; steps of the same duration and
    rate share one pair."""
    steady = -modal.p_inv_b / modal.lam  # modal steady state per µg/h, (n, 3)
    if durations_h.size * modal.lam.size <= _FEW_EXPONENTIALS:  # finding repeats costs more
        decays = np.exp(modal.lam * durations_h[:, None, None])
        return list(zip(decays, _offsets(decays, steady, rates_ug_per_h), strict=True))
    _, first_d, duration_of = np.unique(
        np.round(durations_h, 12), return_index=True, return_inverse=True
    )
    duration_of = duration_of.reshape(-1)
    # one sortable number per (duration, rate) pair
    _, first, pair_of = np.unique(
        duration_of + 1j * rates_ug_per_h, return_index=True, return_inverse=True
    )
    if (first_d.size + 2 * first.size) * modal.lam.nbytes > _MAP_TABLE_BYTES:
        return (
            _step_map(modal.lam, steady, d, r)
            for d, r in zip(durations_h, rates_ug_per_h, strict=True)
        )
    decays = np.exp(modal.lam * durations_h[first_d][:, None, None])[duration_of[first]]
    table = list(zip(decays, _offsets(decays, steady, rates_ug_per_h[first]), strict=True))
    return [table[u] for u in pair_of.reshape(-1).tolist()]


def _offsets(decays: FloatArray, steady: FloatArray, rates_ug_per_h: FloatArray) -> FloatArray:
    """(1 - e^{λ d}) y_ss for maps (k, n, 3). 1 - e^{λ d} loses relative digits only when it is
    tiny, and then so is the offset next to the state: the error stays at the last digit of
    y_ss, as in the textbook y_ss + (y - y_ss) e^{λ d}."""
    result: FloatArray = (1.0 - decays) * steady * rates_ug_per_h[:, None, None]
    return result


def _step_map(
    lam: FloatArray, steady: FloatArray, duration_h: float, rate_ug_per_h: float
) -> tuple[FloatArray, FloatArray]:
    decay = np.exp(lam * duration_h)
    return decay, _offsets(decay[None], steady, np.array([rate_ug_per_h]))[0]


# Bytes of modal states held before they are written out: a block that stays in cache.
_BLOCK_BYTES = 3 * 2**19


class _StateWriter:
    """Modal states, one output time after another, written out as states (n, times, 3) a block
    of rows at a time: one batched matmul per block maps modal to physical (x = P y) and
    time-major to patient-major in one pass, while the block is still in cache."""

    def __init__(self, p: FloatArray, n_rows: int) -> None:
        n = p.shape[0]
        self._states = np.empty((n, n_rows, N_STATES))
        self._p_t = np.ascontiguousarray(p.transpose(0, 2, 1))
        block_rows = max(2, min(n_rows, _BLOCK_BYTES // (n * N_STATES * 8)))
        self._block = np.empty((block_rows, n, N_STATES))
        self._rows: list[FloatArray] = list(self._block)
        self._filled = 0  # rows of the block holding states not written out yet
        self._written = 0  # rows of the result written out

    def next_row(self) -> FloatArray:
        """Where the state at the next output time goes (then ``commit``)."""
        return self._rows[self._filled]

    def commit(self, copies: int) -> FloatArray:
        """The next row holds the state at ``copies`` equal output times; returns that state."""
        state = self._rows[self._filled]
        if copies > 1:
            state = state.copy()
        for k in range(copies):
            if k:
                self._rows[self._filled][...] = state
            self._filled += 1
            if self._filled == len(self._rows):
                self._write_out()
        # A written-out row is overwritten only by the step after next: this state stays valid.
        return state

    def finished(self) -> FloatArray:
        self._write_out()
        return self._states

    def _write_out(self) -> None:
        rows = self._filled
        np.matmul(
            self._block[:rows].transpose(1, 0, 2),
            self._p_t,
            out=self._states[:, self._written : self._written + rows],
        )
        self._written += rows
        self._filled = 0


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
