from __future__ import annotations

import pytest

from itb.pharmacology.bolus import bolus_course
from itb.pharmacology.model import ParameterError, predicted_mas, typical_patient
from itb.pharmacology.screening import (
    HOURLY_FOR_8H,
    Observation,
    ResponseRule,
    ScreeningAction,
    classify_response,
    next_screening_step,
)


def hourly(scores: list[float]) -> list[Observation]:
    return [Observation(t, s) for t, s in zip(HOURLY_FOR_8H, scores, strict=True)]


def test_a_fall_of_one_point_is_a_response_and_less_is_not() -> None:
    yes = classify_response(50.0, 3.0, hourly([3, 2.5, 2, 2, 2, 2, 2.5, 3]))
    no = classify_response(50.0, 3.0, hourly([3, 2.5, 2.2, 2.1, 2.2, 2.5, 3, 3]))
    assert yes.positive and yes.max_fall_mas == 1.0 and yes.effect_duration_h == 3.0
    assert not no.positive and "no response" in no.reason


def test_the_rule_is_a_setting() -> None:
    obs = hourly([3, 2.5, 2.2, 2.1, 2.2, 2.5, 3, 3])
    assert classify_response(50.0, 3.0, obs, rule=ResponseRule(min_fall_mas=0.8)).positive


def test_model_prediction_is_compared_with_the_observations() -> None:
    patient = typical_patient()
    course = bolus_course(patient, 50.0)
    mas = predicted_mas(course.effect_mas, patient)[0]
    # a patient who behaves exactly like the model: observed = predicted at each hour
    exact = [float(mas[round(t * 60)]) for t in HOURLY_FOR_8H]
    result = classify_response(50.0, 3.0, hourly(exact), patient=patient)
    assert result.rms_error_mas == pytest.approx(0.0, abs=1e-6)
    off = classify_response(50.0, 3.0, hourly([3.0] * 8), patient=patient)
    assert off.rms_error_mas > 0.5 and not off.positive


def test_label_sequence_50_75_100_then_not_a_candidate() -> None:
    no = [3.0] * 8
    assert next_screening_step([]).next_dose_ug == 50.0
    r50 = classify_response(50.0, 3.0, hourly(no))
    step = next_screening_step([r50])
    assert step.action is ScreeningAction.NEXT_DOSE and step.next_dose_ug == 75.0
    assert step.after_h == 24.0
    r75 = classify_response(75.0, 3.0, hourly(no))
    assert next_screening_step([r50, r75]).next_dose_ug == 100.0
    r100 = classify_response(100.0, 3.0, hourly(no))
    assert next_screening_step([r50, r75, r100]).action is ScreeningAction.NOT_CANDIDATE
    r75_yes = classify_response(75.0, 3.0, hourly([3, 2, 1.5, 1.5, 2, 2, 2.5, 3]))
    assert next_screening_step([r50, r75_yes]).action is ScreeningAction.CANDIDATE


def test_bad_scores_name_the_field() -> None:
    with pytest.raises(ParameterError, match="mas"):
        Observation(1.0, 6.0)
    with pytest.raises(ParameterError, match="t_h"):
        Observation(-1.0, 2.0)
    with pytest.raises(ParameterError, match="baseline_mas"):
        classify_response(50.0, -1.0, hourly([3.0] * 8))
