"""Intrathecal baclofen PK/PD model: parameters with their sources, and the linear system.

Theory of operation
-------------------
Three states, all linear in the input (µg/h into the CSF at the catheter tip):

* ``A_tip``  (µg): baclofen in the CSF around the catheter tip (volume ``v_tip_ml``);
* ``A_rest`` (µg): baclofen in the rest of the spinal CSF (volume ``v_rest_ml``), reached by
  transfer along the spinal axis (``q_ml_per_h``), the steep gradient of S63 and S65;
* ``Ce``  (µg/mL): the effect-site concentration, a delayed copy of the tip concentration
  (``ke0_per_h``), the "delayed-effect" model of Heetla et al. 2016 (S65 S66).

Drug leaves the tip CSF (uptake into cord, epidural space and blood, ``cl_tip_ml_per_h``) and the
rest of the CSF (bulk CSF outflow, ``cl_rest_ml_per_h``). The effect is a fall of the Modified
Ashworth Score (S74 S75, 1+ coded 2 on 0 to 5) given by an Emax relation of ``Ce`` with a Hill
coefficient below 1, so the effect keeps a slope across the maintenance doses. A sample drawn at
the catheter reads above ``C_tip`` on a slow infusion (``catheter_csf_ug_per_ml``, S64).

Every parameter is held as a NumPy array of shape ``(n,)`` so that one patient and a population of
thousands share the same code. Sources are S-numbers of docs/domain.md; [R] marks a default that
no source confirms (tuned to the time course the label and the seed describe, see
docs/pharmacology.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from itb.errors import InputError

# its home is thresholds.py (no NumPy there); re-exported for the model's many readers
from itb.pharmacology.thresholds import RESPONSE_THRESHOLD_MAS as RESPONSE_THRESHOLD_MAS

FloatArray = NDArray[np.float64]

N_STATES = 3
TIP, REST, EFFECT = 0, 1, 2

# Ratio of the CSF concentration far from the tip to that at the tip on chronic infusion:
# T2 was 43% of T12 on lumbar infusion (S63). It fixes q against cl_rest (see q_ml_per_h below).
DISTAL_TO_TIP_RATIO = 0.43  # S63


class ParameterError(InputError):
    """A PK/PD parameter outside its allowed range: ``field`` names it, ``reason`` the range."""


@dataclass(frozen=True, slots=True)
class Patients:
    """PK/PD parameters of ``n`` patients, one NumPy array of shape ``(n,)`` per parameter."""

    # CSF clearance at the tip region (mL/h). With cl_rest it gives the apparent CSF clearance
    # after a bolus, 13 to 80 mL/h (S60); typical value: geometric middle of that range.
    cl_tip_ml_per_h: FloatArray
    # Bulk CSF outflow clearing the distal CSF (mL/h): about the CSF production rate of an adult
    # (0.35 mL/min ≈ 21 mL/h) [R].
    cl_rest_ml_per_h: FloatArray
    # Transfer along the spinal axis (mL/h), set so the distal/tip ratio at steady state is 0.43
    # (S63): q / (q + cl_rest) = 0.43.
    q_ml_per_h: FloatArray
    # CSF volume mixing with the infusate around the tip (mL) [R], tuned with v_rest to the CSF
    # half-life after a bolus, 0.9 to 5 h (S60), and the peak time of the effect (S45, seed).
    v_tip_ml: FloatArray
    # The rest of the spinal and cisternal CSF (mL) [R]; adult spinal CSF is about 80 mL.
    v_rest_ml: FloatArray
    # Effect-site equilibration rate (1/h) [R], tuned to the onset and peak of a bolus
    # (label: onset 30 to 60 min, peak 4 to 6 h, S45; seed: within 60 min, about 4 h).
    ke0_per_h: FloatArray
    # Effect-site concentration giving half the maximal MAS fall (µg/mL) [R], tuned to the
    # duration of a 50 µg bolus (label 4 to 8 h, S45; seed 8 to 12 h).
    ec50_ug_per_ml: FloatArray
    # Largest possible fall of the MAS (points on the 0 to 5 coding, S75) [R].
    emax_mas: FloatArray
    # Steepness of the concentration-effect relation [R].
    hill: FloatArray
    # MAS before any drug (0 to 5 coding, S75) [R]: 3 = "considerable increase in tone".
    baseline_mas: FloatArray
    # CSF exchange at the catheter port (mL/h) [R]: on a slow infusion the infusate mixes little
    # (the steep gradient of S63 S65), so CSF drawn at the catheter tip reads above the tip
    # region's mixed concentration by rate / exchange. Tuned so the population median at a
    # mean 607 µg/day is Albright's 3.3 µg/mL (S64). A quasi-steady layer of a few µL: it
    # changes what a catheter sample reads, never the drug reaching the cord or the effect.
    catheter_exchange_ml_per_h: FloatArray

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if value.ndim == 0:
                value = value.reshape(1)
            if value.ndim != 1:
                raise ParameterError(f.name, f"expected a 1-D array, got shape {value.shape}")
            if n is None:
                n = value.shape[0]
            elif value.shape[0] != n:
                raise ParameterError(f.name, f"{value.shape[0]} values, expected {n}")
            low = 0.0 if f.name == "baseline_mas" else None
            if not np.all(np.isfinite(value)) or (
                np.any(value < 0.0) if low is not None else np.any(value <= 0.0)
            ):
                rule = "0 or more" if low is not None else "more than 0"
                raise ParameterError(f.name, f"every value must be finite and {rule}")
            object.__setattr__(self, f.name, value)

    @property
    def n(self) -> int:
        return int(self.cl_tip_ml_per_h.shape[0])

    def take(self, index: Any) -> Patients:
        """A subset (an index, a slice or a boolean mask) as its own Patients."""
        return Patients(
            **{f.name: np.atleast_1d(getattr(self, f.name)[index]) for f in fields(self)}
        )

    def with_values(self, **values: float | FloatArray) -> Patients:
        return replace(self, **{k: np.broadcast_to(v, (self.n,)).copy() for k, v in values.items()})

    # Derived quantities ----------------------------------------------------------------------
    @property
    def apparent_clearance_ml_per_h(self) -> FloatArray:
        """Dose / AUC of the tip concentration: what a bolus study measures (S60)."""
        distal_ratio = self.q_ml_per_h / (self.q_ml_per_h + self.cl_rest_ml_per_h)
        return self.cl_tip_ml_per_h + self.cl_rest_ml_per_h * distal_ratio

    @property
    def csf_half_life_h(self) -> FloatArray:
        """Terminal half-life of the tip CSF concentration after a bolus (S60: 0.9 to 5 h)."""
        pk = system_matrix(self)[:, :2, :2]
        slowest = np.max(np.linalg.eigvals(pk).real, axis=1)  # least negative eigenvalue
        result: FloatArray = math.log(2.0) / -slowest
        return result

    def steady_state_csf_ug_per_ml(self, rate_ug_per_h: float | FloatArray) -> FloatArray:
        """Tip CSF concentration on a constant infusion, at steady state."""
        return np.asarray(rate_ug_per_h, dtype=np.float64) / self.apparent_clearance_ml_per_h

    def catheter_csf_ug_per_ml(self, rate_ug_per_h: float | FloatArray) -> FloatArray:
        """CSF concentration a sample drawn at the catheter tip reads at steady state (S64)."""
        rate = np.asarray(rate_ug_per_h, dtype=np.float64)
        local: FloatArray = rate / self.catheter_exchange_ml_per_h
        return self.steady_state_csf_ug_per_ml(rate) + local


def typical_patient() -> Patients:
    """The median patient of the population (docs/pharmacology.md gives every source)."""
    cl_rest = 21.0  # [R] adult CSF production, 0.35 mL/min
    return Patients(
        cl_tip_ml_per_h=np.array([TYPICAL_CL_TIP_ML_PER_H]),
        cl_rest_ml_per_h=np.array([cl_rest]),
        q_ml_per_h=np.array([cl_rest * DISTAL_TO_TIP_RATIO / (1.0 - DISTAL_TO_TIP_RATIO)]),
        v_tip_ml=np.array([TYPICAL_V_TIP_ML]),
        v_rest_ml=np.array([TYPICAL_V_REST_ML]),
        ke0_per_h=np.array([TYPICAL_KE0_PER_H]),
        ec50_ug_per_ml=np.array([TYPICAL_EC50_UG_PER_ML]),
        emax_mas=np.array([TYPICAL_EMAX_MAS]),
        hill=np.array([TYPICAL_HILL]),
        baseline_mas=np.array([TYPICAL_BASELINE_MAS]),
        catheter_exchange_ml_per_h=np.array([TYPICAL_CATHETER_EXCHANGE_ML_PER_H]),
    )


# Typical values (sources in the Patients field comments and docs/pharmacology.md, where each
# target, its source and the model's value are tabled; tests/pharmacology/test_targets.py).
# Apparent clearance cl_tip + 0.43 × 21 = 32 mL/h, the geometric middle of 13 to 80 (S60).
TYPICAL_CL_TIP_ML_PER_H = 23.0
# [R] tuned with ke0: CSF half-life 2.7 h (S60: 0.9 to 5 h), effect peak 3.5 to 5 h (S45, seed).
TYPICAL_V_TIP_ML = 120.0
TYPICAL_V_REST_ML = 14.0  # [R] tuned with v_tip
TYPICAL_KE0_PER_H = 0.30  # [R] tuned to onset < 1 h and peak 3.5 to 5 h (S45, seed)
# [R] tuned to a 50 µg bolus lasting 7 to 9 h (S45, seed); 100 µg then lasts 12.3 h.
TYPICAL_EC50_UG_PER_ML = 0.212
TYPICAL_EMAX_MAS = 3.0  # [R] the whole typical baseline: full relaxation is possible
# [R] below 1: a shallow concentration-effect curve keeps a slope over 100 to 1000 µg/day
# (issue 15) while a 50 µg bolus still reaches a 1.0 fall within the hour.
TYPICAL_HILL = 0.8
TYPICAL_BASELINE_MAS = 3.0  # [R]
# [R] 607 µg/day = 25.3 µg/h; 25.3 / 32 + 25.3 / 10 = 3.3 µg/mL, Albright's median (S64).
TYPICAL_CATHETER_EXCHANGE_ML_PER_H = 10.0


def system_matrix(patients: Patients) -> FloatArray:
    """d(state)/dt = K @ state + B * input_ug_per_h, K of shape (n, 3, 3), time in hours."""
    p = patients
    k = np.zeros((p.n, N_STATES, N_STATES))
    k[:, TIP, TIP] = -(p.cl_tip_ml_per_h + p.q_ml_per_h) / p.v_tip_ml
    k[:, TIP, REST] = p.q_ml_per_h / p.v_rest_ml
    k[:, REST, TIP] = p.q_ml_per_h / p.v_tip_ml
    k[:, REST, REST] = -(p.q_ml_per_h + p.cl_rest_ml_per_h) / p.v_rest_ml
    k[:, EFFECT, TIP] = p.ke0_per_h / p.v_tip_ml
    k[:, EFFECT, EFFECT] = -p.ke0_per_h
    return k


def input_vector() -> FloatArray:
    """Where the pump's drug goes: all into the tip CSF."""
    b = np.zeros(N_STATES)
    b[TIP] = 1.0
    return b


