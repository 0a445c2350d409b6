"""An independent reference: the model's ODEs written out by hand and solved with solve_ivp."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.integrate import solve_ivp

from itb.pharmacology.exact import Bolus, Piece
from itb.pharmacology.model import Patients


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
