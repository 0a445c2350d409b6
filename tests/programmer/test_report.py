"""Interrogation report from a firmware status dict and event-log entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from itb.programmer.report import ReportError, build_report, render_report_html

GENERATED = datetime(2027, 1, 4, 9, 5)


def status(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serial": "SIM-0001",
        "model": "peristaltic-20",
        "now": "2027-01-04T09:00:00",
        "mode": "running",
        "program": {"rate_ug_per_day": 500.0},
        "daily_dose_ug": 500.0,
        "concentration_ug_per_ml": 1000.0,
        "reservoir_ml": 12.0,
        "low_reservoir_alarm_ml": 2.0,
        "battery": {
            "remaining_mah": 512.3,
            "eri_at": "2030-01-03T09:00:00",
            "eos_at": "2030-04-03T09:00:00",
        },
        "alarms": [
            {
                "kind": "low_reservoir",
                "priority": "non_critical",
                "at": "2026-12-01T08:00:00",
                "active": False,
            },
            {
                "kind": "motor_stall",
                "priority": "critical",
                "at": "2027-01-03T22:00:00",
                "active": True,
            },
        ],
        "delivered_ug": 123456.0,
        "delivered_ml": 123.456,
        "received_ug": 123000.0,
    }
    return base | overrides


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
    assert "2030-01-03T09:00" in html and "in 1095.0 days" in html
    assert "motor_stall" in html and "Not a medical device" in html


def test_a_stopped_pump_still_gets_a_report_that_says_why_dates_are_missing() -> None:
    r = build_report(status(daily_dose_ug=0.0, mode="stopped"), [], GENERATED)
    assert r["reservoir"]["days_to_empty"] is None
    assert "daily_dose_ug" in r["reservoir"]["note"]
    assert "No events." in render_report_html(r)


def test_missing_fields_are_named() -> None:
    bad = status()
    del bad["reservoir_ml"]
    with pytest.raises(ReportError, match="reservoir_ml"):
        build_report(bad, [], GENERATED)
    with pytest.raises(ReportError, match="eri_at"):
        build_report(status(battery={"remaining_mah": 1.0, "eos_at": None}), [], GENERATED)
    with pytest.raises(ReportError, match=r"events\[0\]"):
        build_report(status(), [{"seq": 1}], GENERATED)
    with pytest.raises(ReportError, match=r"status\.now"):
        build_report(status(now="yesterday"), [], GENERATED)
