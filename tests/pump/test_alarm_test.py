"""The alarm test (issue 14): each tone once, in the log; nothing else about the pump changes."""

from __future__ import annotations

import pytest

from itb.pump import persistence
from itb.pump.alarms import AlarmKind
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.status import BolusKind
from itb.scenario.format import Event
from itb.scenario.runner import apply_event

from .helpers import START, days, hours, new_pump

# Domain.md "Alarm sounds" (S7 S21 S22): what the pump's two alarm priorities sound.
EXPECTED_TONES = [
    {"priority": "critical", "pattern": "two-tone", "duration_s": 3.0},
    {"priority": "non_critical", "pattern": "single tone", "duration_s": 1.0},
]


def _settings_without_log_seq(fw: Firmware) -> dict[str, object]:
    state = persistence.settings_state(fw)
    del state["log_next_seq"]
    return state


def test_the_alarm_test_logs_each_tone_once_and_changes_nothing_else() -> None:
    fw = new_pump()
    fw.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=50.0, duration_min=60.0)
    fw.advance(START + hours(1.5))  # mid-bolus
    before = _settings_without_log_seq(fw)
    entries_before = len(fw.log.entries())
    fw.test_alarm(fw.now)
    assert _settings_without_log_seq(fw) == before  # the memory image but the log: unchanged
    (entry,) = fw.log.entries()[entries_before:]
    assert entry.kind == "alarm_test"
    assert entry.data == {"tones": EXPECTED_TONES}


def test_a_tested_pump_delivers_exactly_what_an_untested_twin_delivers() -> None:
    tested, twin = new_pump(), new_pump()
    for fw in (tested, twin):
        fw.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=50.0, duration_min=60.0)
    tested.test_alarm(START + hours(1.25))
    tested.test_alarm(START + days(3))
    for fw in (tested, twin):
        fw.advance(START + days(20))  # past the low and empty reservoir alarms
    assert tested.status() == twin.status()
    assert tested.status().delivered_ug == pytest.approx(twin.status().delivered_ug)


def test_the_alarm_test_works_stopped_and_with_an_alarm_raised_which_it_leaves_raised() -> None:
    fw = new_pump()
    fw.inject_fault(START + hours(1), FaultKind.MRI, recovery_h=1.0)
    fw.stop(START + hours(3))
    status = fw.status()
    fw.test_alarm(START + hours(3))
    assert fw.status() == status  # still stopped, the stall alarm still latched
    assert AlarmKind.MOTOR_STALL in {a.kind for a in fw.status().alarms}
    assert fw.log.entries()[-1].kind == "alarm_test"


def test_a_scenario_event_runs_the_alarm_test() -> None:
    fw = new_pump()
    apply_event(fw, Event(at=START + days(1), action="alarm_test"))
    assert [e.kind for e in fw.log.entries()][-1] == "alarm_test"
    assert fw.now == START + days(1)
