"""Withdrawal over days: the syndrome's grades after delivery stops or falls (S98 S54 S55)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from itb.errors import InputError
from itb.pharmacology.exact import Piece, Propagator
from itb.pharmacology.model import effect_mas, typical_patient
from itb.pharmacology.population import draw_patients
from itb.pharmacology.withdrawal import withdrawal_risk_time_h
from itb.pharmacology.withdrawal_course import (
    EARLY_SIGNS_SEVERITY,
    SIGNS_TIME_CONSTANT_H,
    severity_course,
    withdrawal_outlook,
)
from tests.pharmacology.reference import rhs_factory

RATE_600 = 600.0 / 24.0


def test_after_a_stop_signs_come_after_the_effect_is_lost_and_severe_signs_later() -> None:
    patient = typical_patient()
    outlook = withdrawal_outlook(patient, RATE_600)
    lost_h = withdrawal_risk_time_h(patient, Propagator(patient).steady_state(RATE_600), RATE_600)
    assert lost_h[0] < outlook.signs_from_h[0] < outlook.severe_from_h[0]
    # the syndrome evolves over 1 to 3 days (Coffey 2002, S98): severe signs on day 2 or 3
    assert 24.0 <= outlook.severe_from_h[0] <= 72.0


def test_a_small_cut_gives_no_signs_and_a_deep_cut_no_severe_signs() -> None:
    patient = typical_patient()
    halved = withdrawal_outlook(patient, RATE_600, new_rate_ug_per_h=RATE_600 / 2)
    assert np.isinf(halved.signs_from_h[0]) and np.isinf(halved.severe_from_h[0])
    cut = withdrawal_outlook(patient, RATE_600, new_rate_ug_per_h=RATE_600 / 12)
    assert np.isfinite(cut.signs_from_h[0]) and np.isinf(cut.severe_from_h[0])
    stop = withdrawal_outlook(patient, RATE_600)
    assert stop.signs_from_h[0] < cut.signs_from_h[0]


def test_every_patient_of_a_population_gets_an_outlook() -> None:
    patients = draw_patients(np.random.default_rng(3), 200)
    outlook = withdrawal_outlook(patients, RATE_600)
    assert np.all(np.isfinite(outlook.signs_from_h))
    assert np.all(outlook.signs_from_h < outlook.severe_from_h)
    one = withdrawal_outlook(patients.take(7), RATE_600)
    assert one.signs_from_h[0] == pytest.approx(outlook.signs_from_h[7])


def test_severity_agrees_with_solve_ivp_on_the_model_written_out() -> None:
    # Independent check: the states and the severity as one ODE, solved by DOP853.
    patient = typical_patient()
    pk = rhs_factory(patient, 0, 0.0)  # delivery stopped for 12 h, then resumed at 600 µg/day
    resumed = rhs_factory(patient, 0, RATE_600)
    maintenance = float(effect_mas(patient.steady_state_csf_ug_per_ml(RATE_600), patient)[0])

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        dx = (pk if t < 12.0 else resumed)(t, y[:3])
        ce = np.array([[y[2]]])
        drive = min(max(1.0 - float(effect_mas(ce, patient)[0, 0]) / maintenance, 0.0), 1.0)
        return np.append(dx, (drive - y[3]) / SIGNS_TIME_CONSTANT_H)

    y0 = np.append(Propagator(patient).steady_state(RATE_600)[0], 0.0)
    t = np.linspace(0.0, 48.0, 481)
    first = solve_ivp(rhs, (0.0, 12.0), y0, t_eval=t[t <= 12.0], rtol=1e-10, atol=1e-12)
    second = solve_ivp(
        rhs, (12.0, 48.0), first.y[:, -1], t_eval=t[t > 12.0], rtol=1e-10, atol=1e-12
    )
    reference = np.concatenate((first.y[3], second.y[3]))
    course = severity_course(patient, [Piece(12.0, 48.0, RATE_600)], RATE_600, t)
    assert np.max(np.abs(course.severity[0] - reference)) < 1e-3
    # a 12 h stop, then delivery again: the syndrome starts, never turns severe, and settles
    _signs_h, severe_h = course.hours_at_grade()
    assert severe_h[0] == 0.0
    assert course.severity[0].max() > 0.1
    assert course.severity[0, -1] < EARLY_SIGNS_SEVERITY


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_h": 0.5}, "horizon_h"),
        ({"new_rate_ug_per_h": -1.0}, "new_rate_ug_per_h"),
        ({"maintenance_rate_ug_per_h": float("nan")}, "maintenance_rate_ug_per_h"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, float], field: str) -> None:
    args: dict[str, float] = {"maintenance_rate_ug_per_h": RATE_600, **kwargs}
    with pytest.raises(InputError) as caught:
        withdrawal_outlook(typical_patient(), **args)  # type: ignore[arg-type]
    assert caught.value.field == field
