from __future__ import annotations

import numpy as np
import pytest

from itb.pharmacology.model import ParameterError, Patients, typical_patient
from itb.pharmacology.population import (
    N_NORMALS,
    Variability,
    draw_patients,
    patients_from_normals,
)


def test_same_seed_same_population_and_different_seed_differs() -> None:
    a = draw_patients(np.random.default_rng(5), 50)
    b = draw_patients(np.random.default_rng(5), 50)
    c = draw_patients(np.random.default_rng(6), 50)
    np.testing.assert_array_equal(a.cl_tip_ml_per_h, b.cl_tip_ml_per_h)
    assert not np.array_equal(a.cl_tip_ml_per_h, c.cl_tip_ml_per_h)


def test_medians_sit_on_the_typical_patient_and_spread_matches_omega() -> None:
    patients = draw_patients(np.random.default_rng(11), 20000)
    typical = typical_patient()
    assert np.median(patients.ke0_per_h) == pytest.approx(typical.ke0_per_h[0], rel=0.03)
    assert np.median(patients.apparent_clearance_ml_per_h) == pytest.approx(
        typical.apparent_clearance_ml_per_h[0], rel=0.03
    )
    assert np.std(np.log(patients.cl_tip_ml_per_h)) == pytest.approx(0.6, rel=0.03)


def test_gradient_along_the_spine_is_kept_for_every_patient() -> None:
    p = draw_patients(np.random.default_rng(1), 100)
    np.testing.assert_allclose(p.q_ml_per_h / (p.q_ml_per_h + p.cl_rest_ml_per_h), 0.43)


def test_no_variability_gives_the_typical_patient() -> None:
    p = draw_patients(np.random.default_rng(1), 3, Variability(0, 0, 0, 0, 0, 0))
    np.testing.assert_allclose(p.v_tip_ml, typical_patient().v_tip_ml[0])


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ParameterError, match="n=0"):
        draw_patients(np.random.default_rng(1), 0)
    with pytest.raises(ParameterError, match=r"variability\.clearance"):
        Variability(clearance=-1.0)
    t = typical_patient()
    with pytest.raises(ParameterError, match="v_tip_ml"):
        Patients(**{**{f: getattr(t, f) for f in t.__dataclass_fields__}, "v_tip_ml": [np.nan]})


def test_draws_are_the_map_of_one_block_of_standard_normals() -> None:
    # The per-patient fit works in this space: the same normals give the same patients.
    drawn = draw_patients(np.random.default_rng(9), 40)
    z = np.random.default_rng(9).standard_normal((N_NORMALS, 40))
    mapped = patients_from_normals(z)
    for name in Patients.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(drawn, name), getattr(mapped, name))
    typical = patients_from_normals(np.zeros((N_NORMALS, 1)))
    for name in Patients.__dataclass_fields__:
        np.testing.assert_allclose(getattr(typical, name), getattr(typical_patient(), name))


def test_wrong_normals_are_refused_naming_z() -> None:
    with pytest.raises(ParameterError, match="z of shape"):
        patients_from_normals(np.zeros((N_NORMALS - 1, 3)))
    with pytest.raises(ParameterError, match="z of shape"):
        patients_from_normals(np.full((N_NORMALS, 2), np.nan))
