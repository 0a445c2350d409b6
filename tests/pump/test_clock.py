"""Setting the pump's clock: the schedule follows the corrected clock, no dose is given or
skipped by the setting, the log keeps old and new, a setting a day away is refused, and the
correction survives a reset (the memory image)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from itb.pump.checks import CommandRejected
from itb.pump.firmware import Firmware
from itb.therapy import FlexStep, flex
from tests.pump.helpers import START, new_pump

# 20 µg/h at night, 60 µg/h from 09:00 to 21:00 (960 µg/day)
DAY_PROGRAM = flex([FlexStep(0, 20.0), FlexStep(9 * 60, 60.0), FlexStep(21 * 60, 20.0)])
SEVEN_MIN = timedelta(minutes=7)


def _first_hour_ug(fw: Firmware) -> float:
    before = fw.delivered_ug
    fw.advance(START + timedelta(hours=1))
    return fw.delivered_ug - before


def test_a_clock_set_seven_minutes_forward_starts_the_0900_step_at_0900_on_the_new_clock() -> None:
    behind = new_pump(DAY_PROGRAM)  # its clock reads 08:00 when the patient's reads 08:07
    corrected = new_pump(DAY_PROGRAM)
    corrected.set_clock(START, START + SEVEN_MIN)
    assert corrected.status().now == START + SEVEN_MIN
    # uncorrected: 60 min at 20 µg/h; corrected: 53 min at 20 and 7 min at 60 (09:00 on its clock)
    assert _first_hour_ug(behind) == pytest.approx(20.0, abs=0.2)
    assert _first_hour_ug(corrected) == pytest.approx(53 / 60 * 20 + 7 / 60 * 60, abs=0.2)
    # the daily total is the program's: the correction moved the steps, it gave no dose
    assert corrected.status().daily_dose_ug == pytest.approx(960.0)
    (entry,) = [e for e in corrected.log.entries() if e.kind == "clock"]
    assert entry.data["old"] == START.isoformat()
    assert entry.data["new"] == (START + SEVEN_MIN).isoformat()
    assert entry.data["correction_s"] == pytest.approx(420.0)


def test_setting_the_clock_back_gives_no_dose_and_times_read_on_the_new_clock() -> None:
    fw = new_pump(DAY_PROGRAM)
    fw.advance(START + timedelta(hours=2))
    delivered = fw.delivered_ug
    fw.set_clock(START + timedelta(hours=2), START + timedelta(hours=2) - SEVEN_MIN)
    assert fw.delivered_ug == delivered  # the setting itself moves no drug
    status = fw.status()
    assert status.now == START + timedelta(hours=2) - SEVEN_MIN
    assert status.last_refill_at == START - SEVEN_MIN  # reported on the corrected clock


def test_a_clock_setting_a_day_away_is_refused_and_changes_nothing() -> None:
    fw = new_pump(DAY_PROGRAM)
    before = fw.status()
    with pytest.raises(CommandRejected) as refused:
        fw.set_clock(START, START + timedelta(days=1))
    assert refused.value.field == "new_time"
    assert "at most 120 min" in refused.value.reason and "time zone" in refused.value.reason
    assert fw.status() == before and fw.clock_offset_s == 0.0
    assert not [e for e in fw.log.entries() if e.kind == "clock"]


def test_the_correction_survives_a_reset_and_the_schedule_keeps_it() -> None:
    fw = new_pump(DAY_PROGRAM)
    fw.set_clock(START, START + SEVEN_MIN)
    rebooted = Firmware.from_image(fw.to_image(), copy.deepcopy(fw.world))
    assert rebooted.clock_offset_s == pytest.approx(420.0)
    assert rebooted.status().now == START + SEVEN_MIN
    assert _first_hour_ug(rebooted) == pytest.approx(_first_hour_ug(fw), abs=1e-9)
