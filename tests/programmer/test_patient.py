"""Patient remote view: days until refill, withdrawal signs, patient bolus availability."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from itb.guardrails import LimitError
from itb.programmer.patient import (
    PatientBolusSettings,
    patient_bolus_availability,
    refill_countdown,
)

NOW = datetime(2027, 1, 4, 12, 0)
SETTINGS = PatientBolusSettings(dose_ug=25.0, max_per_day=3, lockout_min=60.0)


def at(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2027, 1, day, hour, minute)


def test_days_until_refill_and_the_seed_withdrawal_signs() -> None:
    c = refill_countdown(date(2027, 3, 20), date(2027, 3, 30))
    assert c.days_until_refill == 10
    assert "in 10 days" in c.message
    for sign in ("severe muscle stiffness or spasms", "itchy skin without a rash", "seizures"):
        assert sign in c.withdrawal_signs
    assert len(c.withdrawal_signs) == 8


def test_an_overdue_refill_says_so() -> None:
    c = refill_countdown(date(2027, 4, 1), date(2027, 3, 30))
    assert c.days_until_refill == -2
    assert "2 days overdue" in c.message
    assert refill_countdown(date(2027, 3, 30), date(2027, 3, 30)).message.endswith("today.")


def test_bolus_available_with_none_taken() -> None:
    a = patient_bolus_availability(NOW, SETTINGS, [], basal_daily_dose_ug=400.0)
    assert a.available
    assert a.boluses_left == 3
    assert a.next_available_at is None


def test_lockout_blocks_a_bolus_30_minutes_after_the_last() -> None:
    a = patient_bolus_availability(NOW, SETTINGS, [at(9), at(11, 30)], 400.0)
    assert not a.available
    assert a.next_available_at == at(12, 30)
    assert a.boluses_left == 1
    assert "60 min" in a.reason


def test_three_a_day_blocks_the_fourth_until_the_first_is_24_hours_old() -> None:
    a = patient_bolus_availability(NOW, SETTINGS, [at(8), at(10), at(11)], 400.0)
    assert not a.available
    assert a.boluses_left == 0
    assert a.next_available_at == at(8, day=5)


def test_boluses_older_than_24_hours_do_not_count() -> None:
    a = patient_bolus_availability(NOW, SETTINGS, [NOW - timedelta(hours=25), at(9)], 400.0)
    assert a.available
    assert a.boluses_left == 2


def test_rolling_24h_total_stays_under_the_absolute_maximum() -> None:
    # 1960 + 25 = 1985 ≤ 2000: available. With one bolus at 06:00: 1960 + 2 × 25 = 2010 > 2000;
    # it must leave the window first, at 06:00 the next day.
    assert patient_bolus_availability(NOW, SETTINGS, [], 1960.0).available
    a = patient_bolus_availability(NOW, SETTINGS, [at(6)], 1960.0)
    assert not a.available
    assert a.next_available_at == at(6, day=5)
    assert "2010" in a.reason
    # 1990 + 25 = 2015 even with no bolus: never at this basal.
    never = patient_bolus_availability(NOW, SETTINGS, [], 1990.0)
    assert not never.available and never.next_available_at is None


def test_not_enabled_when_the_clinic_set_no_dose() -> None:
    off = PatientBolusSettings(dose_ug=0.0, max_per_day=3, lockout_min=60.0)
    a = patient_bolus_availability(NOW, off, [], 400.0)
    assert not a.available and "not enabled" in a.reason


def test_bad_bolus_input_is_refused() -> None:
    with pytest.raises(LimitError, match="patient_bolus_dose_ug"):
        PatientBolusSettings(dose_ug=150.0, max_per_day=3, lockout_min=60.0)
    with pytest.raises(LimitError, match="patient_lockout_min"):
        PatientBolusSettings(dose_ug=25.0, max_per_day=3, lockout_min=5.0)
    with pytest.raises(LimitError, match="patient_boluses_per_day"):
        PatientBolusSettings(dose_ug=25.0, max_per_day=20, lockout_min=60.0)
    with pytest.raises(ValueError, match="future"):
        patient_bolus_availability(NOW, SETTINGS, [NOW + timedelta(minutes=1)], 400.0)
    with pytest.raises(LimitError, match="basal_daily_dose_ug"):
        patient_bolus_availability(NOW, SETTINGS, [], -1.0)
