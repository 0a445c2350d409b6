"""Commands that meet each other: a program change during a bolus, a bolus after a program
change, a refill during a bolus, stop then refill then resume at a new concentration, and the
patient-remote settings against the program. Each is a defined behaviour of the firmware (the
pump: peristaltic-20, at most 24 mL/day, 600 µg/day of 500 µg/mL unless said)."""

from __future__ import annotations

import pytest

from itb.pump.firmware import BolusKind, CommandRejected, Mode, PatientBolusLimits
from itb.therapy import continuous
from tests.pump.helpers import START, hours, new_pump


def test_a_program_change_during_a_bolus_is_refused_when_the_two_would_outrun_the_motor() -> None:
    fw = new_pump()
    # The motor pushes 24 mL/day = 0.27778 µL/s. 100 µg over 13 min = 200 µL / 780 s =
    # 0.25641 µL/s, on top of 600 µg/day = 1.2 mL/day = 0.01389 µL/s: it fits.
    fw.start_bolus(START, BolusKind.CLINICIAN, dose_ug=100.0, duration_min=13.0)
    # 1000 µg/day = 2 mL/day = 0.02315 µL/s: 0.27956 µL/s together > 0.27778 -> refused
    with pytest.raises(CommandRejected) as caught:
        fw.set_program(START + hours(0.05), continuous(1000.0))
    assert caught.value.field == "program"
    assert "bolus is in progress" in caught.value.reason and "at most 24" in caught.value.reason
    assert fw.program.daily_dose_ug() == pytest.approx(600.0)  # nothing changed
    # 700 µg/day = 0.0162 µL/s: 0.27261 µL/s together, within the motor: the bolus goes on
    fw.set_program(START + hours(0.1), continuous(700.0))
    assert fw.program.daily_dose_ug() == pytest.approx(700.0)
    assert fw.bolus is not None and fw.bolus.kind is BolusKind.CLINICIAN


def test_a_bolus_after_a_program_change_is_planned_on_the_new_program() -> None:
    fw = new_pump()
    # 100 µg over 13 min fits on 600 µg/day (above), not on 1000 µg/day: the refusal names the
    # shortest duration, 200 µL / (0.27778 - 0.02315) µL/s = 785.5 s = 13.09 min -> 13.1 (up).
    fw.set_program(START, continuous(1000.0))
    with pytest.raises(CommandRejected, match=r"at least 13\.1 min") as caught:
        fw.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=100.0, duration_min=13.0)
    assert caught.value.field == "duration_min"
    fw.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=100.0, duration_min=13.1)
    assert fw.bolus is not None


def test_a_refill_during_a_bolus_ends_the_bolus_and_logs_what_was_not_given() -> None:
    fw = new_pump()
    fw.start_bolus(START, BolusKind.CLINICIAN, dose_ug=50.0, duration_min=60.0)
    fw.refill(START + hours(0.5), 20.0, 1000.0)
    assert fw.bolus is None
    refill = [e for e in fw.log.entries() if e.kind == "refill"][-1]
    cancelled = refill.data["cancelled_bolus"]
    assert isinstance(cancelled, dict) and cancelled["kind"] == "clinician"
    # half of it was given in the first 30 min (in whole strokes): about 25 µg were not
    assert cancelled["not_given_ug"] == pytest.approx(25.0, abs=0.5)


def test_stop_then_refill_at_a_new_concentration_stays_stopped_until_resumed() -> None:
    fw = new_pump()
    fw.stop(START + hours(1))
    fw.refill(START + hours(2), 20.0, 1000.0)
    assert fw.mode is Mode.STOPPED  # a refill does not restart a stopped pump
    with pytest.raises(CommandRejected, match="stopped"):
        fw.start_bolus(START + hours(2), BolusKind.CLINICIAN, dose_ug=20.0)
    fw.resume(START + hours(3))
    assert fw.status().mode is Mode.RUNNING  # (read anew: the resume changed it)
    # the program is in µg: the same 600 µg/day now moves 0.6 mL/day at 1000 µg/mL, not 1.2
    assert fw.program.volume_per_day_ml(fw.concentration_ug_per_ml) == pytest.approx(0.6)
    before_ml = fw.reservoir_ml
    fw.advance(START + hours(27))
    assert before_ml - fw.reservoir_ml == pytest.approx(0.6, abs=0.01)


def test_patient_settings_needing_more_than_the_rolling_maximum_are_refused() -> None:
    fw = new_pump(continuous(1990.0))
    # 1990 µg/day of basal + one 25 µg dose = 2015 µg in 24 h > 2000: never given
    with pytest.raises(CommandRejected, match=r"allowed up to 10\.0 µg") as caught:
        fw.set_patient_bolus_limits(START, PatientBolusLimits(25.0, 10.0, 60.0, 4))
    assert caught.value.field == "dose_ug" and fw.patient_limits is None
    fw.set_patient_bolus_limits(START, PatientBolusLimits(10.0, 10.0, 60.0, 4))
    assert fw.patient_limits is not None


def test_no_patient_bolus_fits_when_the_basal_uses_the_whole_motor() -> None:
    # 1200 µg/day at 50 µg/mL is 24 mL/day: the model's maximum, nothing left on top
    fw = new_pump(continuous(1200.0), concentration_ug_per_ml=50.0)
    with pytest.raises(CommandRejected, match="full flow") as caught:
        fw.set_patient_bolus_limits(START, PatientBolusLimits(10.0, 60.0, 60.0, 4))
    assert caught.value.field == "duration_min"


def test_a_zero_dose_turns_the_patient_bolus_off_whatever_the_count() -> None:
    fw = new_pump()
    fw.set_patient_bolus_limits(START, PatientBolusLimits(0.0, 1.0, 60.0, 4))
    status = fw.status()
    assert status.next_patient_bolus_at is None  # not enabled: the status and the gate agree
    with pytest.raises(CommandRejected, match="not enabled"):
        fw.patient_bolus(START + hours(1))
