from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.pharmacology.model import ParameterError
from itb.pharmacology.titration import (
    Origin,
    first_pump_dose,
    next_titration_step,
    parse_origin,
)

T0 = datetime(2027, 3, 1, 9, 0)


def test_first_dose_is_twice_the_screening_dose_unless_the_effect_lasted_over_8h() -> None:
    assert first_pump_dose(50.0, 6.0).daily_dose_ug == 100.0
    assert first_pump_dose(50.0, 8.0).daily_dose_ug == 100.0
    long = first_pump_dose(75.0, 9.5)
    assert long.daily_dose_ug == 75.0 and "S46" in long.reason


def test_no_step_in_the_first_24_hours_or_within_24_hours_of_a_change() -> None:
    early = next_titration_step(T0 + timedelta(hours=20), T0, None, 100.0, Origin.SPINAL)
    assert not early.may_change_now and early.suggested_daily_dose_ug == 100.0
    assert early.earliest_change == T0 + timedelta(hours=24) and "4.0 h" in early.reason
    changed = T0 + timedelta(hours=30)
    soon = next_titration_step(T0 + timedelta(hours=40), T0, changed, 110.0, Origin.SPINAL)
    assert not soon.may_change_now and soon.earliest_change == changed + timedelta(hours=24)


@pytest.mark.parametrize(
    ("origin", "low", "high"), [(Origin.SPINAL, 110.0, 130.0), (Origin.CEREBRAL, 105.0, 115.0)]
)
def test_step_ranges_by_origin(origin: Origin, low: float, high: float) -> None:
    advice = next_titration_step(T0 + timedelta(hours=25), T0, None, 100.0, origin)
    assert advice.may_change_now
    assert advice.min_daily_dose_ug == pytest.approx(low)
    assert advice.max_daily_dose_ug == pytest.approx(high)
    assert advice.suggested_daily_dose_ug == pytest.approx(low)
    assert origin.value in advice.reason and not advice.warnings


def test_warning_above_1000_and_cap_at_2000() -> None:
    near = next_titration_step(T0 + timedelta(days=9), T0, None, 900.0, Origin.SPINAL)
    assert any("1000" in w for w in near.warnings)
    top = next_titration_step(T0 + timedelta(days=9), T0, None, 1900.0, Origin.SPINAL)
    assert top.max_daily_dose_ug == 2000.0 and any("2000" in w for w in top.warnings)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ParameterError, match="origin"):
        parse_origin("cardiac")
    with pytest.raises(ParameterError, match="current_daily_dose_ug"):
        next_titration_step(T0, T0, None, -5.0, Origin.SPINAL)
    with pytest.raises(ParameterError, match="effect_duration_h"):
        first_pump_dose(50.0, float("nan"))
