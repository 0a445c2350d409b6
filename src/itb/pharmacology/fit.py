"""Each patient's own model: the population as the prior, the screening trial as the data.

Theory of operation
-------------------
``population.patients_from_normals`` is the one map from standard normals ``z`` to a patient's
parameters (log-normal factors around the typical patient, with the spreads of ``Variability``);
``draw_patients`` calls it. The fit works in that space, so it varies exactly the parameters the
population varies, with their typical values and spreads, and keeps no second list of them. In
``z`` the prior is a standard normal, and ``z`` is the log of each factor divided by its spread,
so a MAP in ``z`` is the MAP in log-parameter space.

Data: MAS scores at known times after known boluses and infusion pieces (a screening trial, one
or more bolus days), and optionally MAS scored at steady state on a known daily dose (follow-up
visits). Residual error: an additive normal error of ``population.RESIDUAL_SD_MAS`` on each
score.

* MAP: ``scipy.optimize.least_squares`` on the residuals ``[z, (observed - predicted) / σ]``,
  its Jacobian by forward differences computed in one batched prediction (``exact.predict``
  takes a batch of patients).
* Uncertainty: a Laplace approximation, the Gauss-Newton Hessian ``JᵀJ`` at the MAP, so
  ``z ~ N(z_map, (JᵀJ)⁻¹)``; :mod:`itb.pharmacology.prediction` samples it for bands.
* No scores: the fit is the prior itself (the typical patient, with the population's spread).

Pure: no clock, disk or global random; sampling takes a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np

from itb.pharmacology.exact import Bolus, Piece, Propagator, predict
from itb.pharmacology.model import (
    EFFECT,
    FloatArray,
    ParameterError,
    Patients,
    effect_mas,
    predicted_mas,
)
from itb.pharmacology.population import (
    DEFAULT_VARIABILITY,
    MAS_MAX,
    N_NORMALS,
    RESIDUAL_SD_MAS,
    Variability,
    patients_from_normals,
)
from itb.pharmacology.screening import SCREENING_INTERVAL_H
from itb.units import HOURS_PER_DAY, SECONDS_PER_HOUR

MAX_SCORES = 2000  # far above a screening trial plus years of follow-up visits
_FD_STEP = 1e-6  # forward-difference step in z (the parameters are smooth in z)


class FitError(ParameterError):
    """Data the fit cannot take: ``field`` names it and ``reason`` the allowed range."""


@dataclass(frozen=True, slots=True)
class MasScore:
    """A MAS score (0 to 5 coding, S75) at ``t_h`` hours on the trial's clock."""

    t_h: float
    mas: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_h):
            raise FitError("t_h", "must be a finite number of hours", f"score t_h={self.t_h}")
        if not (math.isfinite(self.mas) and 0.0 <= self.mas <= MAS_MAX):
            reason = "allowed 0 to 5 (Modified Ashworth, 1+ coded 2; S75)"
            raise FitError("mas", reason, f"score mas={self.mas}: {reason}")


@dataclass(frozen=True, slots=True)
class SteadyScore:
    """A MAS score on a known continuous daily dose, at steady state (a follow-up visit)."""

    daily_dose_ug: float
    mas: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.daily_dose_ug) and self.daily_dose_ug >= 0.0):
            reason = "must be 0 or more µg/day"
            raise FitError("daily_dose_ug", reason, f"daily_dose_ug={self.daily_dose_ug}: {reason}")
        if not (math.isfinite(self.mas) and 0.0 <= self.mas <= MAS_MAX):
            reason = "allowed 0 to 5 (Modified Ashworth, 1+ coded 2; S75)"
            raise FitError("mas", reason, f"follow-up mas={self.mas}: {reason}")


@dataclass(frozen=True, slots=True)
class TrialData:
    """What was given and what was scored: boluses, infusion pieces and MAS on one clock
    (hours), and MAS at steady state on known daily doses."""

    boluses: tuple[Bolus, ...] = ()
    scores: tuple[MasScore, ...] = ()
    pieces: tuple[Piece, ...] = ()
    steady_scores: tuple[SteadyScore, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(sorted(self.scores, key=lambda s: s.t_h)))
        if len(self.scores) + len(self.steady_scores) > MAX_SCORES:
            reason = f"allowed up to {MAX_SCORES} scores"
            raise FitError("scores", reason)
        if self.scores and (self.boluses or self.pieces):
            first_dose_h = min([b.t_h for b in self.boluses] + [p.start_h for p in self.pieces])
            if self.scores[0].t_h < first_dose_h - 48.0:
                raise FitError("scores", "a score more than 48 h before the first dose")

    @property
    def n_scores(self) -> int:
        return len(self.scores) + len(self.steady_scores)

    @property
    def observed_mas(self) -> FloatArray:
        return np.array([s.mas for s in self.scores] + [s.mas for s in self.steady_scores])


