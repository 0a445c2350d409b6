"""The exact solution against SciPy's solve_ivp on random programs and boluses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.pharmacology import exact as exact_module
from itb.pharmacology.exact import Bolus, DosingError, Piece, pieces_from_segments, predict
from itb.pharmacology.population import draw_patients
from itb.therapy import FlexStep, flex, rate_segments, to_pump_s
from tests.pharmacology.reference import expm_reference_states, reference_states

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


def flex_days(days: int, steps: Sequence[tuple[float, float]]) -> list[Piece]:
    """``steps`` (start hour, µg/h) repeated every day; the last step runs to midnight."""
    ends = [start for start, _ in steps[1:]] + [24.0]
    return [
        Piece(24.0 * day + start, 24.0 * day + end, rate)
        for day in range(days)
        for (start, rate), end in zip(steps, ends, strict=True)
    ]


def test_hourly_states_of_a_flex_program_match_expm_stepping_to_1e_12() -> None:
    # 200 patients, 5 days of a 10-step flex program, two boluses, hourly states: the modal
    # propagation agrees with expm stepping in physical units to 1e-12 of each state's largest
    # value over everyone (the modal basis of a patient with close eigenvalues is the only
    # source of difference; both are float64).
    patients = draw_patients(np.random.default_rng(2027), 200)
    steps = [(0, 18.0), (3, 16.0), (6, 26.0), (8, 30.0), (11, 24.0), (13, 28.0), (16, 26.0),
             (18, 30.0), (20, 24.0), (22, 20.0)]  # fmt: skip
    pieces = flex_days(5, steps)
    boluses = [Bolus(30.5, 50.0), Bolus(72.0, 25.0)]
    times = [float(t) for t in range(0, 5 * 24 + 1)]
    x0 = np.zeros((patients.n, 3))
    exact = predict(patients, pieces, boluses, times, t0_h=0.0)
    ref = expm_reference_states(patients, pieces, boluses, times, 0.0, x0)
    scale = np.max(np.abs(ref), axis=(0, 1))
    assert np.max(np.abs(exact - ref) / scale) < 1e-12


def test_a_piece_running_at_the_start_time_delivers_from_then_on() -> None:
    # A pump segment that began before the window's start (t0) still delivers inside it: the
    # same as the piece cut at t0.
    patient = draw_patients(np.random.default_rng(5), 1)
    times = np.arange(0.0, 12.5, 0.5)
    straddling = predict(patient, [Piece(-5.0, 10.0, 20.0)], [], times, t0_h=0.0)
    cut = predict(patient, [Piece(0.0, 10.0, 20.0)], [], times, t0_h=0.0)
    np.testing.assert_array_equal(straddling, cut)
    assert straddling[0, -5, 0] > 0.0  # drug in the tip CSF at 10 h


def test_an_empty_piece_delivers_nothing() -> None:
    # A piece of no duration at 5 h (50 µg/h) leaves the rate at 0 after the 10 µg/h piece ends.
    patient = draw_patients(np.random.default_rng(6), 1)
    times = np.arange(0.0, 24.0, 1.0)
    with_empty = predict(patient, [Piece(0.0, 5.0, 10.0), Piece(5.0, 5.0, 50.0)], [], times)
    without = predict(patient, [Piece(0.0, 5.0, 10.0)], [], times)
    np.testing.assert_array_equal(with_empty, without)


def test_pieces_meeting_within_rounding_keep_the_later_rate() -> None:
    # 0.1 + 0.2 h ends 5e-17 h after the next piece starts at 0.3 h: the next piece's 30 µg/h
    # runs to 5 h (a stop there would under-predict the drug for the whole piece).
    patients = draw_patients(np.random.default_rng(8), 3)
    pieces = [Piece(0.0, 0.1 + 0.2, 10.0), Piece(0.3, 5.0, 30.0)]
    times = [0.0, 0.3, 1.0, 2.5, 5.0, 8.0]
    exact = predict(patients, pieces, [], times, t0_h=0.0)
    ref = expm_reference_states(patients, pieces, [], times, 0.0, np.zeros((3, 3)))
    scale = np.max(np.abs(ref), axis=(0, 1))
    assert np.max(np.abs(exact - ref) / scale) < 1e-12


def test_equal_output_times_report_the_same_state() -> None:
    patients = draw_patients(np.random.default_rng(9), 4)
    times = [0.0, 1.0, 1.0, 1.0, 2.5, 2.5, 6.0]
    states = predict(patients, [Piece(0.0, 2.0, 25.0)], [Bolus(2.5, 40.0)], times)
    np.testing.assert_array_equal(states[:, 1], states[:, 3])
    np.testing.assert_array_equal(states[:, 4], states[:, 5])
    assert np.all(states[:, 4, 0] > states[:, 3, 0])  # the bolus at 2.5 h is in the state


def test_small_blocks_and_per_step_maps_give_the_same_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The write-out in blocks of 2 output times (repeated times across a block's edge) and the
    # per-step maps used past the table's memory limit change no digit that matters.
    patients = draw_patients(np.random.default_rng(12), 5)
    pieces = contiguous([(2.5, 20.0), (0.75, 0.0), (6.0, 35.0), (3.0, 12.0)])
    boluses = [Bolus(1.0, 30.0), Bolus(4.0, 10.0)]
    times = [0.0, 0.5, 1.0, 1.0, 1.0, 2.0, 3.25, 3.25, 4.0, 7.0, 9.0, 12.25, 14.0]
    usual = predict(patients, pieces, boluses, times)
    monkeypatch.setattr(exact_module, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(exact_module, "_MAP_TABLE_BYTES", 0)
    small = predict(patients, pieces, boluses, times)
    np.testing.assert_allclose(small, usual, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(small[:, 2], small[:, 4])


@pytest.mark.parametrize("n_patients", [1, 3])
def test_a_fine_grid_with_a_bolus_and_rate_changes_inside_matches_expm_stepping(
    n_patients: int,
) -> None:
    # The cohort simulation's case: a few patients, a few pieces, states every 0.1 h. Rate
    # changes off the grid (10.05 h) and on it (30 h), boluses on the grid (20 h) and off it
    # (20.03 h), repeated output times at the bolus, drug already on board at t0: one broadcast
    # per run of constant rate agrees with expm stepping to 1e-12 of each state's maximum.
    patients = draw_patients(np.random.default_rng(31), n_patients)
    pieces = [Piece(0.0, 10.05, 25.0), Piece(10.05, 30.0, 40.0), Piece(30.0, 36.0, 5.0)]
    boluses = [Bolus(20.0, 60.0), Bolus(20.03, 15.0)]
    grid = np.round(np.arange(0.0, 48.0, 0.1), 10)
    times = np.sort(np.concatenate((grid, [20.0, 20.0])))
    x0 = np.tile([3.0, 1.0, 0.5], (n_patients, 1))
    exact = predict(patients, pieces, boluses, times, initial_state=x0, t0_h=0.0)
    ref = expm_reference_states(patients, pieces, boluses, list(times), 0.0, x0)
    scale = np.max(np.abs(ref), axis=(0, 1))
    assert np.max(np.abs(exact - ref) / scale) < 1e-12
    at_bolus = np.flatnonzero(times == 20.0)
    np.testing.assert_array_equal(exact[:, at_bolus[0]], exact[:, at_bolus[-1]])
    assert np.all(exact[:, at_bolus[0], 0] > exact[:, at_bolus[0] - 1, 0])  # bolus is in


def test_stepping_and_one_broadcast_per_run_give_the_same_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The two ways predict walks a program (chosen by cost) agree to 1e-12 of each maximum.
    patients = draw_patients(np.random.default_rng(32), 2)
    pieces = contiguous([(2.5, 20.0), (0.75, 0.0), (6.0, 35.0), (3.0, 12.0)])
    boluses = [Bolus(1.0, 30.0), Bolus(4.04, 10.0)]
    times = np.arange(0.0, 20.0, 0.05)
    by_runs = predict(patients, pieces, boluses, times)
    monkeypatch.setattr(exact_module, "_FEW_PATIENTS", 0)
    stepped = predict(patients, pieces, boluses, times)
    scale = np.max(np.abs(stepped), axis=(0, 1))
    assert np.max(np.abs(by_runs - stepped) / scale) < 1e-12
