"""The screening trial: observed MAS after a trial bolus, the model's prediction, the verdict.

Label sequence (S45 S46 S48): 50 µg; if no response, 75 µg 24 h later; then 100 µg 24 h later;
no response to 100 µg means the patient is not a candidate for a pump.

Response rule: the label asks for "a significant decrease in tone and/or spasm frequency or
severity" ([R] wording, S45); the cerebral palsy trial counted a responder at a mean Ashworth fall
of at least 1.0 (S51). Here: the largest fall from baseline at any assessment, each assessment
being the MAS averaged over the muscle groups scored, must reach ``min_fall_mas`` (default 1.0).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from itb.drugs import BACLOFEN
from itb.pharmacology.exact import Bolus, predict
from itb.pharmacology.model import (
    EFFECT,
    RESPONSE_THRESHOLD_MAS,
    ParameterError,
    Patients,
    effect_mas,
)

MAS_MIN, MAS_MAX = 0.0, 5.0  # the 0 to 5 coding, 1+ coded 2 (S75)
SCREENING_INTERVAL_H = 24.0  # S45 S46
HOURLY_FOR_8H = tuple(float(h) for h in range(1, 9))  # as a clinician records them


@dataclass(frozen=True, slots=True)
class ResponseRule:
    min_fall_mas: float = RESPONSE_THRESHOLD_MAS  # S51

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_fall_mas) and 0.0 < self.min_fall_mas <= MAS_MAX):
            reason = "allowed more than 0 up to 5"
            raise ParameterError(
                "min_fall_mas", reason, f"min_fall_mas={self.min_fall_mas}: {reason}"
            )


@dataclass(frozen=True, slots=True)
class Observation:
    t_h: float  # hours after the bolus
    mas: float  # mean MAS over the muscle groups scored, 0 to 5 coding (S75)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t_h) and 0.0 <= self.t_h <= 48.0):
            reason = "allowed 0 to 48 h after the bolus"
            raise ParameterError("t_h", reason, f"observation t_h={self.t_h}: {reason}")
        if not (math.isfinite(self.mas) and MAS_MIN <= self.mas <= MAS_MAX):
            reason = "allowed 0 to 5 (S75 coding)"
            raise ParameterError("mas", reason, f"observation mas={self.mas}: {reason}")


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    dose_ug: float
    positive: bool
    max_fall_mas: float
    # hours from the first to the last assessment at or above the response fall (0 if none)
    effect_duration_h: float
    predicted_mas: tuple[float, ...]  # the model's MAS at each observation time
    rms_error_mas: float  # observed against predicted
    reason: str


def classify_response(
    dose_ug: float,
    baseline_mas: float,
    observations: Sequence[Observation],
    patient: Patients | None = None,
    rule: ResponseRule = ResponseRule(),
) -> ScreeningResult:
    """Classify one trial bolus and compare it with the model (``patient``: one patient)."""
    if dose_ug not in BACLOFEN.screening_doses_ug and not (0.0 < dose_ug <= 100.0):
        reason = "allowed more than 0 up to 100 µg (S45 S46)"
        raise ParameterError("dose_ug", reason, f"dose_ug={dose_ug}: {reason}")
    if not (math.isfinite(baseline_mas) and MAS_MIN <= baseline_mas <= MAS_MAX):
        reason = "allowed 0 to 5 (S75 coding)"
        raise ParameterError("baseline_mas", reason, f"baseline_mas={baseline_mas}: {reason}")
    if not observations:
        raise ParameterError("observations", "at least one assessment after the bolus is needed")
    obs = sorted(observations, key=lambda o: o.t_h)
    falls = [baseline_mas - o.mas for o in obs]
    max_fall = max(falls)
    hits = [o.t_h for o, f in zip(obs, falls, strict=True) if f >= rule.min_fall_mas]
    duration = (hits[-1] - hits[0]) if hits else 0.0
    positive = max_fall >= rule.min_fall_mas
    predicted: tuple[float, ...] = ()
    rms = math.nan
    if patient is not None:
        if patient.n != 1:
            raise ParameterError("patient", f"expected one patient, got {patient.n}")
        times = np.array([o.t_h for o in obs])
        states = predict(patient, [], [Bolus(0.0, dose_ug)], times, t0_h=0.0)
        fall = effect_mas(states[..., EFFECT], patient)[0]
        predicted = tuple(float(np.clip(baseline_mas - f, MAS_MIN, MAS_MAX)) for f in fall)
        rms = math.sqrt(
            sum((o.mas - p) ** 2 for o, p in zip(obs, predicted, strict=True)) / len(obs)
        )
    verdict = "positive" if positive else "no response"
    reason = (
        f"{dose_ug:g} µg: largest MAS fall {max_fall:.2f} (rule: at least {rule.min_fall_mas:g}, "
        f"S51) -> {verdict}"
        + (f"; fall held {duration:g} h" if positive else "")
        + (f"; model RMS error {rms:.2f} MAS" if patient is not None else "")
    )
    return ScreeningResult(dose_ug, positive, max_fall, duration, predicted, rms, reason)


class ScreeningAction(enum.Enum):
    CANDIDATE = "candidate"
    NEXT_DOSE = "next_dose"
    NOT_CANDIDATE = "not_candidate"


@dataclass(frozen=True, slots=True)
class ScreeningDecision:
    action: ScreeningAction
    next_dose_ug: float | None
    after_h: float | None
    reason: str


def next_screening_step(results: Sequence[ScreeningResult]) -> ScreeningDecision:
    """The label's escalation: 50, 75, 100 µg a day apart; stop at the first response."""
    doses = BACLOFEN.screening_doses_ug
    if not results:
        return ScreeningDecision(
            ScreeningAction.NEXT_DOSE, doses[0], 0.0, f"start with {doses[0]:g} µg (S45 S46)"
        )
    last = results[-1]
    if last.positive:
        return ScreeningDecision(
            ScreeningAction.CANDIDATE,
            None,
            None,
            f"response to {last.dose_ug:g} µg: candidate for a pump (S45 S46); {last.reason}",
        )
    higher = [d for d in doses if d > last.dose_ug]
    if not higher:
        return ScreeningDecision(
            ScreeningAction.NOT_CANDIDATE,
            None,
            None,
            f"no response to {last.dose_ug:g} µg: not a candidate (S45 S46); {last.reason}",
        )
    return ScreeningDecision(
        ScreeningAction.NEXT_DOSE,
        higher[0],
        SCREENING_INTERVAL_H,
        f"no response to {last.dose_ug:g} µg: give {higher[0]:g} µg "
        f"{SCREENING_INTERVAL_H:g} h later (S45 S46)",
    )
