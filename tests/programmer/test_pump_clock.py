"""The pump's clock against the world's: a flex schedule across the night summer time starts,
a drifting pump clock found at interrogation, and a pump time shown in a clinic elsewhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from itb.errors import InputError
from itb.programmer.pump_clock import (
    MAX_CLOCK_DRIFT_S,
    check_clock,
    minute_words,
    pump_clock_for,
    pump_time_in_zone,
    step_times_on,
)
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.therapy import FlexStep, flex

PARIS = ZoneInfo("Europe/Paris")  # CET (UTC+1), CEST (UTC+2) from 2027-03-28 02:00
NEW_YORK = ZoneInfo("America/New_York")  # EST (UTC-5), EDT (UTC-4) from 2027-03-14
# 10 µg/h at night, 40 µg/h from 08:00, 20 µg/h from 20:00: 8×10 + 12×40 + 4×20 = 640 µg/day
SCHEDULE = flex([FlexStep(0, 10.0), FlexStep(8 * 60, 40.0), FlexStep(20 * 60, 20.0)])


def test_on_the_night_summer_time_starts_the_pump_keeps_its_clock_and_shows_the_shift() -> None:
    steps = step_times_on(SCHEDULE, date(2027, 3, 28), PARIS)
    # midnight comes before the change (02:00): by the wall clock at 00:00, CET
    assert [minute_words(s.wall) for s in steps] == [
        "2027-03-28 00:00 CET",
        "2027-03-28 09:00 CEST",  # 08:00 on the pump: an hour later by the wall clock
        "2027-03-28 21:00 CEST",
    ]
    assert [s.shift_min for s in steps] == [0, 60, 60]
    assert "08:00 on the pump = 2027-03-28 09:00 CEST" in steps[1].words
    assert "summer time" in steps[1].words
    # a winter day: no shift
    assert [s.shift_min for s in step_times_on(SCHEDULE, date(2027, 1, 4), PARIS)] == [0, 0, 0]


def test_the_dst_night_delivers_exactly_the_daily_dose_with_no_hour_skipped_or_doubled() -> None:
    # The pump's clock has no DST: from 2027-03-28 00:00 to 2027-03-29 00:00 on the pump is
    # 24 h, and delivers the 640 µg of the schedule (a pump following the wall clock would
    # have skipped an hour: 640 - 10 = 630 µg with the 02:00-03:00 hour at 10 µg/h).
    fw = Firmware.implant(
        pump_model("peristaltic-20"), datetime(2027, 3, 27), serial="T-1",
        concentration_ug_per_ml=500.0, volume_ml=20.0, program=SCHEDULE,
    )  # fmt: skip
    fw.advance(datetime(2027, 3, 28))
    before_ug = fw.delivered_ug
    fw.advance(datetime(2027, 3, 29))
    assert fw.delivered_ug - before_ug == pytest.approx(640.0, abs=0.5)  # whole strokes


def test_a_pump_clock_that_drifted_beyond_five_minutes_is_found_and_said_in_words() -> None:
    now = datetime(2027, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST in Paris, 11:00 standard time
    assert pump_clock_for(now, PARIS) == datetime(2027, 7, 1, 11, 0)
    good = check_clock(datetime(2027, 7, 1, 11, 4), now, PARIS)
    assert not good.needs_setting and good.drift_s == 240.0
    late = check_clock(datetime(2027, 7, 1, 10, 52), now, PARIS)
    assert late.needs_setting and late.drift_s == -480.0
    assert "8 min behind" in late.words and "runs 8 min late" in late.words
    assert MAX_CLOCK_DRIFT_S == 300.0
    with pytest.raises(InputError) as caught:
        check_clock(datetime(2027, 7, 1, 11, 0), datetime(2027, 7, 1, 10, 0), PARIS)
    assert caught.value.field == "now_utc"  # a naive "now" is ambiguous: refused


def test_a_pump_time_is_shown_in_the_clinics_zone_to_the_minute_with_the_zone_named() -> None:
    # The patient lives in Paris; the clinic reads the pump from New York. A refill logged at
    # 09:30 on the pump in July (Paris standard time, UTC+1) was 08:30 UTC = 04:30 EDT.
    refill = datetime(2027, 7, 1, 9, 30)
    in_clinic = pump_time_in_zone(refill, PARIS, NEW_YORK)
    assert minute_words(in_clinic) == "2027-07-01 04:30 EDT"
    assert minute_words(pump_time_in_zone(refill, PARIS, PARIS)) == "2027-07-01 10:30 CEST"
    assert in_clinic - pump_time_in_zone(refill, PARIS, PARIS) == timedelta(0)  # one instant
