"""A program and a stored record read in words with units: the schedule's rows, shares of the
day's dose, periodic boluses, and details without ``key=value``, JSON or ``None``."""

from __future__ import annotations

import pytest

from itb.programmer.program_table import program_table
from itb.programmer.record_words import details_words, kind_words, record_sentence

FLEX = {
    "steps": [{"start": "00:00", "rate_ug_per_h": 15}, {"start": "07:00", "rate_ug_per_h": 25}],
    "periodic_boluses": [{"start": "08:00", "dose_ug": 20.0, "duration_min": 30.0}],
}


def test_a_flex_programs_steps_run_until_the_next_and_share_the_days_dose() -> None:
    table = program_table(FLEX)
    assert table.kind == "flex" and len(table.days) == 1
    day = table.days[0]
    assert [(s.start, s.end) for s in day.steps] == [("00:00", "07:00"), ("07:00", "00:00")]
    assert [s.dose_ug for s in day.steps] == pytest.approx([105.0, 425.0])
    assert sum(s.share_percent for s in day.steps) == pytest.approx(100.0)
    assert [(b.start, b.dose_ug, b.duration_min) for b in table.boluses] == [("08:00", 20, 30)]


def test_a_program_that_differs_by_day_gets_a_table_per_weekday() -> None:
    week = {d: [{"start": "00:00", "rate_ug_per_h": 10}] for d in ("mon", "tue", "wed", "thu")}
    week |= {d: [{"start": "00:00", "rate_ug_per_h": 20}] for d in ("fri", "sat", "sun")}
    table = program_table({"week": week})
    assert [d.days for d in table.days][:2] == ["Monday", "Tuesday"]
    assert table.days[4].daily_dose_ug == pytest.approx(480.0)


def test_a_continuous_program_says_its_daily_and_hourly_rate() -> None:
    assert program_table({"rate_ug_per_day": 450.0}).summary.startswith("450 µg/day (18.75 µg/h)")


def test_a_records_details_read_in_words_with_units() -> None:
    details = {
        "cancelled_bolus": None,
        "concentration_ug_per_ml": 500.0,
        "old": {"concentration_ug_per_ml": 500.0, "reservoir_ml": 12.8},
        "volume_ml": 20.0,
        "seq_before": 41,
        "program": {"rate_ug_per_day": 450.0},
    }
    said = record_sentence(details)
    assert said.startswith("Concentration: 500 µg/mL; Before: concentration 500 µg/mL")
    assert "Filled to: 20 mL" in said and "450 µg/day (18.75 µg/h)" in said
    for code_words in ("=", "{", "None", "seq", "_"):
        assert code_words not in said
    assert details_words({"given_at": "2024-11-04T09:00:00.123456"}) == [
        "Given at: 2024-11-04 09:00"
    ]
    assert kind_words("screening_trial") == "Screening trial"
