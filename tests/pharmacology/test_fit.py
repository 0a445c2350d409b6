"""Each patient's own model: synthetic patients drawn from the population with measurement noise,
fitted from their screening trial, against the truth they were drawn with."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from itb.pharmacology.bolus import bolus_course
from itb.pharmacology.fit import (
    FitError,
    MasScore,
    PatientFit,
    SteadyScore,
    TrialData,
    TrialDay,
    fit_from_dict,
    fit_patient,
    fit_to_dict,
    patients_at,
    predicted_scores,
    trial_data,
)
from itb.pharmacology.model import Patients, typical_patient
from itb.pharmacology.population import MAS_MAX, N_NORMALS, draw_patients
from itb.pharmacology.prediction import (
    Dosing,
    positive_screening_dose,
    predict_response,
    starting_dose,
)
from itb.pharmacology.synthetic import screening_days, steady_scores
from itb.pharmacology.titration import first_pump_dose

N_PATIENTS = 80
FOLLOW_UP_DOSES_UG = (200.0, 400.0, 600.0, 800.0)


def _synthetic(seed: int) -> tuple[FloatZ, Patients, list[TrialDay]]:
    rng = np.random.default_rng([7, seed])
    z = rng.standard_normal(N_NORMALS)
    patient = patients_at(z[None, :])
    return z, patient, screening_days(patient, rng)


FloatZ = np.ndarray


@pytest.fixture(scope="module")
def fitted() -> list[tuple[Patients, list[TrialDay], PatientFit]]:
    out = []
    for seed in range(N_PATIENTS):
        _, patient, days = _synthetic(seed)
        out.append((patient, days, fit_patient(trial_data(days))))
    return out


def test_the_fit_varies_exactly_what_the_population_varies() -> None:
    # the population's own map: the same normals give the same patients as draw_patients
    rng = np.random.default_rng(3)
    z = np.random.default_rng(3).standard_normal((N_NORMALS, 5))
    drawn = draw_patients(rng, 5)
    mapped = patients_at(z.T)
    assert np.allclose(drawn.ec50_ug_per_ml, mapped.ec50_ug_per_ml)
    assert np.allclose(drawn.cl_tip_ml_per_h, mapped.cl_tip_ml_per_h)
    # and z = 0 is the typical patient
    assert np.allclose(patients_at(np.zeros((1, N_NORMALS))).v_tip_ml, typical_patient().v_tip_ml)


def test_without_scores_the_fit_is_the_typical_patient_with_the_population_spread() -> None:
    fit = fit_patient(TrialData(boluses=()))
    assert fit.typical
    assert np.allclose(fit.patient().cl_tip_ml_per_h, typical_patient().cl_tip_ml_per_h)
    assert np.allclose(fit.z_cov, np.eye(N_NORMALS))


def test_fitted_clearance_is_closer_to_the_truth_than_the_typical_patient(
    fitted: list[tuple[Patients, list[TrialDay], PatientFit]],
) -> None:
    truth = np.array([p.apparent_clearance_ml_per_h[0] for p, _, _ in fitted])
    fit = np.array([f.patient().apparent_clearance_ml_per_h[0] for _, _, f in fitted])
    typical = typical_patient().apparent_clearance_ml_per_h[0]
    fit_error = np.median(np.abs(np.log(fit / truth)))
    prior_error = np.median(np.abs(np.log(typical / truth)))
    # learnt from the trial: closer than the prior, and ranked with the truth
    assert fit_error < 0.85 * prior_error, (fit_error, prior_error)
    assert np.corrcoef(np.log(fit), np.log(truth))[0, 1] > 0.5


def test_the_fit_tracks_each_patients_baseline_spasticity(
    fitted: list[tuple[Patients, list[TrialDay], PatientFit]],
) -> None:
    truth = np.array([p.baseline_mas[0] for p, _, _ in fitted])
    fit = np.array([f.patient().baseline_mas[0] for _, _, f in fitted])
    typical = typical_patient().baseline_mas[0]
    assert np.median(np.abs(fit - truth)) < 0.7 * np.median(np.abs(typical - truth))


def test_80_percent_intervals_cover_about_80_percent_of_held_out_follow_up_scores(
    fitted: list[tuple[Patients, list[TrialDay], PatientFit]],
) -> None:
    """Randomised PIT: a score at the scale's end (0 or 5) is an atom, placed at random in it."""
    rng = np.random.default_rng(11)
    inside = total = 0
    for patient, _, fit in fitted:
        held = TrialData(steady_scores=steady_scores(patient, FOLLOW_UP_DOSES_UG, rng))
        lines = predicted_scores(fit.sample(rng, 400), held)
        for j, score in enumerate(held.steady_scores):
            cdf = float(np.mean(ndtr((score.mas - lines[:, j]) / fit.residual_sd_mas)))
            below = 0.0 if score.mas <= 0.0 else cdf
            upto = 1.0 if score.mas >= MAS_MAX else cdf
            pit = below + rng.uniform() * (upto - below)
            inside += int(0.1 <= pit <= 0.9)
            total += 1
    # 320 scores: 80% ± about 3 binomial standard errors (bench/bench_pk_fit.py: 1,000 trials)
    assert 0.72 <= inside / total <= 0.88, inside / total


