"""Pure rules: the role check, the due dates, the calendar's text format."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.clinic import auth
from itb.clinic.calendar import escape_text, fold
from itb.clinic.urgency import ObservedState, days_until, due_dates
from itb.drugs import BACLOFEN

T = datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("physician", "program", True),
        ("nurse", "program", False),
        ("viewer", "program", False),
        ("nurse", "refill", True),
        ("viewer", "refill", False),
        ("viewer", "view", True),
        ("physician", "drop_database", False),  # unknown action: denied
        ("admin", "view", False),  # unknown role: denied
        (None, "view", False),
    ],
)
def test_role_check_denies_by_default(role: str | None, action: str, allowed: bool) -> None:
    assert auth.authorize(role, action) is allowed


def _state(
    reservoir_ml: float,
    daily_dose_ug: float,
    concentration_ug_per_ml: float,
    filled_days_ago: float,
    model: str = "peristaltic-20",
) -> ObservedState:
    """A pump implanted 700 days before T (1000 for the 40 mL one), alarm at 2 mL."""
    implanted_days_ago = 1000 if model == "peristaltic-40" else 700
    return ObservedState(
        T,
        model,
        T - timedelta(days=implanted_days_ago),
        reservoir_ml,
        2.0,
        daily_dose_ug,
        concentration_ug_per_ml,
        filled_at=T - timedelta(days=filled_days_ago),
    )


def test_due_dates_follow_the_refill_arithmetic() -> None:
    dates = due_dates(
        ObservedState(
            T,
            reservoir_ml=12.0,
            low_reservoir_alarm_ml=2.0,
            daily_dose_ug=500.0,
            concentration_ug_per_ml=500.0,  # 1 mL/day
            filled_at=T - timedelta(days=10),
            battery_eri_at=T + timedelta(days=400),
            model="peristaltic-20",
            implanted_at=T - timedelta(days=700),
        )
    )
    assert days_until(dates.low_reservoir_at, T) == pytest.approx(10.0)
    assert days_until(dates.empty_at, T) == pytest.approx(12.0)
    assert days_until(dates.stability_at, T) == pytest.approx(BACLOFEN.stability_days - 10)
    assert dates.next_due_at == dates.low_reservoir_at
    assert days_until(dates.low_reservoir_at, T + timedelta(days=11)) == pytest.approx(-1.0)
    # the programmer's refill plan: 5 days before the alarm (S24, docs/refill.md): 10 - 5
    assert days_until(dates.next_refill_at, T) == pytest.approx(5.0)


def test_a_pump_within_the_margin_of_its_alarm_is_due_for_refill_now() -> None:
    # 3 mL, alarm at 2 mL, 1 mL/day: the alarm in 1 day, less than the 5-day margin
    dates = due_dates(_state(3.0, 500.0, 500.0, filled_days_ago=17))
    assert days_until(dates.low_reservoir_at, T) == pytest.approx(1.0)
    assert dates.next_refill_at == T


def test_the_stability_limit_counts_from_the_fill_not_from_the_reading() -> None:
    # 40 mL pump, 300 µg/day at 2000 µg/mL = 0.15 mL/day: 37 mL to the alarm = 246.7 days away,
    # but filled 170 days ago: the 180-day stability limit comes in 10 days
    dates = due_dates(_state(39.0, 300.0, 2000.0, filled_days_ago=170, model="peristaltic-40"))
    assert days_until(dates.low_reservoir_at, T) == pytest.approx(37.0 / 0.15)
    assert days_until(dates.next_refill_at, T) == pytest.approx(10.0)
    assert days_until(dates.stability_at, T) == pytest.approx(10.0)
    assert "stability" in dates.note


def test_a_stopped_program_has_no_reservoir_dates_but_keeps_the_stability_limit() -> None:
    dates = due_dates(_state(10.0, 0.0, 500.0, filled_days_ago=20))
    assert dates.low_reservoir_at is None and dates.empty_at is None
    assert days_until(dates.next_refill_at, T) == pytest.approx(160.0)


def test_without_a_battery_reading_eri_comes_from_the_model_and_the_implant_date() -> None:
    state = ObservedState(T, "peristaltic-20", T, 10.0, 2.0, 100.0, 500.0, filled_at=T)
    dates = due_dates(state)
    assert 6 * 365 < days_until(dates.eri_at, T) < 7.1 * 365  # type: ignore[operator]
    # and EOS the model's fixed time after it (S3 S21: 90 days)
    assert days_until(dates.eos_at, dates.eri_at) == pytest.approx(90.0)  # type: ignore[arg-type]


def test_the_pumps_reported_eri_and_eos_are_used_as_they_are() -> None:
    eri, eos = T + timedelta(days=300), T + timedelta(days=395)
    state = ObservedState(T, "peristaltic-20", T, 10.0, 2.0, 100.0, 500.0, T, eri, eos)
    dates = due_dates(state)
    assert (dates.eri_at, dates.eos_at) == (eri, eos)


def test_calendar_text_is_escaped_and_folded_at_75_octets() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    line = "SUMMARY:" + "µ" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
