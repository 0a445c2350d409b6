"""Patient remote view: days until refill, withdrawal signs, patient bolus availability."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from itb.guardrails import LimitError
from itb.programmer.patient import (
    PatientBolusSettings,
    availability_from_status,
    patient_bolus_availability,
    refill_countdown,
)
from itb.pump.checks import CommandRejected
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.status import PatientBolusLimits
from itb.therapy import FlexStep, continuous, flex

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


def test_the_remote_gives_the_pumps_answer_where_the_basal_estimate_differed() -> None:
    # 400 µg/day Monday to Saturday, 1960 µg/day on Sunday: the program's daily dose (its
    # highest day) is 1960 µg. Two boluses either side of midnight, Tuesday 23:30 and Wednesday
    # 00:45; at Wednesday 02:00 the estimate from the daily dose says 1960 + 3 × 25 = 2035 µg,
    # above 2000: no bolus. The pump counts the real window, 400 + 3 × 25 = 475 µg: it allows it.
    program = flex([[FlexStep(0, 400.0 / 24.0)]] * 6 + [[FlexStep(0, 1960.0 / 24.0)]])
    monday = datetime(2027, 1, 4, 8, 0)
    fw = Firmware.implant(
        pump_model("peristaltic-20"),
        monday,
        serial="REMOTE-1",
        concentration_ug_per_ml=2000.0,
        volume_ml=20.0,
        program=program,
    )
    fw.set_patient_bolus_limits(monday, PatientBolusLimits(25.0, 1.0, 60.0, 3))
    tuesday_2330, wednesday_0045 = datetime(2027, 1, 5, 23, 30), datetime(2027, 1, 6, 0, 45)
    for when in (tuesday_2330, wednesday_0045):
        fw.patient_bolus(when)
    now = datetime(2027, 1, 6, 2, 0)
    fw.advance(now)
    estimate = patient_bolus_availability(
        now, SETTINGS, [tuesday_2330, wednesday_0045], program.daily_dose_ug()
    )
    assert not estimate.available and "2035" in estimate.reason  # the old approximation
    remote = availability_from_status(now, fw.status())
    assert remote.available
    fw.patient_bolus(now)  # the firmware agrees: it gives the bolus
    # Three in the rolling 24 h now, across midnight: the next is allowed when the Tuesday 23:30
    # one leaves the window, Wednesday 23:30; the remote and the firmware say the same.
    later = datetime(2027, 1, 6, 4, 0)
    fw.advance(later)
    remote = availability_from_status(later, fw.status())
    assert not remote.available
    assert remote.next_available_at == tuesday_2330 + timedelta(hours=24)
    with pytest.raises(CommandRejected, match="3 boluses already in the last 24 h"):
        fw.patient_bolus(later)
    offline = patient_bolus_availability(
        later, SETTINGS, [tuesday_2330, wednesday_0045, now], basal_daily_dose_ug=400.0
    )
    assert offline.next_available_at == remote.next_available_at and offline.boluses_left == 0


def test_the_remote_says_not_enabled_when_the_pump_has_no_patient_limits() -> None:
    fw = Firmware.implant(
        pump_model("peristaltic-20"),
        NOW,
        serial="REMOTE-2",
        concentration_ug_per_ml=500.0,
        volume_ml=20.0,
        program=continuous(400.0),
    )
    remote = availability_from_status(NOW, fw.status())
    assert not remote.available and "not enabled" in remote.reason


def test_a_stopped_pump_with_boluses_enabled_says_call_the_clinic_not_not_enabled() -> None:
    fw = Firmware.implant(
        pump_model("peristaltic-20"),
        NOW,
        serial="REMOTE-3",
        concentration_ug_per_ml=500.0,
        volume_ml=20.0,
        program=continuous(400.0),
    )
    # 25 µg over 10 min at 500 µg/mL: within the pump's flow on top of the basal.
    fw.set_patient_bolus_limits(NOW, PatientBolusLimits(25.0, 10.0, 60.0, 3))
    assert availability_from_status(NOW, fw.status()).available
    fw.stop(NOW + timedelta(minutes=1))
    remote = availability_from_status(NOW + timedelta(minutes=1), fw.status())
    assert not remote.available and remote.next_available_at is None
    assert "stopped" in remote.reason and "call your clinic" in remote.reason
    assert "not enabled" not in remote.reason
    with pytest.raises(CommandRejected):  # the pump agrees: no bolus while stopped
        fw.patient_bolus(NOW + timedelta(minutes=2))
