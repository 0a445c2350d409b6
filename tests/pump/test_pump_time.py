"""Pump seconds to a datetime: to the nearest microsecond, a half to the even one."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from itb.therapy import PUMP_EPOCH, from_pump_s, to_pump_s


@given(st.floats(min_value=0.0, max_value=4e9, allow_nan=False))
@example(0.5e-6)  # a tie: to the even microsecond, 0
@example(1.5e-6)  # a tie: to 2
@example(912345678.1234565)
def test_from_pump_s_is_the_nearest_microsecond(t_s: float) -> None:
    exact_us = (Decimal(t_s) * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert from_pump_s(t_s) == PUMP_EPOCH + timedelta(microseconds=int(exact_us))


@given(st.integers(min_value=0, max_value=4 * 10**15))
def test_a_microsecond_time_goes_there_and_back(microseconds: int) -> None:
    when = PUMP_EPOCH + timedelta(microseconds=microseconds)
    assert from_pump_s(to_pump_s(when)) == when
