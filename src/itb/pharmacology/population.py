"""Seeded population draws: log-normal individual parameters around the typical patient.

One ``numpy.random.Generator`` is passed in and threaded through every draw (as chi does), so a
seed gives the same population on every machine. Spreads (standard deviations of the log, ω):

* clearance (one factor for cl_tip, cl_rest and q, which keeps the spinal gradient of S63):
  ω = 0.6, so that the 5th to 95th percentile of the apparent clearance, 32 × e^(±1.645 ω) =
  12 to 86 mL/h, covers the published 13 to 80 mL/h (S60, four patients);
* CSF volumes (one factor for v_tip and v_rest): ω = 0.3 [R]; with the clearance it spreads the
  half-life over 0.7 to 6.5 h (5th to 95th), covering the published 0.9 to 5 h (S60);
* ke0: ω = 0.25 [R]; EC50: ω = 0.3 [R]; Emax: ω = 0.1 [R]; baseline MAS: ω = 0.15 [R]. Tuned
  so that the duration of a 50 µg bolus spans the label's 4 to 8 h and the seed's 8 to 12 h
  (docs/pharmacology.md). The Hill coefficient is not varied [R].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from itb.pharmacology.model import FloatArray, ParameterError, Patients, typical_patient


@dataclass(frozen=True, slots=True)
class Variability:
    """Standard deviations of the log of each individual factor."""

    clearance: float = 0.6  # S60 (see module docstring)
    volume: float = 0.3  # [R]
    ke0: float = 0.25  # [R]
    ec50: float = 0.3  # [R]
    emax: float = 0.1  # [R]
    baseline: float = 0.15  # [R]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and 0.0 <= value <= 2.0):
                name = f"variability.{f.name}"
                reason = "allowed 0 to 2 (log-scale SD)"
                raise ParameterError(name, reason, f"{name}={value}: {reason}")


DEFAULT_VARIABILITY = Variability()

# MAS on the 0 to 5 coding (S75): a drawn baseline is kept within it.
MAS_MAX = 5.0


# Rows of the standard normals behind one patient, in this fixed order (seeds stay comparable):
# clearance (cl_tip, cl_rest, q, catheter exchange), volume (v_tip, v_rest), ke0, ec50, emax,
# baseline. The per-patient fit (fit.py) works in this space.
N_NORMALS = 6

# Residual error of one scored MAS (points, additive normal SD) [R]: scores are whole points on
# the 0 to 5 coding (S75), and rounding alone has an SD of 1/sqrt(12) = 0.29 point.
RESIDUAL_SD_MAS = 0.3


def draw_patients(
    rng: np.random.Generator,
    n: int,
    variability: Variability = DEFAULT_VARIABILITY,
    typical: Patients | None = None,
) -> Patients:
    """``n`` patients with log-normal parameters around ``typical`` (default: the typical one)."""
    if not (isinstance(n, int) and 1 <= n <= 10_000_000):
        reason = "allowed 1 to 10,000,000 patients"
        raise ParameterError("n", reason, f"n={n}: {reason}")
    # One call, so a generator that hands back chosen normals maps them the same way.
    return patients_from_normals(rng.standard_normal((N_NORMALS, n)), variability, typical)


def patients_from_normals(
    z: FloatArray,
    variability: Variability = DEFAULT_VARIABILITY,
    typical: Patients | None = None,
) -> Patients:
    """Patients from standard normals ``z`` of shape (N_NORMALS, n): z = 0 is ``typical``."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != N_NORMALS or not np.all(np.isfinite(z)):
        reason = f"expected finite values of shape ({N_NORMALS}, n)"
        raise ParameterError("z", reason, f"z of shape {z.shape}: {reason}")
    n = z.shape[1]
    base = typical_patient() if typical is None else typical
    if base.n != 1:
        raise ParameterError("typical", f"expected one patient, got {base.n}")
    v = variability
    cl = np.exp(v.clearance * z[0])
    vol = np.exp(v.volume * z[1])
    emax = base.emax_mas * np.exp(v.emax * z[4])
    baseline = np.minimum(base.baseline_mas * np.exp(v.baseline * z[5]), MAS_MAX)
    return Patients(
        cl_tip_ml_per_h=base.cl_tip_ml_per_h * cl,
        cl_rest_ml_per_h=base.cl_rest_ml_per_h * cl,
        q_ml_per_h=base.q_ml_per_h * cl,
        v_tip_ml=base.v_tip_ml * vol,
        v_rest_ml=base.v_rest_ml * vol,
        ke0_per_h=base.ke0_per_h * np.exp(v.ke0 * z[2]),
        ec50_ug_per_ml=base.ec50_ug_per_ml * np.exp(v.ec50 * z[3]),
        # the drug cannot relax more than the patient's tone: Emax at most the baseline
        emax_mas=np.minimum(emax, baseline),
        hill=np.broadcast_to(base.hill, (n,)).copy(),
        baseline_mas=baseline,
        catheter_exchange_ml_per_h=base.catheter_exchange_ml_per_h * cl,
    )