@dataclass(frozen=True, slots=True)
class TrialDay:
    """One trial bolus as the clinic records it: the dose and MAS by whole hour (0 = baseline)."""

    dose_ug: float
    scores_by_hour: Mapping[int, float]
    given_at: datetime | None = None  # None: a day after the previous dose (S45 S46)


def trial_data(days: Sequence[TrialDay], steady: tuple[SteadyScore, ...] = ()) -> TrialData:
    """The days on one clock (hours after the first bolus), as the fit takes them."""
    boluses, scores = [], []
    t0 = 0.0
    for i, day in enumerate(days):
        if i > 0:
            first, given = days[0].given_at, day.given_at
            if first is not None and given is not None:
                t0 = (given - first).total_seconds() / SECONDS_PER_HOUR
            else:
                t0 += SCREENING_INTERVAL_H
        boluses.append(Bolus(t0, day.dose_ug))
        scores += [MasScore(t0 + h, m) for h, m in sorted(day.scores_by_hour.items())]
    return TrialData(tuple(boluses), tuple(scores), (), steady)


# The population's own map from standard normals to parameters ------------------------------------
def patients_at(z: FloatArray, variability: Variability = DEFAULT_VARIABILITY) -> Patients:
    """Patients for rows of standard normals ``z`` of shape (m, N_NORMALS): one patient per row,
    mapped by the population's own ``patients_from_normals``."""
    z2 = np.atleast_2d(np.asarray(z, dtype=np.float64))
    return patients_from_normals(z2.T, variability)


# The forward model ------------------------------------------------------------------------------
def predicted_scores(patients: Patients, data: TrialData) -> FloatArray:
    """The model's MAS at each score of ``data``, shape (n, n_scores): timed scores first."""
    parts = []
    if data.scores:
        times = np.array([s.t_h for s in data.scores])
        starts = [b.t_h for b in data.boluses] + [p.start_h for p in data.pieces]
        t0 = min([*starts, float(times[0])])
        states = predict(patients, data.pieces, data.boluses, times, t0_h=t0)
        parts.append(predicted_mas(effect_mas(states[..., EFFECT], patients), patients))
    if data.steady_scores:
        rates = np.array([s.daily_dose_ug for s in data.steady_scores]) / HOURS_PER_DAY
        ss = Propagator(patients).steady_state(np.ones(patients.n))  # per µg/h, (n, 3)
        ce = ss[:, EFFECT, None] * rates[None, :]
        parts.append(predicted_mas(effect_mas(ce, patients), patients))
    result: FloatArray = np.minimum(np.concatenate(parts, axis=1), MAS_MAX)
    return result