def csf_ug_per_ml(states: FloatArray, patients: Patients) -> FloatArray:
    """Tip CSF concentration from states of shape (n, ..., 3)."""
    v = patients.v_tip_ml.reshape((-1,) + (1,) * (states.ndim - 2))
    result: FloatArray = states[..., TIP] / v
    return result


def effect_mas(ce_ug_per_ml: FloatArray, patients: Patients) -> FloatArray:
    """Fall of the MAS (points) for effect-site concentrations of shape (n, ...)."""
    shape = (-1,) + (1,) * (ce_ug_per_ml.ndim - 1)
    ce = np.maximum(ce_ug_per_ml, 0.0)
    hill = patients.hill.reshape(shape)
    ratio = (ce / patients.ec50_ug_per_ml.reshape(shape)) ** hill
    result: FloatArray = patients.emax_mas.reshape(shape) * ratio / (1.0 + ratio)
    return result


def ce_for_effect(effect: float | FloatArray, patients: Patients) -> FloatArray:
    """The effect-site concentration giving a MAS fall of ``effect`` (inf if above Emax)."""
    e = np.asarray(effect, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = e / (patients.emax_mas - e)
        ce = patients.ec50_ug_per_ml * np.where(frac > 0, frac, 0.0) ** (1.0 / patients.hill)
    result: FloatArray = np.where(e >= patients.emax_mas, np.inf, ce)
    return result


def predicted_mas(effect: FloatArray, patients: Patients) -> FloatArray:
    """MAS on the 0 to 5 coding (S75) given the fall, never below 0."""
    shape = (-1,) + (1,) * (effect.ndim - 1)
    result: FloatArray = np.maximum(patients.baseline_mas.reshape(shape) - effect, 0.0)
    return result
