"""The status's patient-bolus answer is the pump's own: available exactly when ``patient_bolus``
would give one, the time when it next would, or None with the reason when time alone won't do."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.patient_gate import outlook
from itb.pump.status import BolusKind, PatientBolusLimits
from itb.therapy import continuous

from .helpers import START, days, hours, new_pump

LIMITS = PatientBolusLimits(dose_ug=20.0, duration_min=10.0, lockout_min=120.0, max_per_day=2)


def gives_a_bolus(fw: Firmware, at: datetime) -> bool:
    """Would the pump give a patient bolus at ``at`` if nothing but time passed? Asked of an
    independent copy (the memory image), so the pump under test is not touched."""
    trial = Firmware.from_image(fw.to_image(), copy.deepcopy(fw.world))
    try:
        trial.patient_bolus(at)
    except CommandRejected:
        return False
    return True


def assert_status_matches_the_pump(fw: Firmware) -> None:
    status = fw.status()
    now = status.now
    available = gives_a_bolus(fw, now)
    assert (status.next_patient_bolus_at == now) is available
    assert (outlook(fw).refusal is None) is available
    later = status.next_patient_bolus_at
    if later is not None and later > now:
        assert gives_a_bolus(fw, later), "the status promised a bolus at this time"
        just_before = later - timedelta(seconds=2)
        if just_before > now:
            assert not gives_a_bolus(fw, just_before), "the status's time is not the first"


def _not_enabled() -> Firmware:
    return new_pump()


def _enabled() -> Firmware:
    fw = new_pump()
    fw.set_patient_bolus_limits(START, LIMITS)
    return fw


def _after(setup: Callable[[Firmware], None]) -> Callable[[], Firmware]:
    def build() -> Firmware:
        fw = _enabled()
        setup(fw)
        return fw

    return build


def _one_bolus_at_1_h(fw: Firmware) -> None:
    fw.patient_bolus(START + hours(1))
    fw.advance(START + hours(1.5))  # the 10 min bolus has ended; the lockout runs to 3 h


def _two_boluses(fw: Firmware) -> None:
    fw.patient_bolus(START)
    fw.patient_bolus(START + hours(3))
    fw.advance(START + hours(6))  # past the lockout (3 h + 120 min)


def _rolling_near_the_maximum() -> Firmware:
    # 1900 µg/day basal at 2000 µg/mL, and a 90 µg clinician bolus at 1 h over 30 min: any 24 h
    # window holding the bolus holds 1990 µg; 20 µg more would exceed the 2000 µg maximum
    fw = new_pump(continuous(1900.0), concentration_ug_per_ml=2000.0)
    fw.set_patient_bolus_limits(START, LIMITS)
    fw.start_bolus(START + hours(1), BolusKind.CLINICIAN, dose_ug=90.0, duration_min=30.0)
    fw.advance(START + hours(2))
    return fw


def _valve_closed_by_mri() -> Firmware:
    fw = new_pump(model="valve-gated-20")
    fw.set_patient_bolus_limits(START, LIMITS)
    fw.inject_fault(START + hours(1), FaultKind.MRI)
    return fw


def _too_short_for_the_pump() -> Firmware:
    fw = new_pump()
    # 100 µg over 1 min at 500 µg/mL is 288 mL/day: beyond the 24 mL/day the model pushes.
    # set_patient_bolus_limits refuses it now; a memory image written before it did may hold it.
    fw.patient_limits = PatientBolusLimits(100.0, 1.0, 60.0, 4)
    return fw


# (state, expected next bolus: a time, "now", or None, and a word of the refusal)
GRID: list[tuple[str, Callable[[], Firmware], datetime | str | None, str | None]] = [
    ("not enabled", _not_enabled, None, "not enabled"),
    ("enabled, nothing given", _enabled, "now", None),
    (
        "in the lockout",
        _after(_one_bolus_at_1_h),
        START + hours(3),
        "lockout",
    ),
    (
        "two in the rolling day",
        _after(_two_boluses),
        START + hours(24),
        "already in the last 24 h",
    ),
    ("stopped", _after(lambda fw: fw.stop(START + hours(1))), None, "stopped"),
    (
        "a clinician bolus running",
        _after(
            lambda fw: fw.start_bolus(
                START + hours(1), BolusKind.CLINICIAN, dose_ug=50.0, duration_min=60.0
            )
        ),
        START + hours(2),
        "in progress",
    ),
    (
        "a motor stall recovering in 2 h",
        _after(lambda fw: fw.inject_fault(START + hours(1), FaultKind.MOTOR_STALL, recovery_h=2)),
        START + hours(3),
        "stalled",
    ),
    ("a valve closed by MRI", _valve_closed_by_mri, None, "stalled"),
    ("an empty reservoir", _after(lambda fw: fw.advance(START + days(20))), None, "empty"),
    (
        "end of service",
        _after(lambda fw: fw.inject_fault(START + hours(1), FaultKind.PREMATURE_EOS)),
        None,
        "end of service",
    ),
    (
        "a low battery reset",
        _after(lambda fw: fw.inject_fault(START + hours(1), FaultKind.LOW_BATTERY_RESET)),
        None,
        "not enabled",  # the reset lost the patient's bolus settings
    ),
    ("a dose too fast for the pump", _too_short_for_the_pump, None, "too short"),
    # 10 of the 90 µg must leave the window: 10 µg / 3 µg/min = 3 min 20 s after 1 h + 24 h
    ("the rolling 24 h dose", _rolling_near_the_maximum, "25h03m20s", "2000"),
]


@pytest.mark.parametrize(
    ("build", "expected", "refusal"), [g[1:] for g in GRID], ids=[g[0] for g in GRID]
)
def test_the_status_answers_what_the_pump_would_do(
    build: Callable[[], Firmware], expected: datetime | str | None, refusal: str | None
) -> None:
    fw = build()
    status = fw.status()
    assert_status_matches_the_pump(fw)
    why_not = outlook(fw).refusal  # the status's reason, asked of the same checks
    if refusal is None:
        assert why_not is None
    else:
        assert why_not is not None
        assert refusal in why_not
    if expected == "now":
        assert status.next_patient_bolus_at == status.now
    elif expected == "25h03m20s":
        first = START + timedelta(hours=25, minutes=3, seconds=20)
        assert status.next_patient_bolus_at is not None
        assert first <= status.next_patient_bolus_at <= first + timedelta(seconds=1)
    else:
        assert status.next_patient_bolus_at == expected


def test_asking_the_status_changes_nothing() -> None:
    fw = _rolling_near_the_maximum()
    before = fw.to_image()
    fw.status()
    assert fw.to_image() == before
