"""Therapy programs: derived doses, schedules that cross midnight or vary by weekday, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from itb.therapy import (
    FlexStep,
    PeriodicBolus,
    ProgramError,
    continuous,
    flex,
    program_from_dict,
    rate_segments,
    to_pump_s,
)


def test_continuous_program_daily_dose_and_volume() -> None:
    program = continuous(600.0)
    assert program.daily_dose_ug() == pytest.approx(600.0)
    # 600 µg/day of 500 µg/mL is 1.2 mL/day; 25 µg in any hour
    assert program.volume_per_day_ml(500.0) == pytest.approx(1.2)
    assert program.max_hourly_dose_ug() == pytest.approx(25.0)


def test_flex_schedule_crossing_midnight_wraps_the_last_rate() -> None:
    # 22:00 to 06:00 at 40 µg/h, 06:00 to 22:00 at 10 µg/h: the first step starts at 06:00,
    # so midnight to 06:00 runs the previous day's 40 µg/h.
    program = flex([FlexStep(6 * 60, 10.0), FlexStep(22 * 60, 40.0)])
    assert program.daily_dose_ug() == pytest.approx(8 * 40.0 + 16 * 10.0)  # 480 µg
    monday = datetime(2027, 1, 4)
    segments = rate_segments(program, monday, datetime(2027, 1, 5))
    assert [(s.rate_ug_per_h) for s in segments] == [40.0, 10.0, 40.0]
    assert sum(s.dose_ug for s in segments) == pytest.approx(480.0)


def test_weekday_schedules_and_periodic_bolus() -> None:
    weekday = [FlexStep(0, 20.0)]
    weekend = [FlexStep(0, 30.0)]
    program = flex([weekday] * 5 + [weekend] * 2, [PeriodicBolus(8 * 60, 50.0, 30.0)])
    assert program.varies_by_day
    assert program.daily_dose_ug(0) == pytest.approx(24 * 20.0 + 50.0)  # Monday
    assert program.daily_dose_ug(6) == pytest.approx(24 * 30.0 + 50.0)  # Sunday
    assert program.daily_dose_ug() == pytest.approx(770.0)  # the highest day
    # the busiest hour holds the whole 50 µg bolus plus an hour of the weekend rate
    assert program.max_hourly_dose_ug() == pytest.approx(80.0)
    assert program.mean_daily_dose_ug() == pytest.approx((5 * 530.0 + 2 * 770.0) / 7)


def test_thirteen_or_more_steps_a_day_are_accepted_and_25_refused() -> None:
    steps = [FlexStep(i * 60, 10.0 + i) for i in range(24)]
    assert flex(steps).daily_dose_ug() == pytest.approx(sum(10.0 + i for i in range(24)))
    with pytest.raises(ProgramError, match="allowed 1 to 24"):
        flex([FlexStep(i * 50, 10.0) for i in range(25)])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate_ug_per_day": -5.0}, "rate_ug_per_h"),
        ({"steps": [{"start": "25:00", "rate_ug_per_h": 1.0}]}, "steps\\[0\\].start"),
        (
            {
                "steps": [
                    {"start": "08:00", "rate_ug_per_h": 1.0},
                    {"start": "07:00", "rate_ug_per_h": 1.0},
                ]
            },
            "increasing time order",
        ),
        ({"rate_ug_per_day": 100.0, "steps": []}, "exactly one"),
        ({"rate_ug_per_day": "lots"}, "rate_ug_per_day"),
        ({"rate_ug_per_day": 100.0, "rate_mg_per_day": 0.1}, "unknown keys"),
    ],
)
def test_bad_programs_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ProgramError, match=message):
        program_from_dict(data)


def test_program_round_trips_through_its_dict() -> None:
    program = flex([FlexStep(0, 20.0), FlexStep(450, 30.0)], [PeriodicBolus(720, 25.0, 15.0)])
    again = program_from_dict(program.to_dict())
    assert again.to_dict() == program.to_dict()
    assert again.daily_dose_ug() == pytest.approx(program.daily_dose_ug())


def test_pump_clock_rejects_times_with_an_offset() -> None:

    with pytest.raises(ProgramError, match="UTC offset"):
        to_pump_s(datetime(2027, 1, 4, tzinfo=UTC))


def test_time_to_integral_inverts_the_integral() -> None:
    profile = flex([FlexStep(0, 20.0), FlexStep(450, 30.0), FlexStep(1000, 5.0)]).profile
    t0 = to_pump_s(datetime(2027, 1, 4, 3, 17))
    for amount in (1e-3, 10.0, 645.0, 1e5):
        t1 = profile.time_to_integral(t0, amount, 1.0, 0.0)
        # float pump time (~1e-7 s at 2027) bounds the absolute precision
        assert profile.integral_ug(t0, t1) == pytest.approx(amount, rel=1e-9, abs=1e-8)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    rates=st.lists(st.just(0.0) | st.floats(0.01, 80.0), min_size=1, max_size=12),
    t0_h=st.floats(0.0, 24 * 400.0),
    amount=st.floats(0.01, 1e5),
    scale=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    extra=st.sampled_from([0.0, 1e-3, 0.02]),
)
def test_time_to_integral_is_the_earliest_time_the_amount_is_reached(
    rates: list[float], t0_h: float, amount: float, scale: float, extra: float
) -> None:
    program = flex([FlexStep(i * 110, r) for i, r in enumerate(rates)])
    profile = program.profile
    t0 = to_pump_s(datetime(2027, 1, 4)) + t0_h * 3600.0
    t1 = profile.time_to_integral(t0, amount, scale, extra)

    def total(t: float) -> float:
        return scale * profile.integral_ug(t0, t) + extra * (t - t0)

    if scale * profile.period_total_ug + extra == 0.0:
        assert t1 == float("inf")
        return
    assert total(t1) == pytest.approx(amount, rel=1e-7, abs=1e-6)
    assert total(t1 - 1.0) < amount  # a second earlier it was not yet reached
