"""The model's time course against the label (S45), the seed and the published PK (S60, S64)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from itb.pharmacology.bolus import BolusCourse, bolus_course
from itb.pharmacology.model import (
    RESPONSE_THRESHOLD_MAS,
    Patients,
    ce_for_effect,
    typical_patient,
)
from itb.pharmacology.population import draw_patients
from tests.pharmacology.reference import rhs_factory


@pytest.fixture(scope="module")
def population_course() -> tuple[Patients, BolusCourse]:
    patients = draw_patients(np.random.default_rng(2027), 1000)
    return patients, bolus_course(patients, 50.0, step_h=0.05)


def test_typical_50ug_bolus_meets_label_and_seed() -> None:
    course = bolus_course(typical_patient(), 50.0)
    assert course.onset_h[0] < 1.0  # label: 30 to 60 min; seed: within 60 min
    assert 3.5 <= course.peak_h[0] <= 5.0  # label 4 to 6 h, seed about 4 h
    assert 7.0 <= course.duration_h[0] <= 9.0  # label 4 to 8 h meets seed 8 to 12 h


def test_typical_bolus_crossings_agree_with_solve_ivp_events() -> None:
    # Independent check of onset and offset: solve_ivp with events on Ce = threshold.
    patient = typical_patient()
    ce_thr = float(ce_for_effect(RESPONSE_THRESHOLD_MAS, patient)[0])
    rhs = rhs_factory(patient, 0, 0.0)

    def crossing(_t, x):  # type: ignore[no-untyped-def]
        return x[2] - ce_thr

    sol = solve_ivp(rhs, (0.0, 48.0), [50.0, 0.0, 0.0], events=crossing, rtol=1e-10, atol=1e-13)
    onset_ref, offset_ref = sol.t_events[0]
    course = bolus_course(patient, 50.0)
    assert course.onset_h[0] == pytest.approx(onset_ref, abs=1e-3)
    assert course.offset_h[0] == pytest.approx(offset_ref, abs=1e-3)
    assert course.duration_h[0] == pytest.approx(offset_ref - onset_ref, abs=2e-3)


def test_bolus_is_essentially_gone_by_the_next_day() -> None:
    course = bolus_course(typical_patient(), 50.0)
    at_24h = np.searchsorted(course.t_h, 24.0)
    # Seed: "gone by the next day". What remains is under a quarter of the smallest MAS step
    # (whole points, S75): no clinician can score it.
    assert course.effect_mas[0, at_24h] < 0.25
    assert course.csf_ug_per_ml[0, at_24h] < 0.01 * course.csf_ug_per_ml[0].max()


def test_population_duration_spans_both_sources(
    population_course: tuple[Patients, BolusCourse],
) -> None:
    _, course = population_course
    p10, p90 = np.percentile(course.duration_h, [10, 90])
    assert p10 <= 5.0  # covers the label's 4 to 8 h
    assert p90 >= 11.0  # covers the seed's 8 to 12 h


def test_population_half_life_and_clearance_cover_published_ranges(
    population_course: tuple[Patients, BolusCourse],
) -> None:
    patients, _ = population_course
    t5, t95 = np.percentile(patients.csf_half_life_h, [5, 95])
    cl5, cl95 = np.percentile(patients.apparent_clearance_ml_per_h, [5, 95])
    assert t5 <= 0.9 and t95 >= 5.0  # S60
    assert cl5 <= 13.0 and cl95 >= 80.0  # S60


def test_apparent_clearance_is_dose_over_auc() -> None:
    # Dose / AUC of the tip concentration, by quadrature, is the clearance the model reports.
    patient = typical_patient()
    course = bolus_course(patient, 50.0, horizon_h=96.0, step_h=0.005)
    auc = np.trapezoid(course.csf_ug_per_ml[0], course.t_h)
    assert 50.0 / auc == pytest.approx(patient.apparent_clearance_ml_per_h[0], rel=1e-3)


def test_bigger_screening_doses_act_longer_and_stronger() -> None:
    patient = typical_patient()
    courses = [bolus_course(patient, d) for d in (50.0, 75.0, 100.0)]
    durations = [c.duration_h[0] for c in courses]
    peaks = [c.peak_effect_mas[0] for c in courses]
    assert durations == sorted(durations) and len(set(durations)) == 3
    assert peaks == sorted(peaks)
