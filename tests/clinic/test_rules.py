"""Pure rules: the role check, the due dates, the calendar's text format."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.clinic import auth
from itb.clinic.calendar import escape_text, fold
from itb.clinic.urgency import days_until, due_dates
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


def test_due_dates_follow_the_refill_arithmetic() -> None:
    dates = due_dates(
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
    assert days_until(dates.low_reservoir_at, T) == pytest.approx(10.0)
    assert days_until(dates.empty_at, T) == pytest.approx(12.0)
    assert days_until(dates.stability_at, T) == pytest.approx(BACLOFEN.stability_days - 10)
    assert dates.next_due_at == dates.low_reservoir_at
    assert days_until(dates.low_reservoir_at, T + timedelta(days=11)) == pytest.approx(-1.0)


def test_without_a_battery_reading_eri_comes_from_the_model_and_the_implant_date() -> None:
    dates = due_dates(T, 10.0, 2.0, 100.0, 500.0, T, None, "peristaltic-20", T)
    assert 6 * 365 < days_until(dates.eri_at, T) < 7.1 * 365  # type: ignore[operator]


def test_calendar_text_is_escaped_and_folded_at_75_octets() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    line = "SUMMARY:" + "µ" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
