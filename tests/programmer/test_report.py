"""Interrogation report from the pump's typed status and event-log entries."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML
from itb.programmer.report import ReportError, build_report, render_report_html
from itb.pump.alarms import AlarmKind, Priority
from itb.pump.status import AlarmStatus, BatteryStatus, Mode, PumpStatus
from itb.therapy import continuous

GENERATED = datetime(2027, 1, 4, 9, 5)
BATTERY = BatteryStatus(
    remaining_mah=512.3,
    eri_at=None,  # not entered yet: the firmware predicts it
    eos_at=None,
    predicted_eri_at=datetime(2030, 1, 3, 9, 0),
    predicted_eos_at=datetime(2030, 4, 3, 9, 0),
)


def status(**overrides: Any) -> PumpStatus:
    base = PumpStatus(
        serial="SIM-0001",
        model="peristaltic-20",
        now=datetime(2027, 1, 4, 9, 0),
        mode=Mode.RUNNING,
        program=continuous(500.0),
        daily_dose_ug=500.0,
        concentration_ug_per_ml=1000.0,
        reservoir_ml=12.0,
        low_reservoir_alarm_ml=DEFAULT_LOW_RESERVOIR_ALARM_ML,  # 2 mL
        battery=BATTERY,
        alarms=(
            AlarmStatus(
                AlarmKind.LOW_RESERVOIR, Priority.NON_CRITICAL, datetime(2026, 12, 1, 8, 0), False
            ),
            AlarmStatus(
                AlarmKind.MOTOR_STALL, Priority.CRITICAL, datetime(2027, 1, 3, 22, 0), True
            ),
        ),
        delivered_ug=123456.0,
        delivered_ml=123.456,
        received_ug=123000.0,
        bolus=None,
        patient_bolus_limits=None,
        last_refill_at=None,
        delivered_since_refill_ml=0.0,
    )
    return replace(base, **overrides)


EVENTS = [
    {"seq": 41, "at": "2027-01-03T22:00:00", "kind": "motor_stall", "data": {}},
    {"seq": 42, "at": "2027-01-04T09:00:00", "kind": "interrogated", "data": {"by": "clinic"}},
]


def test_reservoir_and_battery_dates_are_computed_from_the_pump_clock() -> None:
    # 500 µg/day at 1000 µg/mL = 0.5 mL/day: (12 − 2) / 0.5 = 20 days to the alarm
    # (2027-01-24), 12 / 0.5 = 24 days to empty (2027-01-28). ERI 2030-01-03 is
    # 365 + 366 (2028 is a leap year) + 364 = 1095 days after 2027-01-04.
    r = build_report(status(), EVENTS, GENERATED)
    assert r["reservoir"]["days_to_low_reservoir"] == 20.0
    assert r["reservoir"]["low_reservoir_on"] == "2027-01-24"
    assert r["reservoir"]["days_to_empty"] == 24.0
    assert r["reservoir"]["empty_on"] == "2027-01-28"
    assert r["battery"]["days_to_eri"] == 1095.0
    assert r["battery"]["days_to_eos"] == 1095.0 + 90.0


def test_active_alarms_first_and_latest_events_first() -> None:
    r = build_report(status(), EVENTS, GENERATED)
    assert [a["kind"] for a in r["alarms"]] == ["motor_stall", "low_reservoir"]
    assert r["active_alarm_count"] == 1
    assert [e["seq"] for e in r["events"]] == [42, 41]


def test_only_the_most_recent_events_are_kept() -> None:
    events = [{"seq": i, "at": "2027-01-04T00:00:00", "kind": "tick", "data": {}} for i in range(8)]
    r = build_report(status(), events, GENERATED, max_events=3)
    assert [e["seq"] for e in r["events"]] == [7, 6, 5]
    assert r["events_left_off"] == 5


def test_html_shows_units_dates_and_escapes_pump_strings() -> None:
    html = render_report_html(build_report(status(serial="<script>x</script>"), EVENTS, GENERATED))
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;" in html
    assert "500.0 µg/day" in html
    assert "1000 µg/mL" in html
    assert "12.00 mL of 20 mL" in html
    assert "2030-01-03 09:00" in html and "in 1095.0 days" in html
    assert "motor_stall" in html and "Not a medical device" in html


def test_a_stopped_pump_still_gets_a_report_that_says_why_dates_are_missing() -> None:
    r = build_report(status(daily_dose_ug=0.0, mode=Mode.STOPPED), [], GENERATED)
    assert r["reservoir"]["days_to_empty"] is None
    assert "daily_dose_ug" in r["reservoir"]["note"]
    assert "No events." in render_report_html(r)


def test_missing_event_fields_are_named() -> None:
    # The status is typed (PumpStatus): it cannot lack a field. Events still come as mappings.
    with pytest.raises(ReportError, match=r"events\[0\]") as missing:
        build_report(status(), [{"seq": 1}], GENERATED)
    assert missing.value.field == "events[0]"
    with pytest.raises(ReportError, match=r"events\[0\]\.at") as bad_time:
        build_report(status(), [{"seq": 1, "at": "yesterday", "kind": "x", "data": {}}], GENERATED)
    assert bad_time.value.field == "events[0].at"


def test_the_report_shows_the_firmware_prediction_of_eri_and_eos() -> None:
    # The pump predicts ERI and EOS; the report shows its dates, never "not estimated".
    r = build_report(status(), [], GENERATED)
    assert r["battery"]["eri_at"] == "2030-01-03T09:00"
    assert r["battery"]["eos_at"] == "2030-04-03T09:00"
    assert not r["battery"]["eri_reached"]
    html = render_report_html(r)
    assert "not estimated" not in html
    # Once entered, the entered date is the one shown (the firmware's prediction equals it).
    entered = datetime(2027, 1, 1, 0, 0)
    reached = replace(BATTERY, eri_at=entered, predicted_eri_at=entered)
    r = build_report(status(battery=reached), [], GENERATED)
    assert r["battery"]["eri_at"] == "2027-01-01T00:00" and r["battery"]["eri_reached"]
    assert "(reached)" in render_report_html(r)


def test_a_pump_that_lost_its_settings_still_gets_a_report() -> None:
    r = build_report(
        status(program=None, concentration_ug_per_ml=None, mode=Mode.SAFE_STATE), [], GENERATED
    )
    assert r["therapy"]["program"] is None
    assert r["reservoir"]["days_to_empty"] is None
    assert "concentration" in r["reservoir"]["note"]
    assert "unknown" in render_report_html(r)
