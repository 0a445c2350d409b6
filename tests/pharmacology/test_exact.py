"""The exact solution against SciPy's solve_ivp on random programs and boluses."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.pharmacology.exact import Bolus, DosingError, Piece, pieces_from_segments, predict
from itb.pharmacology.population import draw_patients
from itb.therapy import FlexStep, flex, rate_segments, to_pump_s
from tests.pharmacology.reference import reference_states

pieces_strategy = st.lists(
    st.tuples(st.floats(0.05, 12.0), st.one_of(st.just(0.0), st.floats(0.01, 80.0))),
    min_size=1,
    max_size=8,
)
bolus_strategy = st.lists(st.tuples(st.floats(0.0, 40.0), st.floats(1.0, 100.0)), max_size=3)


def contiguous(spec: list[tuple[float, float]]) -> list[Piece]:
    out, t = [], 0.0
    for duration_h, rate in spec:
        out.append(Piece(t, t + duration_h, rate))
        t += duration_h
    return out


@settings(max_examples=40)
@given(pieces_strategy, bolus_strategy, st.integers(0, 2**32 - 1))
def test_random_programs_and_boluses_match_solve_ivp(
    pieces_spec: list[tuple[float, float]], bolus_spec: list[tuple[float, float]], seed: int
) -> None:
    patients = draw_patients(np.random.default_rng(seed), 2)
    pieces = contiguous(pieces_spec)
    boluses = [Bolus(t, d) for t, d in bolus_spec]
    end = max(pieces[-1].end_h, *(b.t_h for b in boluses), 1.0) + 6.0
    times = sorted({round(x, 6) for x in np.linspace(0.0, end, 13)})
    exact = predict(patients, pieces, boluses, times, t0_h=0.0)
    for i in range(patients.n):
        ref = reference_states(patients, i, pieces, boluses, times)
        scale = np.max(np.abs(ref), axis=0) + 1e-12
        np.testing.assert_allclose(exact[i] / scale, ref / scale, rtol=0, atol=1e-7)


def test_a_pump_flex_program_week_matches_solve_ivp() -> None:
    program = flex([FlexStep(0, 20.0), FlexStep(7 * 60, 35.0), FlexStep(22 * 60 + 30, 10.0)])
    start, end = datetime(2027, 1, 4, 8), datetime(2027, 1, 7, 8)
    segments = rate_segments(program, start, end)
    pieces = pieces_from_segments(segments, to_pump_s(start))
    assert pieces[0].start_h == 0.0 and pieces[-1].end_h == pytest.approx(72.0)
    patients = draw_patients(np.random.default_rng(7), 1)
    times = [0.0, 5.0, 23.0, 24.5, 47.9, 71.0, 72.0]
    exact = predict(patients, pieces, [], times, t0_h=0.0)[0]
    ref = reference_states(patients, 0, pieces, [], times)
    np.testing.assert_allclose(exact, ref, rtol=1e-7, atol=1e-10)


def test_delivered_drug_is_conserved_between_csf_and_clearance() -> None:
    # After a 50 µg bolus, what is still in the CSF plus what was cleared equals 50 µg: the
    # cleared amount is the integral of clearance × concentration, done here by quadrature.
    patients = draw_patients(np.random.default_rng(3), 1)
    times = np.linspace(0.0, 30.0, 30001)
    states = predict(patients, [], [Bolus(0.0, 50.0)], times)[0]
    c_tip = states[:, 0] / patients.v_tip_ml[0]
    c_rest = states[:, 1] / patients.v_rest_ml[0]
    cleared_rate = patients.cl_tip_ml_per_h[0] * c_tip + patients.cl_rest_ml_per_h[0] * c_rest
    cleared = np.trapezoid(cleared_rate, times)
    assert states[-1, 0] + states[-1, 1] + cleared == pytest.approx(50.0, rel=1e-5)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(DosingError, match="dose_ug"):
        Bolus(0.0, -5.0)
    with pytest.raises(DosingError, match="rate_ug_per_h"):
        Piece(0.0, 1.0, float("nan"))
    with pytest.raises(DosingError, match="end_h"):
        Piece(2.0, 1.0, 10.0)
    patients = draw_patients(np.random.default_rng(0), 1)
    with pytest.raises(DosingError, match="overlap"):
        predict(patients, [Piece(0.0, 2.0, 1.0), Piece(1.0, 3.0, 1.0)], [], [0.0])
    with pytest.raises(DosingError, match="sorted"):
        predict(patients, [], [], [2.0, 1.0])
