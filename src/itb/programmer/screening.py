"""The screening trial as a value: trial boluses, hourly MAS scores, result and decision.

Pure (no clock, no I/O): the caller passes the times in. For the current (last) dose it gives

* the comparison of the observed MAS with the model's prediction for a typical patient at the
  same hours (``itb.pharmacology``: the same model as ``itb pk bolus``);
* the classification (``itb.pharmacology.screening.classify_response``; the response rule is a
  setting, default a fall of at least 1.0 point, S51);
* the decision: the next dose and the earliest time for it (never less than 24 h after the
  previous dose, S45 S46), or a candidate with the first pump dose
  (``itb.pharmacology.titration.first_pump_dose``, S46), or not a candidate;

each with a reason string. Sources: docs/domain.md (S45 S46 S48 S51, MAS coding S74 S75).

Effect duration for the first pump dose (S46: the same dose when "the effect lasted more than
8 hours"): the hours from the bolus to the last score still at or above the response fall [R].
Counting from the bolus (not from the onset) gives the longer duration, hence the lower starting
dose when in doubt. Scores stop at 8 h in the clinic, so "more than 8 h" needs a later score
(allowed up to 24 h); a response still present at the last score is said so in the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from itb.drugs import BACLOFEN, SCREENING_TRIAL_DOSES_UG
from itb.errors import InputError
from itb.pharmacology.exact import Bolus, predict
from itb.pharmacology.model import EFFECT, Patients, effect_mas, typical_patient
from itb.pharmacology.screening import (
    MAS_MAX,
    MAS_MIN,
    SCREENING_INTERVAL_H,
    Observation,
    ResponseRule,
    ScreeningAction,
    ScreeningResult,
    classify_response,
    next_screening_step,
)
from itb.pharmacology.titration import LONG_EFFECT_H, FirstDoseAdvice, first_pump_dose
from itb.units import SECONDS_PER_HOUR

__all__ = [
    "ALLOWED_DOSES_UG",
    "LAST_SCORE_H",
    "MIN_INTERVAL_H",
    "MIN_SCORES_AFTER_BOLUS",
    "Assessment",
    "Classification",
    "Comparison",
    "ComparisonRow",
    "Decision",
    "EarlierDose",
    "Observation",
    "ResponseRule",
    "ScreeningAction",
    "ScreeningInputError",
    "ScreeningTrial",
    "TrialDose",
    "assess",
    "classify",
    "compare_with_model",
    "decide",
    "dose_from_hourly_scores",
    "open_trial",
    "predicted_mas_course",
]

ALLOWED_DOSES_UG = SCREENING_TRIAL_DOSES_UG  # 50, 75, 100 µg (S45 S46); 25 µg (S48)
MIN_INTERVAL_H = SCREENING_INTERVAL_H  # 24 h between trial boluses (S45 S46)
LAST_SCORE_H = 24.0  # scores later than a day after the bolus belong to no dose (next at 24 h)
# [R] at least 4 scores after the bolus: fewer can miss the peak (4 to 6 h, S45)
MIN_SCORES_AFTER_BOLUS = 4
CLINIC_LAST_HOUR = 8  # the clinic scores hourly for 8 h (HOURLY_FOR_8H, the pharmacology issue)


class ScreeningInputError(InputError):
    """Bad screening input: ``field`` names it and ``reason`` gives the allowed range."""


def _check_dose(dose_ug: float, field: str = "dose_ug") -> float:
    if not (math.isfinite(dose_ug) and dose_ug in ALLOWED_DOSES_UG):
        reason = "allowed 25, 50, 75 or 100 µg (S45 S46 S48)"
        raise ScreeningInputError(field, reason, f"{field}={dose_ug:g}: {reason}")
    return float(dose_ug)


def _check_mas(value: float, field: str) -> float:
    if not (math.isfinite(value) and MAS_MIN <= value <= MAS_MAX):
        reason = "allowed 0 to 5 (Modified Ashworth, 1+ coded 2; S74 S75)"
        raise ScreeningInputError(field, reason, f"{field}={value:g}: {reason}")
    return float(value)


@dataclass(frozen=True, slots=True)
class EarlierDose:
    """A screening dose already given, by its outcome only. ``given_at`` None: not known."""

    dose_ug: float
    positive: bool
    given_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dose_ug", _check_dose(self.dose_ug, "previous"))


@dataclass(frozen=True, slots=True)
class TrialDose:
    """One trial bolus with the MAS before it and the scores after it (hours after the bolus)."""

    dose_ug: float
    baseline_mas: float
    scores: tuple[Observation, ...]
    given_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dose_ug", _check_dose(self.dose_ug))
        object.__setattr__(self, "baseline_mas", _check_mas(self.baseline_mas, "baseline_mas"))
        hours = [s.t_h for s in self.scores]
        for s in self.scores:
            if not (math.isfinite(s.t_h) and 0.0 < s.t_h <= LAST_SCORE_H):
                raise ScreeningInputError(
                    "scores",
                    f"hour {s.t_h:g}: allowed more than 0 up to {LAST_SCORE_H:g} h after "
                    "the bolus (hour 0 is the baseline)",
                )
            _check_mas(s.mas, f"scores[{s.t_h:g}]")
        if len(set(hours)) != len(hours):
            raise ScreeningInputError("scores", "each hour may be scored once")
        if len(self.scores) < MIN_SCORES_AFTER_BOLUS:
            raise ScreeningInputError(
                "scores",
                f"{len(self.scores)} after the bolus; at least {MIN_SCORES_AFTER_BOLUS} "
                "are needed (hourly for 8 h; the peak comes at 4 to 6 h, S45)",
            )
        object.__setattr__(self, "scores", tuple(sorted(self.scores, key=lambda s: s.t_h)))

    @property
    def last_score_h(self) -> float:
        return self.scores[-1].t_h


def dose_from_hourly_scores(
    dose_ug: float,
    scores_by_hour: Mapping[int, float],
    given_at: datetime | None = None,
    last_hour: int = CLINIC_LAST_HOUR,
) -> TrialDose:
    """A dose from whole-hour scores ``{0: baseline, 1: ..., 8: ...}`` (hour 0 = baseline)."""
    for hour in scores_by_hour:
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= last_hour:
            raise ScreeningInputError(
                "scores", f"hour {hour!r}: allowed whole hours 0 to {last_hour}"
            )
    if 0 not in scores_by_hour:
        raise ScreeningInputError(
            "scores", "hour 0 (the baseline MAS before the bolus) is required"
        )
    baseline = _check_mas(float(scores_by_hour[0]), "scores[0]")
    after = []
    for hour, mas in scores_by_hour.items():
        if hour != 0:
            after.append(Observation(float(hour), _check_mas(float(mas), f"scores[{hour}]")))
    return TrialDose(dose_ug, baseline, tuple(after), given_at)


def _ends_a_trial(dose_ug: float, positive: bool) -> bool:
    return positive or dose_ug >= max(BACLOFEN.screening_doses_ug)


def open_trial(history: Sequence[EarlierDose]) -> tuple[EarlierDose, ...]:
    """The doses of the trial still open: those after the last dose that ended one (a response,
    or no response to the highest dose, S45 S46). The 24 h spacing still counts every dose."""
    start = 0
    for i, d in enumerate(history):
        if _ends_a_trial(d.dose_ug, d.positive):
            start = i + 1
    return tuple(history[start:])


@dataclass(frozen=True, slots=True)
class ScreeningTrial:
    """The earlier doses (oldest first; the whole history for the spacing) and the current one."""

    current: TrialDose
    earlier: tuple[EarlierDose, ...] = ()

    def __post_init__(self) -> None:
        # the current dose against the latest earlier one (earlier records are history: a
        # spacing broken in the past is not this entry's error)
        timed = [d.given_at for d in self.earlier if d.given_at is not None]
        if self.current.given_at is not None and timed:
            _check_spacing("given_at", max(timed), self.current.given_at)


def _check_spacing(field: str, before: datetime, after: datetime) -> None:
    gap_h = (after - before).total_seconds() / SECONDS_PER_HOUR
    if gap_h < MIN_INTERVAL_H:
        raise ScreeningInputError(
            field,
            f"a screening dose {gap_h:.1f} h after the previous one; allowed "
            f"{MIN_INTERVAL_H:g} h or more after it (S45 S46)",
        )


# The model comparison ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ComparisonRow:
    hour_h: float
    observed_mas: float
    predicted_mas: float

    @property
    def difference_mas(self) -> float:
        return self.observed_mas - self.predicted_mas


@dataclass(frozen=True, slots=True)
class Comparison:
    dose_ug: float
    baseline_mas: float
    rows: tuple[ComparisonRow, ...]
    rms_error_mas: float
    reason: str


def predicted_mas_course(
    dose_ug: float, baseline_mas: float, times_h: Sequence[float], patient: Patients | None = None
) -> tuple[float, ...]:
    """The model's MAS after the bolus at ``times_h`` (typical patient unless given), starting
    from the observed baseline."""
    p = patient if patient is not None else typical_patient()
    states = predict(p, [], [Bolus(0.0, dose_ug)], np.asarray(times_h, dtype=float), t0_h=0.0)
    fall = effect_mas(states[..., EFFECT], p)[0]
    return tuple(float(np.clip(baseline_mas - f, MAS_MIN, MAS_MAX)) for f in fall)


def _result(
    dose: TrialDose, rule: ResponseRule, patient: Patients | None = None
) -> ScreeningResult:
    return classify_response(dose.dose_ug, dose.baseline_mas, dose.scores, patient, rule)


def compare_with_model(
    dose: TrialDose, patient: Patients | None = None, rule: ResponseRule = ResponseRule()
) -> Comparison:
    result = _result(dose, rule, patient if patient is not None else typical_patient())
    rows = tuple(
        ComparisonRow(s.t_h, s.mas, p)
        for s, p in zip(dose.scores, result.predicted_mas, strict=True)
    )
    worst = max(rows, key=lambda r: abs(r.difference_mas))
    who = "a typical patient" if patient is None else "this patient's model"
    reason = (
        f"observed against {who} after {dose.dose_ug:g} µg from baseline {dose.baseline_mas:g}: "
        f"RMS difference {result.rms_error_mas:.2f} MAS points; largest at {worst.hour_h:g} h "
        f"({worst.difference_mas:+.2f}: {'more' if worst.difference_mas > 0 else 'less'} tone "
        "than predicted). The model is not fitted to this patient (docs/pharmacology.md)"
    )
    return Comparison(dose.dose_ug, dose.baseline_mas, rows, result.rms_error_mas, reason)


# The classification ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Classification:
    dose_ug: float
    positive: bool
    max_fall_mas: float
    min_fall_mas: float  # the rule used
    # hours from the bolus to the last score at or above the response fall (0 if none) [R]
    effect_lasted_h: float
    still_responding_at_last_score: bool
    reason: str


def classify(dose: TrialDose, rule: ResponseRule = ResponseRule()) -> Classification:
    result = _result(dose, rule)
    hits = [s.t_h for s in dose.scores if dose.baseline_mas - s.mas >= rule.min_fall_mas]
    lasted_h = hits[-1] if hits else 0.0
    still = bool(hits) and hits[-1] == dose.last_score_h
    reason = result.reason
    if result.positive:
        reason += f"; response seen up to {lasted_h:g} h after the bolus" + (
            " (still present at the last score)" if still else ""
        )
    return Classification(
        dose.dose_ug,
        result.positive,
        result.max_fall_mas,
        rule.min_fall_mas,
        lasted_h,
        still,
        reason,
    )


# The decision -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Decision:
    action: ScreeningAction
    next_dose_ug: float | None
    after_h: float | None  # hours after the current bolus
    not_before: datetime | None  # when the current bolus time is known
    first_daily_dose_ug: float | None  # candidates only (S46)
    reason: str


def _as_result(d: EarlierDose) -> ScreeningResult:
    return ScreeningResult(d.dose_ug, d.positive, math.nan, 0.0, (), math.nan, "recorded")


def decide(trial: ScreeningTrial, rule: ResponseRule = ResponseRule()) -> Decision:
    current = classify(trial.current, rule)
    earlier = [_as_result(d) for d in open_trial(trial.earlier)]
    label_next = next_screening_step(earlier)
    note = ""
    if label_next.next_dose_ug is not None and label_next.next_dose_ug != trial.current.dose_ug:
        note = f" (the label's sequence gave {label_next.next_dose_ug:g} µg for this dose)"
    now_result = ScreeningResult(
        current.dose_ug, current.positive, current.max_fall_mas, 0.0, (), math.nan, current.reason
    )
    step = next_screening_step([*earlier, now_result])
    if step.action is ScreeningAction.CANDIDATE:
        advice: FirstDoseAdvice = first_pump_dose(trial.current.dose_ug, current.effect_lasted_h)
        extra = ""
        if current.still_responding_at_last_score and current.effect_lasted_h <= LONG_EFFECT_H:
            extra = (
                f"; the response was still present at the last score ({current.effect_lasted_h:g}"
                f" h): if it lasts more than {LONG_EFFECT_H:g} h, the label starts the pump at"
                f" the same dose ({trial.current.dose_ug:g} µg/day, S46); score later hours to tell"
            )
        return Decision(
            step.action,
            None,
            None,
            None,
            advice.daily_dose_ug,
            f"response to {trial.current.dose_ug:g} µg{note}: candidate for a pump (S45 S46); "
            f"{current.reason}; first pump dose: {advice.reason}{extra}",
        )
    if step.action is ScreeningAction.NOT_CANDIDATE:
        return Decision(
            step.action,
            None,
            None,
            None,
            None,
            f"no response to {trial.current.dose_ug:g} µg{note}, the highest screening dose: "
            f"not a candidate for a pump (S45 S46); {current.reason}",
        )
    assert step.next_dose_ug is not None
    not_before = (
        trial.current.given_at + timedelta(hours=MIN_INTERVAL_H)
        if trial.current.given_at is not None
        else None
    )
    when = f"not before {not_before:%Y-%m-%d %H:%M}" if not_before else "once the day is over"
    return Decision(
        step.action,
        step.next_dose_ug,
        MIN_INTERVAL_H,
        not_before,
        None,
        f"no response to {trial.current.dose_ug:g} µg{note}: give {step.next_dose_ug:g} µg "
        f"{MIN_INTERVAL_H:g} h after this bolus, {when} (S45 S46); {current.reason}",
    )


# Everything at once -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Assessment:
    comparison: Comparison
    classification: Classification
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        c, k, d = self.comparison, self.classification, self.decision
        return {
            "dose_ug": c.dose_ug,
            "baseline_mas": c.baseline_mas,
            "comparison": {
                "rows": [
                    {
                        "hour": r.hour_h,
                        "observed_mas": r.observed_mas,
                        "predicted_mas": round(r.predicted_mas, 3),
                    }
                    for r in c.rows
                ],
                "rms_error_mas": round(c.rms_error_mas, 3),
                "reason": c.reason,
            },
            "classification": {
                "positive": k.positive,
                "max_fall_mas": round(k.max_fall_mas, 3),
                "min_fall_mas": k.min_fall_mas,
                "effect_lasted_h": k.effect_lasted_h,
                "still_responding_at_last_score": k.still_responding_at_last_score,
                "reason": k.reason,
            },
            "decision": {
                "action": d.action.value,
                "next_dose_ug": d.next_dose_ug,
                "after_h": d.after_h,
                "not_before": d.not_before.isoformat() if d.not_before else None,
                "first_daily_dose_ug": d.first_daily_dose_ug,
                "reason": d.reason,
            },
        }


def assess(
    trial: ScreeningTrial, rule: ResponseRule = ResponseRule(), patient: Patients | None = None
) -> Assessment:
    """Comparison, classification and decision for the trial's current dose."""
    return Assessment(
        compare_with_model(trial.current, patient, rule),
        classify(trial.current, rule),
        decide(trial, rule),
    )
