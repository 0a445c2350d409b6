"""An independent reference: the model's ODEs written out by hand and solved with solve_ivp."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from itb.pharmacology.exact import Bolus, Piece
from itb.pharmacology.model import Patients, input_vector, system_matrix


def rhs_factory(p: Patients, i: int, rate_ug_per_h: float):  # type: ignore[no-untyped-def]
    cl1, cl2, q = p.cl_tip_ml_per_h[i], p.cl_rest_ml_per_h[i], p.q_ml_per_h[i]
    v1, v2, ke0 = p.v_tip_ml[i], p.v_rest_ml[i], p.ke0_per_h[i]

    def rhs(_t: float, x: np.ndarray) -> np.ndarray:
        c1, c2 = x[0] / v1, x[1] / v2
        return np.array(
            [
                rate_ug_per_h - cl1 * c1 - q * (c1 - c2),
                q * (c1 - c2) - cl2 * c2,
                ke0 * (c1 - x[2]),
            ]
        )

    return rhs


def reference_states(
    p: Patients,
    i: int,
    pieces: Sequence[Piece],
    boluses: Sequence[Bolus],
    times_h: Sequence[float],
    rtol: float = 1e-11,
    atol: float = 1e-13,
) -> np.ndarray:
    """States (len(times), 3) for patient ``i``, restarting the solver at every discontinuity."""
    cuts = sorted(
        {
            0.0,
            *(pc.start_h for pc in pieces),
            *(pc.end_h for pc in pieces),
            *(b.t_h for b in boluses),
        }
        | set(times_h)
    )
    x = np.zeros(3)
    out = {}
    for a, b in zip(cuts, [*cuts[1:], None], strict=True):
        for bolus in boluses:
            if bolus.t_h == a:
                x[0] += bolus.dose_ug
        if a in times_h:
            out[a] = x.copy()
        if b is None:
            break
        rate = sum(pc.rate_ug_per_h for pc in pieces if pc.start_h <= a < pc.end_h)
        sol = solve_ivp(rhs_factory(p, i, rate), (a, b), x, method="DOP853", rtol=rtol, atol=atol)
        x = sol.y[:, -1].copy()
    return np.array([out[t] for t in times_h])


def expm_reference_states(
    p: Patients,
    pieces: Sequence[Piece],
    boluses: Sequence[Bolus],
    times_h: Sequence[float],
    t0_h: float,
    initial_state: np.ndarray,
) -> np.ndarray:
    """States (n, len(times), 3) stepped in physical coordinates with scipy.linalg.expm:
    x ← x_ss + expm(K d) (x - x_ss) between every two breakpoints, the rate found by scanning
    the pieces; no eigendecomposition, so it checks the modal form's arithmetic."""
    k = system_matrix(p)
    b = np.broadcast_to(input_vector(), (p.n, 3))[..., None]
    ss_per_rate = -np.linalg.solve(k, b)[..., 0]
    last = max(times_h)
    cuts = sorted(
        {t0_h, *times_h, *(b.t_h for b in boluses)}
        | {e for pc in pieces for e in (pc.start_h, pc.end_h)}
    )
    cuts = [c for c in cuts if t0_h <= c <= last]
    x = np.array(initial_state, dtype=np.float64)
    out = {}
    phis: dict[float, np.ndarray] = {}  # expm(K d) by exact duration d
    for a, nxt in zip(cuts, [*cuts[1:], None], strict=True):
        for bolus in boluses:
            if bolus.t_h == a:
                x[:, 0] += bolus.dose_ug
        out[a] = x.copy()
        if nxt is None:
            break
        rate = sum(pc.rate_ug_per_h for pc in pieces if pc.start_h <= a < pc.end_h)
        x_ss = ss_per_rate * rate
        duration = nxt - a
        if duration not in phis:
            phis[duration] = expm(k * duration)
        phi = phis[duration]
        x = x_ss + np.einsum("nij,nj->ni", phi, x - x_ss)
    return np.stack([out[t] for t in times_h], axis=1)
