"""The firmware's typed status: its own ERI/EOS prediction and patient-bolus rule, reported."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from itb.pump.bolus import next_patient_bolus_at
from itb.pump.status import BolusKind, Mode, PatientBolusLimits
from itb.therapy import continuous, from_pump_s

from .helpers import START, days, hours, new_pump

YEAR_S = 365.25 * 86400


def test_status_predicts_eri_and_eos_before_eri_is_reached() -> None:
    fw = new_pump()  # 600 µg/day at 500 µg/mL: 1.2 mL/day
    battery = fw.status().battery
    assert battery.eri_at is None and battery.eos_at is None
    assert battery.predicted_eri_at == from_pump_s(fw.predicted_eri_s())
    assert battery.predicted_eos_at is not None and battery.predicted_eri_at is not None
    assert battery.predicted_eos_at - battery.predicted_eri_at == timedelta(days=90)
    # an independent reference: the model's closed form at a steady 1.2 mL/day
    expected = START + timedelta(seconds=fw.model.years_to_eri(1.2) * YEAR_S)
    assert abs((battery.predicted_eri_at - expected).total_seconds()) < 60.0


def test_after_eri_the_predictions_are_the_entered_dates() -> None:
    fw = new_pump(
        continuous(2000.0), model="peristaltic-40", concentration_ug_per_ml=2000.0, volume_ml=40.0
    )
    t = START
    while fw.status().battery.eri_at is None:
        t += days(30)
        fw.advance(t)
        fw.refill(t, 40.0, 2000.0)
    fw.advance(fw.now + days(100))  # past EOS too
    battery = fw.status().battery
    assert fw.mode is Mode.EOS
    assert battery.eri_at is not None and battery.eos_at is not None
    assert battery.predicted_eri_at == battery.eri_at
    assert battery.predicted_eos_at == battery.eos_at
    assert battery.eos_at - battery.eri_at == timedelta(days=90)


def test_next_patient_bolus_follows_the_lockout_and_the_rolling_day() -> None:
    fw = new_pump()
    assert fw.status().next_patient_bolus_at is None  # not enabled
    limits = PatientBolusLimits(20.0, 10.0, lockout_min=120.0, max_per_day=2)
    fw.set_patient_bolus_limits(START, limits)
    assert fw.status().next_patient_bolus_at == START  # allowed now
    fw.patient_bolus(START + hours(1))
    assert fw.status().next_patient_bolus_at == START + hours(3)  # 1 h + 120 min lockout
    fw.patient_bolus(START + hours(3))
    # two in the window: the first leaves it 24 h after it started
    assert fw.status().next_patient_bolus_at == START + hours(25)
    status = fw.status()
    assert status.bolus is not None and status.bolus.kind is BolusKind.PATIENT
    # the pure rule the patient's remote may call says the same
    given = [START + hours(1), START + hours(3)]
    assert next_patient_bolus_at(limits, given, fw.now) == START + hours(25)


@pytest.mark.parametrize("max_per_day", [0])
def test_no_next_patient_bolus_when_none_are_allowed(max_per_day: int) -> None:
    limits = PatientBolusLimits(20.0, 10.0, lockout_min=120.0, max_per_day=max_per_day)
    assert next_patient_bolus_at(limits, [], datetime(2027, 1, 4)) is None
    assert next_patient_bolus_at(None, [], datetime(2027, 1, 4)) is None