def test_follow_up_scores_sharpen_the_model_on_the_followed_dose(
    fitted: list[tuple[Patients, list[TrialDay], PatientFit]],
) -> None:
    """Refit with three scores settled on 400 µg/day: the model's MAS there is closer to the
    truth (root mean square over patients) and less uncertain (median: one refit can move to a
    steeper place)."""
    at_400 = TrialData(steady_scores=(SteadyScore(400.0, 0.0),))
    rng = np.random.default_rng(5)

    def spread(fit: PatientFit) -> float:
        """SD of the settled MAS at 400 µg/day over the posterior (no measurement error)."""
        return float(np.std(predicted_scores(fit.sample(np.random.default_rng(1), 1000), at_400)))

    ratios, before, after = [], [], []
    for patient, days, trial_only in fitted:
        refit = fit_patient(trial_data(days, steady_scores(patient, (400.0,) * 3, rng)))
        assert refit.n_scores == trial_only.n_scores + 3
        truth = predicted_scores(patient, at_400)[0, 0]
        before.append(abs(predicted_scores(trial_only.patient(), at_400)[0, 0] - truth))
        after.append(abs(predicted_scores(refit.patient(), at_400)[0, 0] - truth))
        ratios.append(spread(refit) / spread(trial_only))
    assert np.median(ratios) < 1.0
    assert np.sqrt(np.mean(np.square(after))) < np.sqrt(np.mean(np.square(before)))


def test_the_band_holds_the_most_probable_line_and_stays_on_the_scale() -> None:
    _, _, days = _synthetic(2)
    fit = fit_patient(trial_data(days))
    times = np.arange(0.0, 24.0, 1.0)
    band = predict_response(
        fit, Dosing(initial_rate_ug_per_h=300.0 / 24.0), times, np.random.default_rng(0)
    )
    assert not band.typical and band.level == 0.8
    assert np.all(band.low_mas <= band.mas + 1e-9) and np.all(band.mas <= band.high_mas + 1e-9)
    assert np.all(band.low_mas >= 0.0) and np.all(band.high_mas <= MAS_MAX)


def test_the_starting_dose_is_the_label_rule_applied_to_the_patients_own_model() -> None:
    _, _, days = _synthetic(1)
    fit = fit_patient(trial_data(days))
    dose = positive_screening_dose(days)
    assert dose is not None
    start = starting_dose(fit, dose, np.random.default_rng(0))
    duration = bolus_course(fit.patient(), dose).duration_h[0]
    assert start.effect_duration_h == pytest.approx(duration)
    assert start.daily_dose_ug == first_pump_dose(dose, duration).daily_dose_ug
    assert start.low_daily_dose_ug <= start.daily_dose_ug <= start.high_daily_dose_ug
    assert "S46" in start.reason


def test_no_response_to_any_dose_gives_no_screening_dose() -> None:
    flat = {h: 3.0 for h in range(9)}
    days = [TrialDay(50.0, flat), TrialDay(75.0, flat), TrialDay(100.0, flat)]
    assert positive_screening_dose(days) is None


def test_a_fit_survives_its_json_form_and_a_changed_one_is_refused() -> None:
    _, _, days = _synthetic(4)
    fit = fit_patient(trial_data(days))
    data = fit_to_dict(fit, np.random.default_rng(0))
    back = fit_from_dict(data)
    assert np.allclose(back.z_map, fit.z_map) and back.n_scores == fit.n_scores
    data["parameters"]["ec50_ug_per_ml"]["map"] *= 1.5  # as if the model had changed since
    with pytest.raises(FitError, match="another version of the model"):
        fit_from_dict(data)
    with pytest.raises(FitError, match="z_cov"):
        fit_from_dict({**fit_to_dict(fit, np.random.default_rng(0)), "z_cov": [[1.0]]})


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: MasScore(1.0, 6.0), "mas"),
        (lambda: MasScore(math.nan, 2.0), "t_h"),
        (lambda: SteadyScore(-1.0, 2.0), "daily_dose_ug"),
        (
            lambda: fit_patient(TrialData(scores=(MasScore(0.0, 2.0),)), residual_sd_mas=0.0),
            "residual_sd_mas",
        ),
    ],
)
def test_bad_data_is_refused_naming_the_field(make: object, field: str) -> None:
    with pytest.raises(FitError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.field == field
