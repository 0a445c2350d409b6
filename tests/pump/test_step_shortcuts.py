"""The firmware's shortcuts (issue 13) must change nothing it does: the reservoir's next event
is searched for only when it can come before the step's end, a program already accepted at a
concentration is not checked again, and a command at the pump's own "now" skips converting it."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.pump.checks import CommandRejected
from itb.pump.status import BolusKind
from itb.therapy import FlexStep, Program, continuous, flex

from .helpers import START, days, hours, new_pump

NIGHT_PEAK = flex([FlexStep(0, 10.0), FlexStep(6 * 60, 60.0), FlexStep(22 * 60, 10.0)])
# one short sharp step: the peak rate is far above the mean, so the bound is far too early
SHARP = flex([FlexStep(0, 5.0), FlexStep(3 * 60, 200.0), FlexStep(3 * 60 + 20, 5.0)])


@settings(max_examples=80, deadline=None)
@given(
    program=st.sampled_from([continuous(600.0), NIGHT_PEAK, SHARP]),
    elapsed_h=st.floats(0.0, 24 * 60.0),
    horizon_share=st.floats(0.5, 2.0),  # the step's end, as a share of the time to the event
    bolus=st.booleans(),
    primed=st.booleans(),
)
def test_the_next_event_before_a_horizon_is_the_one_found_without_it(
    program: Program, elapsed_h: float, horizon_share: float, bolus: bool, primed: bool
) -> None:
    fw = new_pump(program, catheter_primed=primed)
    fw.advance(START + hours(elapsed_h))
    if bolus and fw.reservoir_ml > 3.0:
        fw.start_bolus(fw.now, BolusKind.CLINICIAN, dose_ug=50.0, duration_min=30.0)
    rate = fw._volume_rate()
    unbounded = fw._next_event_s(math.inf, rate)
    if not math.isfinite(unbounded):
        return  # nothing to come: nothing to miss
    horizon_s = fw.t_s + (unbounded - fw.t_s) * horizon_share
    bounded = fw._next_event_s(horizon_s, rate)
    if unbounded < horizon_s:  # it comes within the step: the shortcut must find it
        assert bounded == unbounded
    else:  # it does not: whatever the shortcut answers is past the step's end too
        assert bounded >= horizon_s or bounded == unbounded


@pytest.mark.parametrize(
    "program", [continuous(600.0), NIGHT_PEAK, SHARP], ids=["continuous", "night-peak", "sharp"]
)
def test_the_low_and_empty_reservoir_alarms_come_at_the_same_time_in_one_jump_as_by_the_hour(
    program: Program,
) -> None:
    jump, steps = new_pump(program), new_pump(program)
    jump.advance(START + days(80))
    at = START
    while at < START + days(80):
        at += hours(1)
        steps.advance(at)
    jumped = {e.data["alarm"]: e.t_s for e in jump.log.entries() if e.kind == "alarm"}
    stepped = {e.data["alarm"]: e.t_s for e in steps.log.entries() if e.kind == "alarm"}
    assert set(jumped) == {"low_reservoir", "empty_reservoir"}
    assert jumped.keys() == stepped.keys()
    for kind, t_s in jumped.items():
        assert t_s == pytest.approx(stepped[kind], abs=1e-3)


def test_a_refill_at_a_new_concentration_is_checked_even_after_the_program_passed_at_the_old() -> (
    None
):
    fw = new_pump(continuous(50.0), concentration_ug_per_ml=500.0)
    fw.refill(START + days(10), 20.0, 500.0)  # accepted: 0.1 mL/day at 500 µg/mL
    # 50 µg/day at 2,000 µg/mL is 0.025 mL/day: below the least the model pumps (0.048)
    with pytest.raises(CommandRejected) as refused:
        fw.refill(START + days(20), 20.0, 2000.0)
    assert refused.value.field == "program"
    assert fw.concentration_ug_per_ml == 500.0  # nothing changed
    fw.refill(START + days(20), 20.0, 500.0)  # the accepted pair is accepted again
    with pytest.raises(CommandRejected):  # and the refused one refused again
        fw.refill(START + days(21), 20.0, 2000.0)


def test_a_new_program_is_checked_at_the_present_concentration() -> None:
    fw = new_pump(continuous(600.0), concentration_ug_per_ml=500.0)
    fw.set_program(START + days(1), continuous(700.0))
    with pytest.raises(CommandRejected) as refused:
        fw.set_program(START + days(2), continuous(20000.0))  # 40 mL/day at 500 µg/mL
    assert refused.value.field in {"program", "daily_dose_ug"}
    assert fw.program.daily_dose_ug() == pytest.approx(700.0)


def test_a_command_at_now_changes_nothing_of_time_and_a_later_one_moves_it() -> None:
    fw = new_pump()
    fw.advance(START + hours(5))
    before = (fw.t_s, fw.reservoir_ul, fw.battery_used_uc)
    fw.advance(fw.now)
    fw.advance(START + hours(5))  # an equal datetime, not the same object
    assert (fw.t_s, fw.reservoir_ul, fw.battery_used_uc) == before
    fw.advance(fw.now + timedelta(minutes=30))
    assert fw.now == START + hours(5.5)
    assert fw.reservoir_ul < before[1]
