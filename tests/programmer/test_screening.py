"""The screening trial as a value (itb.programmer.screening): comparison, result, decision."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.programmer.screening import (
    EarlierDose,
    Observation,
    ResponseRule,
    ScreeningAction,
    ScreeningInputError,
    ScreeningTrial,
    TrialDose,
    assess,
    dose_from_hourly_scores,
    open_trial,
)

T0 = datetime(2027, 1, 4, 8, 0)
POSITIVE = {0: 3, 1: 3, 2: 2, 3: 2, 4: 1, 5: 1, 6: 2, 7: 2, 8: 3}
NO_RESPONSE = {0: 3, 1: 3, 2: 2.5, 3: 2.5, 4: 2.5, 5: 3, 6: 3, 7: 3, 8: 3}


def test_a_response_gives_a_candidate_at_twice_the_dose() -> None:
    result = assess(ScreeningTrial(dose_from_hourly_scores(50, POSITIVE, T0)))
    # baseline 3, lowest 1: fall 2.0; fall >= 1 from 2 h to 7 h: lasted 7 h, so 2 × 50 (S46)
    assert result.classification.positive and result.classification.max_fall_mas == 2.0
    assert result.classification.effect_lasted_h == 7.0
    assert result.decision.action is ScreeningAction.CANDIDATE
    assert result.decision.first_daily_dose_ug == 100.0
    assert [r.observed_mas for r in result.comparison.rows] == [3, 2, 2, 1, 1, 2, 2, 3]


def test_an_effect_lasting_more_than_8_hours_starts_at_the_same_dose() -> None:
    # still a fall of 1.0 at 10 h after the bolus: lasted more than 8 h, so 1 × 75 (S46)
    scores = (Observation(2, 2), Observation(4, 1), Observation(8, 2), Observation(10, 2))
    result = assess(ScreeningTrial(TrialDose(75, 3, scores, T0)))
    assert result.decision.first_daily_dose_ug == 75.0
    assert "more than 8 h: start at the same dose, 75 µg/day" in result.decision.reason


def test_a_response_still_present_at_8_h_says_later_hours_would_tell() -> None:
    scores = {**POSITIVE, 8: 2}  # fall 1.0 at the last score
    result = assess(ScreeningTrial(dose_from_hourly_scores(50, scores, T0)))
    assert result.decision.first_daily_dose_ug == 100.0  # 8 h is not more than 8 h
    assert result.classification.still_responding_at_last_score
    assert "score later hours to tell" in result.decision.reason


def test_the_response_rule_is_a_setting() -> None:
    dose = dose_from_hourly_scores(50, NO_RESPONSE, T0)  # largest fall 0.5
    assert not assess(ScreeningTrial(dose)).classification.positive
    lenient = assess(ScreeningTrial(dose), ResponseRule(min_fall_mas=0.5))
    assert lenient.classification.positive and lenient.classification.min_fall_mas == 0.5


def test_no_response_gives_the_next_dose_a_day_later_then_not_a_candidate() -> None:
    r50 = assess(ScreeningTrial(dose_from_hourly_scores(50, NO_RESPONSE, T0)))
    assert (r50.decision.next_dose_ug, r50.decision.after_h) == (75.0, 24.0)
    assert r50.decision.not_before == T0 + timedelta(hours=24)
    earlier: tuple[EarlierDose, ...] = (EarlierDose(50, False, T0),)
    t1 = T0 + timedelta(hours=24)
    r75 = assess(ScreeningTrial(dose_from_hourly_scores(75, NO_RESPONSE, t1), earlier))
    assert r75.decision.next_dose_ug == 100.0
    earlier += (EarlierDose(75, False, t1),)
    t2 = t1 + timedelta(hours=30)
    r100 = assess(ScreeningTrial(dose_from_hourly_scores(100, NO_RESPONSE, t2), earlier))
    assert r100.decision.action is ScreeningAction.NOT_CANDIDATE
    assert r100.decision.first_daily_dose_ug is None


def test_the_model_comparison_uses_the_typical_patient_at_the_same_hours() -> None:
    result = assess(ScreeningTrial(dose_from_hourly_scores(50, NO_RESPONSE, T0)))
    # typical 50 µg: fall >= 1 from 0.93 h to about 9.3 h (docs/pharmacology.md)
    assert all(r.predicted_mas <= 2.0 for r in result.comparison.rows)
    assert result.comparison.rms_error_mas > 1.0  # this patient barely responded
    assert "RMS difference" in result.comparison.reason


def test_a_second_dose_within_24_h_is_refused() -> None:
    dose = dose_from_hourly_scores(75, NO_RESPONSE, T0 + timedelta(hours=23))
    with pytest.raises(ScreeningInputError, match=r"23\.0 h after the previous one") as err:
        ScreeningTrial(dose, (EarlierDose(50, False, T0),))
    assert err.value.field == "given_at"


@pytest.mark.parametrize(
    ("dose_ug", "scores", "field", "words"),
    [
        (60, POSITIVE, "dose_ug", "allowed 25, 50, 75 or 100 µg"),
        (50, {**POSITIVE, 3: 5.5}, "scores[3]", "allowed 0 to 5"),
        (50, {**POSITIVE, 0: -1}, "scores[0]", "allowed 0 to 5"),
        (50, {**POSITIVE, 9: 2}, "scores", "whole hours 0 to 8"),
        (50, {0: 3, 1: 2, 2: 2, 3: 2}, "scores", "at least 4"),
        (50, {1: 2, 2: 2, 3: 2, 4: 2}, "scores", "hour 0"),
    ],
)
def test_bad_input_names_the_field_and_the_allowed_range(
    dose_ug: float, scores: dict[int, float], field: str, words: str
) -> None:
    with pytest.raises(ScreeningInputError, match=words) as err:
        dose_from_hourly_scores(dose_ug, scores, T0)
    assert err.value.field == field


def test_a_score_after_24_h_belongs_to_no_dose() -> None:
    scores = tuple(Observation(h, 2) for h in (2, 4, 6, 25))
    with pytest.raises(ScreeningInputError, match="up to 24 h after the bolus"):
        TrialDose(50, 3, scores)


def test_a_new_trial_starts_after_one_that_ended() -> None:
    history = (EarlierDose(50, True), EarlierDose(50, False))
    assert open_trial(history) == (EarlierDose(50, False),)
    # a response to 50 µg ended an earlier trial; no response to 50 µg now, then to 75 µg: 100 next
    dose = dose_from_hourly_scores(75, NO_RESPONSE)
    result = assess(ScreeningTrial(dose, history))
    assert result.decision.next_dose_ug == 100.0 and "label" not in result.decision.reason
    skipped = assess(ScreeningTrial(dose_from_hourly_scores(100, NO_RESPONSE), history[:1]))
    assert "the label's sequence gave 50 µg" in skipped.decision.reason