# The fit ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatientFit:
    """A patient's posterior, Laplace-approximated: ``z ~ N(z_map, z_cov)``."""

    z_map: FloatArray  # (k,)
    z_cov: FloatArray  # (k, k)
    n_scores: int  # 0: the typical patient (the prior)
    rms_error_mas: float  # observed against the MAP model (NaN without scores)
    residual_sd_mas: float = RESIDUAL_SD_MAS
    variability: Variability = DEFAULT_VARIABILITY

    @property
    def typical(self) -> bool:
        """True when no score informed the fit: the typical patient with the population's spread."""
        return self.n_scores == 0

    def patient(self) -> Patients:
        """The most probable parameters (MAP), as one patient."""
        return patients_at(self.z_map[None, :], self.variability)

    def sample_z(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` draws of ``z`` from the Laplace posterior, shape (n, k)."""
        result: FloatArray = rng.multivariate_normal(
            self.z_map, self.z_cov, size=n, method="cholesky"
        )
        return result

    def sample(self, rng: np.random.Generator, n: int) -> Patients:
        return patients_at(self.sample_z(rng, n), self.variability)

    def parameters(
        self, rng: np.random.Generator, n: int = 1000, level: float = 0.8
    ) -> dict[str, dict[str, float]]:
        """Each varied parameter: MAP value and the central ``level`` interval of the posterior."""
        best, draws = self.patient(), self.sample(rng, n)
        tail = 50.0 * (1.0 - level)
        out = {}
        for f in fields(Patients):
            values = getattr(draws, f.name)
            if np.ptp(values) <= 1e-12 * max(abs(float(values[0])), 1e-300):
                continue  # not varied
            low, high = np.percentile(values, [tail, 100.0 - tail])
            out[f.name] = {
                "map": float(getattr(best, f.name)[0]),
                "low": float(low),
                "high": float(high),
            }
        return out


def prior_fit(variability: Variability = DEFAULT_VARIABILITY) -> PatientFit:
    """The typical patient, with the population's spread: the fit when there is nothing to fit."""
    k = N_NORMALS
    return PatientFit(np.zeros(k), np.eye(k), 0, math.nan, RESIDUAL_SD_MAS, variability)


def fit_patient(
    data: TrialData,
    variability: Variability = DEFAULT_VARIABILITY,
    residual_sd_mas: float = RESIDUAL_SD_MAS,
    start_z: Sequence[float] | None = None,
) -> PatientFit:
    """MAP and Laplace covariance of the patient's standard normals given ``data``."""
    if not (math.isfinite(residual_sd_mas) and 0.01 <= residual_sd_mas <= 2.0):
        reason = "allowed 0.01 to 2 MAS points"
        raise FitError("residual_sd_mas", reason, f"residual_sd_mas={residual_sd_mas}: {reason}")
    if data.n_scores == 0:
        return prior_fit(variability)
    k = N_NORMALS
    observed = data.observed_mas

    def residuals_batch(z: FloatArray) -> FloatArray:
        predicted = predicted_scores(patients_at(z, variability), data)
        return np.concatenate([z, (observed[None, :] - predicted) / residual_sd_mas], axis=1)

    def residuals(z: FloatArray) -> FloatArray:
        result: FloatArray = residuals_batch(z[None, :])[0]
        return result

    def jacobian(z: FloatArray) -> FloatArray:
        batch = np.vstack([z, z + _FD_STEP * np.eye(k)])
        r = residuals_batch(batch)
        result: FloatArray = ((r[1:] - r[0]) / _FD_STEP).T
        return result

    x0 = np.zeros(k) if start_z is None else np.asarray(start_z, dtype=np.float64)
    # imported here: scipy.optimize costs ~0.5 s, and the clinic imports this module at start
    from scipy.optimize import least_squares

    solution = least_squares(residuals, x0, jac=jacobian, method="trf", x_scale=1.0, max_nfev=200)
    z_map = np.asarray(solution.x, dtype=np.float64)
    j = jacobian(z_map)
    z_cov = np.linalg.inv(j.T @ j)  # JᵀJ ⪰ I (the prior rows), so it is invertible
    misfit = observed - predicted_scores(patients_at(z_map[None, :], variability), data)[0]
    rms = float(np.sqrt(np.mean(misfit**2)))
    return PatientFit(
        z_map, (z_cov + z_cov.T) / 2.0, data.n_scores, rms, residual_sd_mas, variability
    )


# The fit as a plain dict (JSON), and back --------------------------------------------------------
FIT_KIND = "itb.pk.fit/1"
_MATCH_RTOL = 1e-6


def fit_to_dict(fit: PatientFit, rng: np.random.Generator) -> dict[str, Any]:
    """The fit as JSON-ready values: the posterior in ``z`` (what ``fit_from_dict`` reads back)
    and, for people, each varied parameter's MAP and 80% interval."""
    return {
        "kind": FIT_KIND,
        "typical_patient": fit.typical,
        "scores": fit.n_scores,
        "rms_error_mas": None if math.isnan(fit.rms_error_mas) else round(fit.rms_error_mas, 4),
        "residual_sd_mas": fit.residual_sd_mas,
        "variability": {f.name: getattr(fit.variability, f.name) for f in fields(Variability)},
        "parameters": fit.parameters(rng),
        "z_map": [float(v) for v in fit.z_map],
        "z_cov": [[float(v) for v in row] for row in fit.z_cov],
    }


def _floats(value: object, field: str, shape: tuple[int, ...]) -> FloatArray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FitError(field, f"expected numbers of shape {shape}") from None
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise FitError(field, f"expected finite numbers of shape {shape}")
    return array


def fit_from_dict(data: object) -> PatientFit:
    """A fit written by ``fit_to_dict``; refused when the model has changed since (the stored
    MAP parameters no longer match), so a stale fit is never silently reinterpreted."""
    if not isinstance(data, dict) or data.get("kind") != FIT_KIND:
        raise FitError("kind", f"not a fit file (expected kind = {FIT_KIND!r})")
    try:
        variability = Variability(**dict(data["variability"]))
        n_scores = int(data["scores"])
        residual = float(data["residual_sd_mas"])
        rms = math.nan if data["rms_error_mas"] is None else float(data["rms_error_mas"])
        stored = {k: float(v["map"]) for k, v in dict(data["parameters"]).items()}
    except (KeyError, TypeError, ValueError) as err:
        raise FitError("fit", f"missing or malformed entry: {err}") from None
    k = N_NORMALS
    z_map = _floats(data.get("z_map"), "z_map", (k,))
    z_cov = _floats(data.get("z_cov"), "z_cov", (k, k))
    try:
        np.linalg.cholesky(z_cov)
    except np.linalg.LinAlgError:
        raise FitError("z_cov", "not a covariance matrix (symmetric, positive definite)") from None
    fit = PatientFit(z_map, z_cov, n_scores, rms, residual, variability)
    best = fit.patient()
    for name, value in stored.items():
        now = getattr(best, name, None)
        if now is None or not math.isclose(float(now[0]), value, rel_tol=_MATCH_RTOL):
            reason = "the fit was made with another version of the model: fit the trial again"
            raise FitError("parameters", reason, f"{name}: {reason}")
    return fit
